"""Text to token ids for a checkpoint directory that ships a Hugging Face tokenizer.json.

The `tokenizers` package is optional (not a core dependency); presets have no tokenizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lpu.errors import LpuError


class Tokenizer(Protocol):
    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class _HFTokenizer:
    """tokenizers.Tokenizer behind encode(text) -> ids and decode(ids) -> text."""

    def __init__(self, tok) -> None:
        self._tok = tok

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text).ids)

    def decode(self, ids: list[int]) -> str:
        return self._tok.decode(list(ids))


def load_tokenizer(model_dir: str | Path) -> Tokenizer | None:
    """The tokenizer of a model directory, or None when there is no tokenizer.json (or the
    SPEC is a preset)."""
    path = Path(model_dir) / "tokenizer.json"
    if not Path(model_dir).is_dir() or not path.is_file():
        return None
    try:
        from tokenizers import Tokenizer as HFTok
    except ImportError:
        raise LpuError("reading tokenizer.json needs the `tokenizers` package", file=str(path),
                       hint="pip install tokenizers, or use --prompt-ids") from None
    try:
        return _HFTokenizer(HFTok.from_file(str(path)))
    except Exception as e:  # noqa: BLE001 (the Rust side raises its own exception type)
        raise LpuError(f"cannot read the tokenizer: {e}", file=str(path)) from None
