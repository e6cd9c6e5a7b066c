"""`lpu decode --model SPEC`: greedy decoding on the emulated chip, one static step per token.

Prompt tokens are consumed one step at a time, then tokens are generated; every step's cycle
count is measured by the emulator and must equal the compiler's prediction.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from lpu.errors import LpuError, UsageError


def prompt_ids(args: argparse.Namespace, vocab: int) -> list[int]:
    if args.prompt_ids and args.prompt:
        raise UsageError("give --prompt-ids or --prompt, not both")
    if args.prompt:
        from lpu.kernels.tokenizer import load_tokenizer

        tok = load_tokenizer(args.model)
        if tok is None:
            raise LpuError(f"--prompt needs a tokenizer.json in the model directory "
                           f"({args.model})", hint="use --prompt-ids 1,2,3")
        return list(tok.encode(args.prompt))
    text = args.prompt_ids or "0"
    try:
        ids = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--prompt-ids wants comma-separated integers, got {text!r}") from None
    bad = [i for i in ids if not 0 <= i < vocab]
    if bad:
        raise LpuError(f"prompt token {bad[0]} is outside the vocabulary (0..{vocab - 1})")
    return ids


def run(args: argparse.Namespace) -> int:
    from lpu.kernels.runtime import LpuDecoder, check_fits
    from lpu.kernels.weights import load_weights

    check_fits(args.model, args.weights_dtype, args.chip)
    weights = load_weights(args.model, seed=args.seed)
    ids = prompt_ids(args, weights.config.vocab_size)
    need = len(ids) + args.max_new_tokens - 1
    dec = LpuDecoder(weights, args.chip, args.weights_dtype, max_context=max(need, 1))
    show = not args.json and sys.stderr.isatty()
    if show:
        from rich.progress import Progress

        with Progress(transient=True) as prog:
            task = prog.add_task("decoding", total=need)
            res = dec.decode(ids, args.max_new_tokens,
                             progress=lambda i, n: prog.update(task, completed=i))
    else:
        res = dec.decode(ids, args.max_new_tokens)
    if args.logits_out:
        from lpu.commands.run import save_npy

        save_npy(Path(args.logits_out), res.logits)
    if args.trace:
        _write_trace(args.trace, res)
    out = {"model": weights.config.name, "chip": dec.chip.name, "chips": 1,
           "weights_dtype": args.weights_dtype, "prompt_ids": res.prompt_ids,
           "tokens": res.tokens, "cycles_per_token": res.cycles_per_token,
           "latency_us_per_token": res.latency_us_per_token,
           "deterministic": res.deterministic}
    if args.json:
        print(json.dumps(out))
        return 0
    from rich.console import Console

    con = Console()
    con.print(f"[bold]{out['model']}[/] on [bold]{out['chip']}[/]: prompt {res.prompt_ids} -> "
              f"generated {res.tokens}")
    cyc = res.cycles_per_token
    con.print(f"cycles per step: {cyc[0]} .. {cyc[-1]} (grows with the attention length); "
              f"{res.latency_us_per_token[-1]:.2f} µs at {dec.chip.clock_ghz} GHz; every step "
              f"took exactly its predicted cycles: {res.deterministic}")
    return 0


def _write_trace(path: str, res) -> None:
    from lpu.traces.record import decode_trace

    decode_trace(res).save(path)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("decode", help="greedy decoding on the emulated chip",
                       description="Decode tokens with a compiled model on the emulated LPU.")
    p.add_argument("--model", required=True, metavar="SPEC",
                   help="a checkpoint directory (config.json + *.safetensors) or a preset name (tiny, gpt2-small, ...)")
    p.add_argument("--chip", default="tsp-v1", help="chip preset: tsp-v1 or mini (default tsp-v1)")
    p.add_argument("--prompt-ids", metavar="1,2,3", help="prompt as comma-separated token ids")
    p.add_argument("--prompt", metavar="TEXT",
                   help="prompt as text (needs the model directory's tokenizer.json)")
    p.add_argument("--max-new-tokens", type=int, default=8, metavar="N",
                   help="tokens to generate greedily after the prompt (default 8)")
    p.add_argument("--weights-dtype", choices=["fp16", "int8"], default="fp16",
                   help="weights in SRAM: fp16, or int8 with per-output-channel scales")
    p.add_argument("--seed", type=int, default=0, help="seed of a preset's random weights")
    p.add_argument("--trace", metavar="FILE", help="write a trace (see lpu trace)")
    p.add_argument("--logits-out", metavar="FILE.npy",
                   help="save the logits after each input position, [positions, vocab]")
    p.add_argument("--json", action="store_true", help="one JSON object on stdout")
    p.set_defaults(func=run)
