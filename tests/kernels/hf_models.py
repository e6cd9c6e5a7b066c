"""Tiny Hugging Face checkpoints (built with transformers, saved as safetensors) and their
float32 oracle, shared by the checkpoint, reference and compiler-vs-reference tests (a module
of its own: two conftest.py files cannot both be imported as `conftest`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

LLAMA = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "vocab_size": 128, "intermediate_size": 128,
         "max_position_embeddings": 64}
GPT2 = {"n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 128, "n_positions": 64}


def _make_model(family: str, seed: int, **over):
    """A transformers model with weights spread wider than its 0.02 init (so logits differ
    clearly between tokens), every parameter already on the fp16 grid."""
    torch = pytest.importorskip("torch")
    tf = pytest.importorskip("transformers")
    torch.manual_seed(seed)
    if family == "llama":
        model = tf.LlamaForCausalLM(tf.LlamaConfig(**{**LLAMA, **over}))
    else:
        model = tf.GPT2LMHeadModel(tf.GPT2Config(**{**GPT2, **over}))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or "ln_" in name:
                if name.endswith("weight"):
                    p.copy_(1 + 0.1 * torch.randn_like(p))
                else:
                    p.copy_(0.05 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(0.15 * torch.randn_like(p))
            p.copy_(p.to(torch.float16).to(torch.float32))
    return model.eval()


def hf_logits(model, ids: list[int]) -> np.ndarray:
    """Teacher-forced float32 logits [len(ids), vocab] of a transformers model."""
    import torch

    with torch.no_grad():
        out = model(torch.tensor([ids]), use_cache=False)
    return out.logits[0].float().numpy()


def save(model, path: Path, dtype=None, **kw) -> Path:
    import copy

    m = model if dtype is None else copy.deepcopy(model).to(dtype)  # .to() works in place
    m.save_pretrained(path, safe_serialization=True, **kw)
    return path


def rewrite_config(path: Path, **changes) -> None:
    cfg = json.loads((path / "config.json").read_text())
    for k, v in changes.items():
        if v is None:
            cfg.pop(k, None)
        else:
            cfg[k] = v
    (path / "config.json").write_text(json.dumps(cfg, indent=2))
