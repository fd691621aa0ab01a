"""Engine profiles, chosen by ``plan.engine.name``."""

from __future__ import annotations

import importlib

from kvdesk.core.engines.base import EngineProfile

# name -> "module:Class"; imported lazily so a missing optional profile never breaks the rest.
_REGISTRY: dict[str, str] = {
    "generic": "kvdesk.core.engines.generic:GenericEngine",
    "llama.cpp": "kvdesk.core.engines.llamacpp:LlamaCppEngine",
    "ollama": "kvdesk.core.engines.ollama:OllamaEngine",
    "vllm": "kvdesk.core.engines.vllm:VllmEngine",
}
_CACHE: dict[str, EngineProfile] = {}


def get_engine(name: str) -> EngineProfile:
    if name not in _CACHE:
        target = _REGISTRY.get(name)
        if target is None:
            raise KeyError(f"unknown engine '{name}' (choose from {', '.join(_REGISTRY)})")
        module, cls = target.split(":")
        _CACHE[name] = getattr(importlib.import_module(module), cls)()
    return _CACHE[name]


def engine_names() -> list[str]:
    return list(_REGISTRY)
