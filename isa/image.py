"""The .lpx program image: magic, version, a JSON header, binary sections and a CRC32.

Layout (little-endian): magic (8 bytes) | version u32 | header bytes u32 | total bytes u64 |
header (UTF-8 JSON) | queue words (u64) | source map (i32 line, col) | segment data (u8) |
maps (i16) | CRC32 u32 of everything before it. The loader never runs code and never crashes:
wrong magic, unknown version, truncation, a bad checksum or an inconsistent header is an LpuError.
"""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np

from lpu.errors import LpuError
from lpu.isa.chips import CHIPS
from lpu.isa.program import Program, Segment, words_for
from lpu.isa.table import DTYPES

MAGIC = b"\x89LPX\r\n\x1a\n"
VERSION = 1
_PREFIX = struct.Struct("<8sIIQ")
_HINT = "re-assemble it with `lpu asm`"


class ImageError(LpuError):
    """An .lpx file the loader refuses."""


def to_bytes(program: Program) -> bytes:
    """Serialise a Program (its chip must be a known preset)."""
    if program.chip not in CHIPS:
        raise LpuError(f"unknown chip {program.chip!r}; known: {', '.join(CHIPS)}")
    lanes = CHIPS[program.chip].lanes
    body: list[bytes] = []
    queues = []
    for name, words in program.queues.items():
        w = np.ascontiguousarray(words, dtype="<u8")
        queues.append([name, int(w.size)])
        body.append(w.tobytes())
    for name, words in program.queues.items():
        sm = program.srcmap.get(name)
        n = len(words)
        arr = np.zeros((n, 2), "<i4")
        if sm is not None:
            sm = np.asarray(sm)
            k = min(n, len(sm))
            arr[:k] = sm[:k]
        body.append(arr.tobytes())
    segs = []
    for s in program.segments:
        segs.append({"name": s.name, "dtype": s.dtype, "shape": [int(d) for d in s.shape],
                     "runs": np.asarray(s.runs, np.int64).reshape(-1, 3).tolist(),
                     "data": s.data is not None})
        if s.data is not None:
            body.append(np.ascontiguousarray(s.data, np.uint8).tobytes())
    for mp in program.maps:
        body.append(np.ascontiguousarray(mp, "<i2").tobytes())
    header = json.dumps({"chip": program.chip, "source": program.source, "lanes": lanes,
                         "queues": queues, "segments": segs,
                         "maps": [int(np.asarray(m).size) for m in program.maps]},
                        separators=(",", ":")).encode()
    payload = b"".join(body)
    total = _PREFIX.size + len(header) + len(payload) + 4
    data = _PREFIX.pack(MAGIC, VERSION, len(header), total) + header + payload
    return data + struct.pack("<I", zlib.crc32(data))


def _bad(name: str, msg: str, hint: str = _HINT) -> ImageError:
    return ImageError(f"{name}: {msg}", hint=hint)


def from_bytes(data: bytes, name: str = "<image>") -> Program:
    """Parse an image; any defect raises ImageError naming `name` with a hint."""
    if len(data) < len(MAGIC) or data[:len(MAGIC)] != MAGIC:
        raise _bad(name, "not an lpu program image (wrong magic number)",
                   "pass a file written by `lpu asm` or `lpu compile`")
    if len(data) < _PREFIX.size + 4:
        raise _bad(name, f"truncated image ({len(data)} bytes)")
    _, version, hlen, total = _PREFIX.unpack_from(data)
    if version != VERSION:
        raise _bad(name, f"unknown image format version {version} (this lpu reads version "
                         f"{VERSION})", "re-assemble it with this version of `lpu asm`")
    if len(data) < total:
        raise _bad(name, f"truncated image ({len(data)} of {total} bytes)")
    if len(data) > total:
        raise _bad(name, f"{len(data) - total} unexpected bytes after the image end")
    if zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise _bad(name, "corrupted image (checksum mismatch)")
    if _PREFIX.size + hlen > total - 4:
        raise _bad(name, "corrupted image (header length out of range)")
    try:
        head = json.loads(data[_PREFIX.size:_PREFIX.size + hlen].decode("utf-8"))
        return _build(head, memoryview(data)[_PREFIX.size + hlen:total - 4], name)
    except ImageError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
            RecursionError) as e:
        raise _bad(name, f"inconsistent image header ({type(e).__name__}: {e})") from None


def _build(head: dict, body: memoryview, name: str) -> Program:
    if not isinstance(head, dict):
        raise TypeError("header is not an object")
    chip = head["chip"]
    if chip not in CHIPS:
        raise _bad(name, f"image is for unknown chip {chip!r}")
    lanes = CHIPS[chip].lanes
    if head["lanes"] != lanes:
        raise ValueError(f"lanes {head['lanes']} != {lanes} of chip {chip}")
    pos = 0

    def take(nbytes: int) -> memoryview:
        nonlocal pos
        if not isinstance(nbytes, int) or nbytes < 0 or pos + nbytes > len(body):
            raise ValueError("sections run past the end of the image")
        out = body[pos:pos + nbytes]
        pos += nbytes
        return out

    queue_list = [(str(q), int(n)) for q, n in head["queues"]]
    prog = Program(chip=chip, source=str(head["source"]))
    for q, n in queue_list:
        if q in prog.queues:
            raise ValueError(f"queue {q} listed twice")
        prog.queues[q] = np.frombuffer(take(8 * n), "<u8").astype(np.uint64)
    for q, n in queue_list:
        prog.srcmap[q] = np.frombuffer(take(8 * n), "<i4").astype(np.int32).reshape(n, 2)
    for s in head["segments"]:
        dtype = s["dtype"]
        if dtype not in DTYPES:
            raise ValueError(f"segment dtype {dtype!r}")
        shape = tuple(int(d) for d in s["shape"])
        if len(shape) > 8 or any(d < 1 or d > 2**31 for d in shape):
            raise ValueError(f"segment shape {shape}")
        runs = np.asarray(s["runs"], np.int64).reshape(-1, 3)
        if runs.size and (runs.min() < 0 or runs.max() > 2**31):
            raise ValueError("segment runs out of range")
        data = None
        if s["data"] is True:
            words = words_for(shape, dtype, lanes)
            data = np.frombuffer(take(words * lanes), np.uint8).reshape(words, lanes).copy()
        elif s["data"] is not False:
            raise ValueError("segment data flag")
        prog.segments.append(Segment(str(s["name"]), dtype, shape, runs.astype(np.int32), data))
    for n in head["maps"]:
        prog.maps.append(np.frombuffer(take(2 * int(n)), "<i2").astype(np.int16))
    if pos != len(body):
        raise ValueError(f"{len(body) - pos} bytes left over after the sections")
    return prog


def save(program: Program, path: str | os.PathLike) -> None:
    """Write atomically: a temporary file in the same folder, renamed over `path`."""
    from lpu.files import atomic_write

    atomic_write(path, to_bytes(program))


def load(path: str | os.PathLike) -> Program:
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise LpuError(f"{path}: cannot read ({e.strerror})") from None
    return from_bytes(data, path)
