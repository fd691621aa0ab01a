"""Atomic file writes: temp file in the same folder, fsync, ``os.replace`` — the old file survives a failure."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path

STALE_TEMP_S = 15 * 60  # a temp file this old was left by a writer that was killed mid-save


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with contextlib.suppress(OSError):  # mkstemp makes 0600; give the file the mode it would normally get
            os.fchmod(fd, _target_mode(target))
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the OS allows it
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    _remove_stale_temps(target)


def _target_mode(target: Path) -> int:
    """The existing file's permission bits, or 0o666 minus the umask for a new file."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _remove_stale_temps(target: Path) -> None:
    """Delete ``.<name>.*.tmp`` files a killed save left next to ``target`` (old ones only: a
    concurrent writer's fresh temp file is never touched)."""
    cutoff = time.time() - STALE_TEMP_S
    with contextlib.suppress(OSError):
        for tmp in target.parent.glob(f".{target.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if tmp.stat().st_mtime < cutoff:
                    tmp.unlink()


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
