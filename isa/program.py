"""A program in memory: per-queue instruction words, data segments, lane maps and a source map.

The assembler and the compiler produce a Program; the .lpx image stores one; the emulator runs
one. Tensors live in MEM as words of one byte per lane: a vector of a g-byte type is g words,
its byte planes (little-endian), so a stream group can carry it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lpu.isa.dtypes import from_bits, nbytes, to_bits


@dataclass
class Segment:
    """A named tensor placed in MEM.

    runs: int32 [k, 3] rows of (slice, first address, words): the segment's words in order.
    data: uint8 [words, lanes] initial contents, or None for zeros (an output or scratch).
    """

    name: str
    dtype: str
    shape: tuple[int, ...]
    runs: np.ndarray
    data: np.ndarray | None = None

    @property
    def n_words(self) -> int:
        return int(self.runs[:, 2].sum()) if len(self.runs) else 0

    def word_slots(self) -> np.ndarray:
        """int64 [words, 2]: (slice, address) of every word, in segment order."""
        if not len(self.runs):
            return np.zeros((0, 2), np.int64)
        n = self.runs[:, 2].astype(np.int64)
        sl = np.repeat(self.runs[:, 0].astype(np.int64), n)
        within = np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        addr = np.repeat(self.runs[:, 1].astype(np.int64), n) + within
        return np.stack([sl, addr], axis=1).astype(np.int64)


def words_for(shape: tuple[int, ...], dtype: str, lanes: int) -> int:
    """Words a tensor of this shape occupies: last axis padded to whole vectors, g planes each."""
    if not shape:
        shape = (1,)
    inner = shape[-1]
    outer = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
    return outer * (-(-inner // lanes)) * nbytes(dtype)


def tensor_to_words(values: np.ndarray, dtype: str, lanes: int) -> np.ndarray:
    """Tensor -> uint8 [words, lanes]: pad the last axis to whole vectors, split byte planes."""
    a = np.asarray(values)
    if a.ndim == 0:
        a = a.reshape(1)
    inner = a.shape[-1]
    nvec_row = -(-inner // lanes)
    a2 = a.reshape(-1, inner)
    padded = np.zeros((a2.shape[0], nvec_row * lanes), dtype=a2.dtype if a2.size else np.float32)
    padded[:, :inner] = a2
    bits = to_bits(padded.reshape(-1, lanes), dtype)  # (nvec, lanes) unsigned
    g = nbytes(dtype)
    if g == 1:
        return bits.reshape(-1, lanes).astype(np.uint8, copy=False)
    planes = np.empty((bits.shape[0], g, lanes), np.uint8)
    wide = bits.astype(np.uint32)
    for j in range(g):
        planes[:, j, :] = (wide >> (8 * j)) & 0xFF
    return planes.reshape(-1, lanes)


def words_to_tensor(words: np.ndarray, dtype: str, shape: tuple[int, ...],
                    lanes: int) -> np.ndarray:
    """Inverse of tensor_to_words: float32 for float types, int8/int32 for integer types."""
    g = nbytes(dtype)
    if not shape:
        shape = (1,)
    inner = shape[-1]
    nvec_row = -(-inner // lanes)
    planes = words.reshape(-1, g, lanes).astype(np.uint32)
    bits = np.zeros(planes.shape[0::2], np.uint32)
    for j in range(g):
        bits |= planes[:, j, :] << (8 * j)
    vals = from_bits(bits, dtype)
    rows = vals.reshape(-1, nvec_row * lanes)[:, :inner]
    return rows.reshape(shape)


@dataclass
class Program:
    """What the emulator runs. Queues not named hold no instructions."""

    chip: str
    queues: dict[str, np.ndarray] = field(default_factory=dict)  # name -> uint64 words
    srcmap: dict[str, np.ndarray] = field(default_factory=dict)  # name -> int32 [n, 2] line, col
    segments: list[Segment] = field(default_factory=list)
    maps: list[np.ndarray] = field(default_factory=list)  # int16 [lanes]; -1 = zero fill
    source: str = "<program>"

    def segment(self, name: str) -> Segment:
        for s in self.segments:
            if s.name == name:
                return s
        from lpu.errors import LpuError

        known = ", ".join(s.name for s in self.segments) or "none"
        raise LpuError(f"program has no data segment {name!r} (segments: {known})")

    @property
    def n_instructions(self) -> int:
        return int(sum(len(w) for w in self.queues.values()))

    def location(self, queue: str, index: int) -> tuple[int, int]:
        """(line, col) of instruction `index` of `queue` in the source, (0, 0) when unknown."""
        sm = self.srcmap.get(queue)
        if sm is None or index >= len(sm):
            return 0, 0
        return int(sm[index, 0]), int(sm[index, 1])
