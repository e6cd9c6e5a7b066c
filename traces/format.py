"""The trace file: a versioned header and compressed columnar arrays, a few bytes per event.

A Trace holds named columns (numpy arrays of one length per table) and a JSON header; the
file is magic + version + header + zlib-compressed little-endian columns + CRC32. Reading
never runs code (no pickle) and refuses bad files with a hint.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lpu.errors import LpuError

MAGIC = b"LPUTRACE"
VERSION = 1
_HINT = "write it again with lpu run|decode|gpu|compare --trace"
_DTYPES = {"i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f4", "f8"}


@dataclass
class Trace:
    """meta: JSON-able header (kind, chip, clock_ghz, units, names, ...); tables: name ->
    {column: array}, every column of a table the same length."""

    meta: dict = field(default_factory=dict)
    tables: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, np.ndarray]:
        return self.tables.get(name, {})

    def n_events(self) -> int:
        return sum(len(next(iter(t.values()))) for t in self.tables.values() if t)

    def to_bytes(self) -> bytes:
        cols, blobs = [], []
        for tname, table in self.tables.items():
            for cname, arr in table.items():
                a = np.ascontiguousarray(arr)
                code = a.dtype.newbyteorder("<").str[1:]
                if code not in _DTYPES:
                    raise ValueError(f"column {tname}.{cname}: unsupported dtype {a.dtype}")
                raw = a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()
                if code in ("i8", "u8") and tname != "gpu" and cname in ("start", "end"):
                    # cycles grow: deltas compress far better
                    raw = np.diff(a.astype("<i8"), prepend=0).astype("<i8").tobytes()
                    code = "d8"
                blob = zlib.compress(raw, 6)
                cols.append({"table": tname, "name": cname, "dtype": code, "len": len(a),
                             "bytes": len(blob)})
                blobs.append(blob)
        header = json.dumps({"meta": self.meta, "columns": cols}).encode()
        body = MAGIC + struct.pack("<HI", VERSION, len(header)) + header + b"".join(blobs)
        return body + struct.pack("<I", zlib.crc32(body))

    def save(self, path: str | os.PathLike) -> None:
        """Write atomically: a temp file renamed into place, nothing half-written on failure."""
        from lpu.files import atomic_write

        atomic_write(path, self.to_bytes())


def from_bytes(data: bytes, name: str = "<trace>") -> Trace:
    def bad(msg: str) -> LpuError:
        return LpuError(msg, file=name, hint=_HINT)

    if len(data) < len(MAGIC) + 10 or not data.startswith(MAGIC):
        raise bad("not an lpu trace (wrong magic number)")
    version, hlen = struct.unpack_from("<HI", data, len(MAGIC))
    if version != VERSION:
        raise bad(f"trace format version {version}; this lpu reads version {VERSION}")
    if zlib.crc32(data[:-4]) != struct.unpack_from("<I", data, len(data) - 4)[0]:
        raise bad("checksum mismatch: the file is truncated or corrupted")
    off = len(MAGIC) + 6
    try:
        head = json.loads(data[off:off + hlen].decode())
        meta, cols = head["meta"], head["columns"]
        off += hlen
        tables: dict[str, dict[str, np.ndarray]] = {}
        for c in cols:
            blob = data[off:off + int(c["bytes"])]
            off += int(c["bytes"])
            raw = zlib.decompress(blob)
            if c["dtype"] == "d8":
                arr = np.cumsum(np.frombuffer(raw, "<i8"))
            elif c["dtype"] in _DTYPES:
                arr = np.frombuffer(raw, "<" + c["dtype"]).copy()
            else:
                raise ValueError(f"unknown dtype {c['dtype']!r}")
            if len(arr) != int(c["len"]):
                raise ValueError(f"column {c['table']}.{c['name']} has the wrong length")
            tables.setdefault(str(c["table"]), {})[str(c["name"])] = arr
        if off != len(data) - 4 or not isinstance(meta, dict):
            raise ValueError("sections do not add up")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError, zlib.error) as e:
        raise bad(f"inconsistent trace file ({e})") from None
    return Trace(meta, tables)


def load(path: str | os.PathLike) -> Trace:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise LpuError(f"cannot read ({e.strerror})", file=str(path)) from None
    return from_bytes(data, str(path))
