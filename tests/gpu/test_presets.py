"""GPU presets: every number has a source; the table checks itself when it loads."""

from __future__ import annotations

from dataclasses import fields

import pytest

from lpu.gpu import presets
from lpu.gpu.presets import GPUS, SOURCES, GpuPreset, describe, gpu_preset


def test_every_preset_parameter_has_a_source():
    for name, gpu in GPUS.items():
        for f in fields(GpuPreset):
            if f.name != "name":
                assert SOURCES[name][f.name].strip(), (name, f.name)
        assert len(describe(gpu)) == len(fields(GpuPreset)) - 1


def test_a_missing_source_fails_the_table_check(monkeypatch):
    broken = {k: dict(v) for k, v in SOURCES.items()}
    del broken["h100-sxm"]["hbm_peak_bw"]
    monkeypatch.setattr(presets, "SOURCES", broken)
    with pytest.raises(ValueError, match="no source for hbm_peak_bw"):
        presets._check_table()


def test_streaming_bandwidth_is_below_peak_for_every_gpu():
    for gpu in GPUS.values():
        assert 0.8 * gpu.hbm_peak_bw < gpu.hbm_stream_bw <= gpu.hbm_peak_bw


def test_presets_match_the_design_table():
    h, a = GPUS["h100-sxm"], GPUS["a100-80gb"]
    assert (h.sms, h.hbm_peak_bw, h.l2_bytes, h.clock_ghz) == (132, 3.35e12, 50e6, 1.98)
    assert (a.sms, a.hbm_peak_bw, a.l2_bytes, a.clock_ghz) == (108, 2.039e12, 40e6, 1.41)
    assert h.flops_bf16 == 989e12 and a.flops_bf16 == 312e12


def test_aliases_and_unknown_names():
    assert gpu_preset("h100") is GPUS["h100-sxm"]
    assert gpu_preset(GPUS["a100-80gb"]) is GPUS["a100-80gb"]
    with pytest.raises(KeyError, match="known: h100-sxm"):
        gpu_preset("v100")


def test_docs_hold_the_current_parameter_table():
    from pathlib import Path

    doc = Path(__file__).resolve().parents[2] / "docs" / "gpu.md"
    assert presets.markdown() in doc.read_text(encoding="utf-8")
