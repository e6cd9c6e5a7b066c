"""Session fixtures: the tiny Hugging Face checkpoints of hf_models, built once."""

from __future__ import annotations

from pathlib import Path

import pytest
from hf_models import _make_model, save


@pytest.fixture(scope="session")
def llama_model():
    return _make_model("llama", 0)


@pytest.fixture(scope="session")
def gpt2_model():
    return _make_model("gpt2", 1)


@pytest.fixture(scope="session")
def llama_dir(llama_model, tmp_path_factory) -> Path:
    return save(llama_model, tmp_path_factory.mktemp("llama"))


@pytest.fixture(scope="session")
def gpt2_dir(gpt2_model, tmp_path_factory) -> Path:
    return save(gpt2_model, tmp_path_factory.mktemp("gpt2"))
