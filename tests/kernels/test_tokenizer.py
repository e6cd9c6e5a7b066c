"""tokenizer.json of a model directory: present -> encode/decode, absent -> None."""

from __future__ import annotations

import pytest

from lpu.errors import LpuError
from lpu.kernels.tokenizer import load_tokenizer


def test_no_tokenizer_json_or_a_preset_gives_none(tmp_path):
    assert load_tokenizer(tmp_path) is None
    assert load_tokenizer("tiny") is None


def test_a_word_level_tokenizer_round_trips(tmp_path):
    tk = pytest.importorskip("tokenizers")
    vocab = {"[UNK]": 0, "hello": 1, "lpu": 2, "world": 3}
    tok = tk.Tokenizer(tk.models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = tk.pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    t = load_tokenizer(tmp_path)
    assert t.encode("hello lpu world") == [1, 2, 3]
    assert t.encode("hello moon") == [1, 0]
    assert t.decode([3, 1]) == "world hello"


def test_a_broken_tokenizer_json_is_named(tmp_path):
    pytest.importorskip("tokenizers")
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(LpuError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
