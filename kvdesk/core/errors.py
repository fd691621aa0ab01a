"""Errors the core raises for bad input; each carries a message fit to show a user."""

from __future__ import annotations


class KvdeskError(Exception):
    """Base class: the message names the problem and is safe to show as-is."""


class InputError(KvdeskError, ValueError):
    """A value the user gave (flag, spinbox, file field) is invalid."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def describe_validation_error(exc: Exception) -> str:
    """One line naming the bad field(s) of a pydantic ValidationError (or any exception)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for err in errors()[:3]:
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__") or "value"
            parts.append(f"{loc}: {err.get('msg', 'invalid')}")
        if parts:
            return "; ".join(parts)
    return str(exc) or exc.__class__.__name__
