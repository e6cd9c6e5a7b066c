"""Writing output files safely: all at once or not at all, with ordinary permissions.

Every command that writes a file goes through atomic_write, so a failure (or an interrupted
run) never leaves a half-written image, trace or array behind.
"""

from __future__ import annotations

import os
import tempfile

from lpu.errors import LpuError


def atomic_write(path: str | os.PathLike, data: bytes | str) -> None:
    """Write to a temp file in the same folder, then rename it over `path`."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=".lpu-", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a user's file gets the usual mode
        os.replace(tmp, path)
    except OSError as e:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        raise LpuError(f"cannot write ({e.strerror})", file=path) from None
