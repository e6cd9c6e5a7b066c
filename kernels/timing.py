"""Timing arithmetic the kernel generators share: where a stream value is, and when.

A value written at stage p in cycle t travels one stage per hop toward its direction; these
helpers answer "when must a producer issue so its value passes stage q in cycle T" and back.
"""

from __future__ import annotations

from lpu.isa.chips import Chip
from lpu.isa.table import BY_MNEMONIC

EAST, WEST = 0, 1


def lat(chip: Chip, mnemonic: str) -> int:
    """Issue-to-result cycles of an instruction on this chip (skew included where it applies)."""
    ins = BY_MNEMONIC[mnemonic]
    return ins.latency.cycles + (chip.skew if ins.crosses_superlanes else 0)


def direction(src_stage: int, dst_stage: int) -> int:
    """The stream direction that carries a value from src to dst (east when equal)."""
    return EAST if dst_stage >= src_stage else WEST


def travel(chip: Chip, src_stage: int, dst_stage: int) -> int:
    return abs(dst_stage - src_stage) * chip.hop_cycles


def stream(d: int, sid: int) -> str:
    return f"{'ew'[d]}{sid}"


def issue_for_arrival(chip: Chip, mnemonic: str, src_stage: int, dst_stage: int,
                      arrive: int) -> int:
    """Issue cycle of a producer at src_stage whose result passes dst_stage at `arrive`."""
    return arrive - travel(chip, src_stage, dst_stage) - lat(chip, mnemonic)


def arrival(chip: Chip, mnemonic: str, src_stage: int, issue: int, dst_stage: int) -> int:
    """Cycle at which the result of an instruction issued at src_stage passes dst_stage."""
    return issue + lat(chip, mnemonic) + travel(chip, src_stage, dst_stage)
