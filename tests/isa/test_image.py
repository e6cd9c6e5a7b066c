"""The .lpx image: exact round trip, and a loader that refuses every damaged file with a hint."""

import random
import struct
import zlib

import numpy as np
import pytest

from lpu.errors import LpuError
from lpu.isa import image
from lpu.isa.encoding import encode
from lpu.isa.program import Program, Segment, tensor_to_words


def sample() -> Program:
    data = tensor_to_words(np.arange(16, dtype=np.float32), "f32", 16)
    return Program(
        chip="mini", source="t.s",
        queues={"mem.e0": np.array([encode("read", {"addr": 0, "z": 0, "step": 0}),
                                    encode("repeat", {"n": 3, "d": 1})], np.uint64),
                "vxm.1": np.array([encode("nop", {"n": 2})], np.uint64)},
        srcmap={"mem.e0": np.array([[3, 5], [4, 5]], np.int32),
                "vxm.1": np.array([[9, 1]], np.int32)},
        segments=[Segment("x", "f32", (16,), np.array([[4, 0, 4]], np.int32), data),
                  Segment("y", "i8", (16,), np.array([[5, 0, 1]], np.int32))],
        maps=[np.arange(16, dtype=np.int16)[::-1].copy()])


def test_an_image_loads_back_to_the_same_program(tmp_path):
    p = sample()
    path = tmp_path / "p.lpx"
    image.save(p, path)
    q = image.load(path)
    assert image.to_bytes(q) == image.to_bytes(p)
    assert q.source == "t.s" and q.location("mem.e0", 1) == (4, 5)
    assert np.array_equal(q.segment("x").data, p.segment("x").data)
    assert q.segment("y").data is None


def test_wrong_magic_is_refused_with_a_hint():
    with pytest.raises(LpuError, match="wrong magic") as e:
        image.from_bytes(b"PK\x03\x04" + bytes(40), "a.lpx")
    assert e.value.hint


def test_an_unknown_version_is_refused():
    data = bytearray(image.to_bytes(sample()))
    data[8:12] = struct.pack("<I", 99)
    with pytest.raises(LpuError, match="version 99"):
        image.from_bytes(bytes(data))


def test_a_truncated_image_is_refused_as_truncated():
    data = image.to_bytes(sample())
    for n in (0, 5, 12, 30, len(data) // 2, len(data) - 1):
        with pytest.raises(LpuError, match="truncated|magic"):
            image.from_bytes(data[:n], "p.lpx")


def test_a_flipped_bit_is_caught_by_the_checksum():
    data = bytearray(image.to_bytes(sample()))
    data[60] ^= 0x10
    with pytest.raises(LpuError, match="checksum"):
        image.from_bytes(bytes(data))


def test_an_inconsistent_header_with_a_valid_checksum_is_refused():
    data = image.to_bytes(sample())
    body = data[:-4].replace(b'"lanes":16', b'"lanes":17')
    with pytest.raises(LpuError, match="inconsistent"):
        image.from_bytes(body + struct.pack("<I", zlib.crc32(body)))


def test_a_failed_save_leaves_no_partial_file(tmp_path):
    bad = sample()
    bad.chip = "no-such-chip"
    with pytest.raises(LpuError):
        image.save(bad, tmp_path / "p.lpx")
    assert list(tmp_path.iterdir()) == []


def test_thousands_of_mutated_images_fail_cleanly():
    """Random byte edits, cuts and splices: each loads or raises LpuError, nothing else."""
    good = image.to_bytes(sample())
    rng = random.Random(1234)
    outcomes = {"ok": 0, "refused": 0}
    for _ in range(3000):
        data = bytearray(good)
        for _ in range(rng.randint(1, 4)):
            op = rng.randrange(4)
            i = rng.randrange(len(data)) if data else 0
            if op == 0 and data:
                data[i] = rng.randrange(256)
            elif op == 1:
                del data[i:i + rng.randint(1, 16)]
            elif op == 2:
                data[i:i] = data[i:i + rng.randint(1, 16)]
            else:
                data = data[:i]
        if rng.random() < 0.5 and len(data) > 4:  # fix the checksum so the parser gets tested
            data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
            if len(data) >= 24:
                data[16:24] = struct.pack("<Q", len(data))
                data[-4:] = struct.pack("<I", zlib.crc32(bytes(data[:-4])))
        try:
            image.from_bytes(bytes(data), "m.lpx")
            outcomes["ok"] += 1
        except LpuError as e:
            assert str(e).startswith("m.lpx: ")
            outcomes["refused"] += 1
    assert outcomes["refused"] > 2000
