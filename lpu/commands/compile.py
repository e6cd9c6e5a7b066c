"""`lpu compile --model SPEC`: a decode step as a static program, its memory plan and its bound.

Prints the memory plan (bytes per region, per slice, headroom), the predicted cycles of the
first decode step and the roofline terms; writes the program as assembly or an image on request.
"""

from __future__ import annotations

import argparse
import json

from lpu.errors import LpuError


def run(args: argparse.Namespace) -> int:
    from lpu.kernels.runtime import LpuDecoder, check_fits
    from lpu.kernels.weights import load_weights

    check_fits(args.model, args.weights_dtype, args.chip)
    weights = load_weights(args.model, seed=args.seed)
    dec = LpuDecoder(weights, args.chip, args.weights_dtype, max_context=args.context)
    comp = dec.compiler
    step = dec.step_program(args.pos)
    plan = comp.memory_plan(step)
    roof = comp.roofline(step)
    if args.emit_asm:
        from lpu.assembler.disasm import disassemble_to_file

        disassemble_to_file(step.program, args.emit_asm)
    if args.output:
        from lpu.isa.image import save

        save(step.program, args.output)
    out = {"model": weights.config.name, "chip": comp.chip.name,
           "weights_dtype": args.weights_dtype, "pos": args.pos, "chips": 1,
           # positions the KV cache is reserved for: --context, or the model's own limit
           # (n_positions / max_position_embeddings) where that is smaller
           "context": comp.max_context,
           "predicted_cycles": step.predicted_cycles,
           "latency_us": step.predicted_cycles / (comp.chip.clock_ghz * 1e3),
           "instructions": step.program.n_instructions, "memory": plan, "roofline": roof,
           # where attention's scores run at this position (kernels/attention.py), and from
           # which attended-position count on they run on an MXM plane
           "attention_scores": "mxm" if args.pos + 1 >= comp.attention_mxm_from else "vxm",
           "attention_mxm_from": comp.attention_mxm_from}
    if args.json:
        print(json.dumps(out))
        return 0
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]{out['model']}[/] on [bold]{out['chip']}[/] ({args.weights_dtype} weights):"
              f" step at position {args.pos} = {step.predicted_cycles} cycles = "
              f"{out['latency_us']:.2f} µs at {comp.chip.clock_ghz} GHz; KV cache for "
              f"{comp.max_context} positions"
              + (" (the model's limit)" if comp.max_context < args.context else "")
              + "; attention scores on "
              f"the {out['attention_scores'].upper()} (the MXM from {comp.attention_mxm_from} "
              "attended positions on)")
    t = Table("region", "bytes", title="memory plan")
    for k, v in plan["regions"].items():
        t.add_row(k, f"{v:,}")
    t.add_row("headroom", f"{plan['headroom_bytes']:,}")
    con.print(t)
    r = Table("term", "cycles", title="roofline bound of this step")
    for k, v in roof["terms_cycles"].items():
        r.add_row(k + (" (binds)" if k == roof["binding"] else ""), f"{v:,.0f}")
    r.add_row("compiled ÷ bound", f"{roof['ratio']:.2f}")
    r.add_row("compiled ÷ bandwidth terms only", f"{roof['ratio_to_bandwidth']:.2f}")
    con.print(r)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("compile", help="compile a model's decode step for a chip",
                       description="Compile one decode step of a model into a static program.")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="checkpoint directory (config.json + *.safetensors) or preset name")
    p.add_argument("--chip", default="tsp-v1", help="chip preset: tsp-v1 or mini (default tsp-v1)")
    p.add_argument("--weights-dtype", choices=["fp16", "int8"], default="fp16",
                   help="weights in SRAM: fp16, or int8 with per-output-channel scales")
    p.add_argument("--pos", type=int, default=0, help="decode position of the step (default 0)")
    p.add_argument("--context", type=int, default=64,
                   help="positions to reserve KV cache for (at most the model's own limit)")
    p.add_argument("--seed", type=int, default=0, help="seed of a preset's random weights")
    p.add_argument("--emit-asm", metavar="OUT.s", help="write the step as readable assembly")
    p.add_argument("-o", "--output", metavar="OUT.lpx", help="write the step's program image")
    p.add_argument("--json", action="store_true",
                   help="the memory plan and predicted cycles as one JSON object")
    p.set_defaults(func=_checked)


def _checked(args: argparse.Namespace) -> int:
    if args.pos < 0 or args.pos >= args.context:
        raise LpuError(f"--pos must be in 0..{args.context - 1}")
    return run(args)
