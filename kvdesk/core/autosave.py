"""Autosave of unsaved plans, and recovery after a crash.

Each running kvdesk writes its unsaved plan to ``<data dir>/autosave/session-<pid>-<id>.json`` (atomic
write) shortly after every change, and deletes it when the plan is saved or the window closes
normally. A file left behind by a process that is no longer running is what a crash leaves: at the
next start it is offered back (``recoverable()``), then discarded or restored.

The autosave file is plain JSON validated by pydantic on the way back in, like a ``.kvplan``: nothing
in it is executed or imported.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from kvdesk.core.atomic import atomic_write_text
from kvdesk.core.errors import InputError, describe_validation_error
from kvdesk.core.limits import MAX_PLAN_BYTES, JsonLimits, read_json_object
from kvdesk.core.plan import Plan
from kvdesk.core.settings import data_dir

AUTOSAVE_FORMAT = 1
_PREFIX = "session-"
_LIMITS = JsonLimits(max_bytes=MAX_PLAN_BYTES)


def autosave_dir() -> Path:
    return data_dir() / "autosave"


@dataclass(frozen=True)
class Recovered:
    """A plan some earlier kvdesk left unsaved."""

    path: Path  # the autosave file
    plan: Plan
    source: str | None  # the .kvplan it was opened from, if any
    saved_at: float  # time.time() of the autosave

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        where = f" (from {Path(self.source).name})" if self.source else " (never saved)"
        return f"{self.plan.model.name} on {self.plan.gpu.name}{where}, autosaved {when}"

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI only
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def _pid_alive_windows(pid: int) -> bool:  # pragma: no cover - Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    code = ctypes.c_ulong()
    ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
    kernel32.CloseHandle(handle)
    return bool(ok) and code.value == 259  # STILL_ACTIVE


class Autosaver:
    """One per window: ``save(plan, source)`` after edits, ``clear()`` once the plan is saved or closed."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or autosave_dir()
        self.path = self.directory / f"{_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}.json"
        self.saves = 0

    def save(self, plan: Plan, source: str | Path | None = None) -> Path:
        doc = {
            "kvdesk_autosave": AUTOSAVE_FORMAT,
            "pid": os.getpid(),
            "saved_at": time.time(),
            "source": str(source) if source else None,
            "plan": plan.model_dump(mode="json"),
        }
        atomic_write_text(self.path, json.dumps(doc, indent=1) + "\n")
        self.saves += 1
        return self.path

    def clear(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def _load(path: Path) -> Recovered:
    doc = read_json_object(path, _LIMITS, what="autosave file")
    if doc.get("kvdesk_autosave") != AUTOSAVE_FORMAT:
        raise InputError(f"{path.name}: not a kvdesk autosave file of a known version")
    try:
        plan = Plan.model_validate(doc.get("plan"))
    except ValidationError as exc:
        raise InputError(f"{path.name}: {describe_validation_error(exc)}") from None
    source = doc.get("source")
    saved_at = doc.get("saved_at")
    return Recovered(
        path=path,
        plan=plan,
        source=source if isinstance(source, str) else None,
        saved_at=float(saved_at) if isinstance(saved_at, int | float) else path.stat().st_mtime,
    )


def _owner_pid(path: Path) -> int:
    # session-<pid>-<id>.json
    try:
        return int(path.stem[len(_PREFIX) :].split("-", 1)[0])
    except ValueError:
        return -1


def recoverable(directory: Path | None = None) -> tuple[list[Recovered], list[str]]:
    """Plans left by kvdesk processes that are no longer running, newest first, and the problems
    found with autosave files that could not be read (those files are removed)."""
    folder = directory or autosave_dir()
    if not folder.is_dir():
        return [], []
    found: list[Recovered] = []
    problems: list[str] = []
    for path in sorted(folder.glob(f"{_PREFIX}*.json")):
        if _pid_alive(_owner_pid(path)):
            continue  # another kvdesk window is running and owns it
        try:
            found.append(_load(path))
        except (InputError, OSError) as exc:
            problems.append(str(exc))
            with contextlib.suppress(OSError):
                path.unlink()
    found.sort(key=lambda r: r.saved_at, reverse=True)
    return found, problems
