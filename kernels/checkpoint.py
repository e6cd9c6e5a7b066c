"""Hugging Face checkpoint directories: config.json to a ModelConfig, safetensors to fp16 weights.

Llama (and Llama-shaped Mistral) and GPT-2 checkpoints are read with a small safetensors reader
of our own (F32, F16, BF16, F64; never pickle) and renamed to the canonical names of
SPEC-models.md, GPT-2's Conv1D matrices transposed to [out, in].
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from lpu.errors import LpuError
from lpu.kernels.config import ModelConfig
from lpu.kernels.weights import ModelWeights, expected_shapes, validate

# safetensors dtype -> (numpy dtype of the stored bits, bytes per element)
_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # raw bits; widened to fp32 by a 16-bit left shift
}
# A header larger than this is not a real safetensors header (the format caps it at 100 MB).
_MAX_HEADER = 100_000_000


# ---- config.json ------------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LpuError("file not found", file=str(path)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise LpuError(f"cannot read: {e}", file=str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise LpuError(f"invalid JSON: {e.msg}", file=str(path), line=e.lineno,
                       col=e.colno) from None
    if not isinstance(data, dict):
        raise LpuError("expected a JSON object at the top level", file=str(path))
    return data


def _get(cfg: dict, path: Path, *keys: str, default: Any = None, required: bool = False) -> Any:
    for k in keys:
        if cfg.get(k) is not None:
            return cfg[k]
    if required:
        raise LpuError(f"config.json lacks {' / '.join(keys)}", file=str(path))
    return default


def _int(cfg: dict, path: Path, *keys: str, default: int | None = None) -> int:
    v = _get(cfg, path, *keys, default=default, required=default is None)
    if not isinstance(v, int) or isinstance(v, bool):
        raise LpuError(f"config.json: {keys[0]} must be an integer, got {v!r}", file=str(path))
    return v


def _rope_theta(cfg: dict, path: Path) -> float:
    """rope_theta at the top level (most checkpoints) or in rope_parameters (newer ones);
    only plain RoPE is supported: scaled variants change the angles and are refused."""
    params = cfg.get("rope_parameters") or {}
    scaling = cfg.get("rope_scaling") or {}
    if not isinstance(params, dict) or not isinstance(scaling, dict):
        raise LpuError("config.json: rope_parameters / rope_scaling must be objects",
                       file=str(path))
    for d in (params, scaling):
        kind = d.get("rope_type", d.get("type", "default"))
        if kind not in (None, "default"):
            raise LpuError(f"config.json: rope scaling type {kind!r} is not supported "
                           f"(only plain RoPE)", file=str(path))
    theta = cfg.get("rope_theta", params.get("rope_theta", 10000.0))
    if not isinstance(theta, (int, float)) or theta <= 0:
        raise LpuError(f"config.json: rope_theta must be a positive number, got {theta!r}",
                       file=str(path))
    return float(theta)


def read_config(model_dir: Path | str) -> ModelConfig:
    """The ModelConfig of a checkpoint directory, from its config.json only."""
    model_dir = Path(model_dir)
    path = model_dir / "config.json"
    if not path.is_file():
        raise LpuError("no config.json in the model directory", file=str(model_dir))
    c = _read_json(path)
    kind = c.get("model_type")
    name = model_dir.resolve().name
    try:
        if kind in ("llama", "mistral"):
            return _llama_config(c, path, name)
        if kind == "gpt2":
            return _gpt2_config(c, path, name)
    except ValueError as e:  # ModelConfig's own shape checks
        raise LpuError(f"config.json: {e}", file=str(path)) from None
    raise LpuError(f"model_type {kind!r} is not supported (llama, mistral or gpt2)",
                   file=str(path))


def _llama_config(c: dict, path: Path, name: str) -> ModelConfig:
    for flag in ("attention_bias", "mlp_bias"):
        if c.get(flag):
            raise LpuError(f"config.json: {flag} = true is not supported (Llama has no "
                           f"biases in the canonical weights)", file=str(path))
    act = c.get("hidden_act", "silu")
    if act != "silu":
        raise LpuError(f"config.json: hidden_act {act!r} is not supported (silu)", file=str(path))
    d = _int(c, path, "hidden_size")
    heads = _int(c, path, "num_attention_heads")
    kv = _int(c, path, "num_key_value_heads", default=heads)
    hd = _int(c, path, "head_dim", default=d // heads if heads else 0)
    ctx = _int(c, path, "max_position_embeddings", default=2048)
    window = c.get("sliding_window")
    if isinstance(window, int) and 0 < window < ctx:
        # full attention equals sliding-window attention while the context fits the window
        ctx = window
    return ModelConfig(
        name=name, family="llama", vocab_size=_int(c, path, "vocab_size"), d_model=d,
        n_layers=_int(c, path, "num_hidden_layers"), n_heads=heads, n_kv_heads=kv,
        head_dim=hd, d_ff=_int(c, path, "intermediate_size"), max_positions=ctx,
        norm_eps=float(_get(c, path, "rms_norm_eps", default=1e-6)),
        rope_theta=_rope_theta(c, path),
        tie_embeddings=bool(c.get("tie_word_embeddings", False)))


def _gpt2_config(c: dict, path: Path, name: str) -> ModelConfig:
    act = c.get("activation_function", "gelu_new")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        raise LpuError(f"config.json: activation_function {act!r} is not supported "
                       f"(the tanh GELU: gelu_new)", file=str(path))
    for flag in ("scale_attn_by_inverse_layer_idx", "add_cross_attention"):
        if c.get(flag):
            raise LpuError(f"config.json: {flag} = true is not supported", file=str(path))
    if c.get("scale_attn_weights") is False:
        raise LpuError("config.json: scale_attn_weights = false is not supported",
                       file=str(path))
    if c.get("tie_word_embeddings") is False:
        raise LpuError("config.json: GPT-2 with untied embeddings is not supported",
                       file=str(path))
    d = _int(c, path, "n_embd", "hidden_size")
    heads = _int(c, path, "n_head", "num_attention_heads")
    return ModelConfig(
        name=name, family="gpt2", vocab_size=_int(c, path, "vocab_size"), d_model=d,
        n_layers=_int(c, path, "n_layer", "num_hidden_layers"), n_heads=heads,
        n_kv_heads=heads, head_dim=d // heads if heads else 0,
        d_ff=_int(c, path, "n_inner", default=4 * d),
        max_positions=_int(c, path, "n_positions", "max_position_embeddings", default=1024),
        norm_eps=float(_get(c, path, "layer_norm_epsilon", default=1e-5)),
        rope_theta=0.0, tie_embeddings=True)


# ---- safetensors ------------------------------------------------------------------------------
class SafetensorsFile:
    """One .safetensors file: its header parsed and checked, tensors read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise LpuError("truncated safetensors file (no header length)",
                                   file=str(path))
                (n,) = struct.unpack("<Q", head)
                if n > min(_MAX_HEADER, size - 8):
                    raise LpuError(f"bad safetensors header length {n}", file=str(path))
                raw = f.read(n)
        except OSError as e:
            raise LpuError(f"cannot read: {e}", file=str(path)) from None
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise LpuError(f"bad safetensors header: {e}", file=str(path)) from None
        if not isinstance(header, dict):
            raise LpuError("bad safetensors header: not a JSON object", file=str(path))
        header.pop("__metadata__", None)
        self.base = 8 + n
        self.entries: dict[str, tuple[str, tuple[int, ...], int, int]] = {}
        for name, e in header.items():
            try:
                dtype, shape = e["dtype"], tuple(int(s) for s in e["shape"])
                a, b = (int(x) for x in e["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise LpuError(f"bad safetensors header entry for tensor {name!r}",
                               file=str(path)) from None
            if dtype in _DTYPES:
                want = math.prod(shape) * _DTYPES[dtype].itemsize
                if b - a != want or a < 0 or self.base + b > size:
                    raise LpuError(f"tensor {name!r}: data_offsets [{a}, {b}] do not fit its "
                                   f"shape {shape} {dtype} or the file", file=str(path))
            self.entries[name] = (dtype, shape, a, b)

    def shape(self, name: str) -> tuple[int, ...]:
        return self.entries[name][1]

    def read_f32(self, name: str) -> np.ndarray:
        """The tensor widened to float32 (exact for F16 and BF16)."""
        dtype, shape, a, _ = self.entries[name]
        if dtype not in _DTYPES:
            raise LpuError(f"tensor {name!r} has dtype {dtype}; supported: "
                           f"{', '.join(_DTYPES)}", file=str(self.path))
        raw = np.fromfile(self.path, dtype=_DTYPES[dtype], count=math.prod(shape),
                          offset=self.base + a)
        if dtype == "BF16":
            out = (raw.astype(np.uint32) << 16).view(np.float32)
        else:
            out = raw.astype(np.float32)
        return out.reshape(shape)


def _open_shards(model_dir: Path) -> dict[str, SafetensorsFile]:
    """Tensor name -> the file holding it (one file or a sharded index)."""
    single = model_dir / "model.safetensors"
    index = model_dir / "model.safetensors.index.json"
    if single.is_file():
        f = SafetensorsFile(single)
        return {name: f for name in f.entries}
    if index.is_file():
        wmap = _read_json(index).get("weight_map")
        if not isinstance(wmap, dict):
            raise LpuError("index has no weight_map object", file=str(index))
        files: dict[str, SafetensorsFile] = {}
        out = {}
        for name, fname in wmap.items():
            if fname not in files:
                p = model_dir / str(fname)
                if not p.is_file() or Path(fname).name != fname:
                    raise LpuError(f"shard {fname!r} listed for tensor {name!r} is missing",
                                   file=str(index))
                files[fname] = SafetensorsFile(p)
            if name not in files[fname].entries:
                raise LpuError(f"tensor {name!r} is listed in the index but not in the shard",
                               file=str(model_dir / fname))
            out[name] = files[fname]
        return out
    others = sorted(p.name for p in model_dir.glob("*.safetensors"))
    if others:
        out = {}
        for nm in others:
            f = SafetensorsFile(model_dir / nm)
            out.update({name: f for name in f.entries})
        return out
    if any(model_dir.glob("pytorch_model*.bin")) or any(model_dir.glob("*.pt")):
        raise LpuError("only PyTorch pickle weights (pytorch_model.bin) here; we never unpickle "
                       "files (loading a pickle can run code)", file=str(model_dir),
                       hint="convert the checkpoint to safetensors (save_pretrained("
                       "..., safe_serialization=True))")
    raise LpuError("no model.safetensors or model.safetensors.index.json", file=str(model_dir))


def _hf_names(cfg: ModelConfig) -> list[tuple[str, str, bool]]:
    """(HF name without prefix, canonical name, transpose) for every tensor we read."""
    out: list[tuple[str, str, bool]] = []
    if cfg.family == "llama":
        out.append(("embed_tokens.weight", "tok_emb", False))
        for i in range(cfg.n_layers):
            h, p = f"layers.{i}.", f"layers.{i}."
            out += [(h + "input_layernorm.weight", p + "attn_norm.weight", False),
                    (h + "post_attention_layernorm.weight", p + "mlp_norm.weight", False)]
            out += [(h + f"self_attn.{x}_proj.weight", p + f"{x}.weight", False) for x in "qkvo"]
            out += [(h + f"mlp.{x}_proj.weight", p + f"{x}.weight", False)
                    for x in ("gate", "up", "down")]
        out.append(("norm.weight", "final_norm.weight", False))
        return out
    out += [("wte.weight", "tok_emb", False), ("wpe.weight", "pos_emb", False)]
    for i in range(cfg.n_layers):
        h, p = f"h.{i}.", f"layers.{i}."
        for hf, ours, tr in (("ln_1", "attn_norm", False), ("attn.c_attn", "qkv", True),
                             ("attn.c_proj", "o", True), ("ln_2", "mlp_norm", False),
                             ("mlp.c_fc", "fc", True), ("mlp.c_proj", "proj", True)):
            out += [(h + hf + ".weight", p + ours + ".weight", tr),
                    (h + hf + ".bias", p + ours + ".bias", False)]
    out += [("ln_f.weight", "final_norm.weight", False), ("ln_f.bias", "final_norm.bias", False)]
    return out


def _to_fp16(x: np.ndarray, name: str, path: Path) -> np.ndarray:
    """Round once to fp16 (nearest even); a finite value that overflows fp16 is an error."""
    with np.errstate(over="ignore"):
        y = x.astype(np.float16)
    if not np.isfinite(y).all() and np.isfinite(x).all():
        raise LpuError(f"tensor {name!r} has values beyond the fp16 range "
                       f"(max |x| {np.abs(x).max():.3g})", file=str(path))
    return y


def load_checkpoint(model_dir: Path | str) -> ModelWeights:
    """A checkpoint directory's weights under canonical names, fp16, shapes checked."""
    model_dir = Path(model_dir)
    cfg = read_config(model_dir)
    where = _open_shards(model_dir)
    prefixes = ("model.",) if cfg.family == "llama" else ("transformer.",)
    shapes = expected_shapes(cfg)
    tensors: dict[str, np.ndarray] = {}

    def find(hf: str) -> str | None:
        for cand in [p + hf for p in prefixes] + [hf]:
            if cand in where:
                return cand
        return None

    for hf, ours, transpose in _hf_names(cfg) + [("lm_head.weight", "lm_head.weight", False)]:
        if ours == "lm_head.weight" and cfg.tie_embeddings:
            tensors[ours] = tensors["tok_emb"]
            continue
        key = find(hf) if hf != "lm_head.weight" else ("lm_head.weight" if "lm_head.weight"
                                                        in where else None)
        want = shapes[ours][::-1] if transpose else shapes[ours]
        if key is None:
            raise LpuError(f"tensor {hf!r} ({ours}) is missing; expected shape {want}",
                           file=str(model_dir))
        f = where[key]
        got = f.shape(key)
        if got != want:
            raise LpuError(f"tensor {key!r} has shape {got}, expected {want}", file=str(f.path))
        x = f.read_f32(key)
        if transpose:
            x = np.ascontiguousarray(x.T)
        tensors[ours] = _to_fp16(x, key, f.path)
    w = ModelWeights(cfg, tensors)
    validate(w)
    return w

