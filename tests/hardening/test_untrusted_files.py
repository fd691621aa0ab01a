"""Untrusted plan files cannot execute anything: no pickle, eval, exec or import by name from a file."""

from __future__ import annotations

import ast
import contextlib
import json
import sys
from pathlib import Path

import pytest

from kvdesk.core.defaults import default_plan
from kvdesk.core.errors import KvdeskError
from kvdesk.core.planfile import PlanFileError, dumps_plan, load_plan, loads_plan

KVDESK = Path(__file__).resolve().parent.parent.parent / "kvdesk"
MARKER_MODULE = "kvdesk_untrusted_marker"

# Files that import a module whose name is not a string literal, and why that is safe.
DYNAMIC_IMPORT_ALLOWED = {
    "cli.py": "subcommand modules from the constant COMMANDS table",
    "core/engines/__init__.py": "engine modules from the constant _REGISTRY; the plan's engine name is a Literal",
    "gui/main_window.py": "lazy tabs: module names are literals passed by the window itself",
}


@pytest.fixture
def marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module that, if anything imported it, would leave a file behind."""
    flag = tmp_path / "imported.flag"
    (tmp_path / f"{MARKER_MODULE}.py").write_text(
        f"open({str(flag)!r}, 'w').write('imported')\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, MARKER_MODULE, raising=False)
    return flag


def _doc() -> dict:
    return json.loads(dumps_plan(default_plan()))


def _tricks() -> list[tuple[str, dict]]:
    cases: list[tuple[str, dict]] = []
    for where in ("", "plan", "plan.model", "plan.engine", "plan.workload"):
        for key, value in (
            ("__class__", f"{MARKER_MODULE}.Evil"),
            ("__reduce__", [f"{MARKER_MODULE}.run", []]),
            ("py/object", f"{MARKER_MODULE}.Evil"),  # jsonpickle
            ("$type", f"{MARKER_MODULE}.Evil, evil"),  # Json.NET
            ("!!python/object/apply:os.system", ["touch /tmp/x"]),  # YAML
            ("__import__", MARKER_MODULE),
        ):
            doc = _doc()
            target = doc
            for part in filter(None, where.split(".")):
                target = target[part]
            target[key] = value
            cases.append((f"{where or 'top'}:{key}", doc))
    for field_path in ("plan.engine.name", "plan.model.architecture", "plan.workload.kv_dtype_k",
                       "plan.workload.weights_format", "plan.origin.preset_id", "plan.model.dtype"):
        doc = _doc()
        *parents, last = field_path.split(".")
        target = doc
        for part in parents:
            target = target[part]
        target[last] = f"{MARKER_MODULE}:Evil"
        cases.append((field_path, doc))
    return cases


@pytest.mark.parametrize(("name", "doc"), _tricks(), ids=[n for n, _ in _tricks()])
def test_tricks_are_rejected_or_inert(name: str, doc: dict, marker: Path, tmp_path: Path) -> None:
    path = tmp_path / "evil.kvplan"
    path.write_text(json.dumps(doc), encoding="utf-8")
    try:
        loaded = load_plan(path)
    except KvdeskError as exc:
        assert str(exc)  # a clear message, not a traceback
    else:  # accepted only as plain data (e.g. a free-text field holding the name)
        assert MARKER_MODULE in json.dumps(loaded.plan.model_dump(mode="json"))
        from kvdesk.core.calculator import calculate

        with contextlib.suppress(KvdeskError, ValueError):
            calculate(loaded.plan)
    assert not marker.exists(), "a plan file made kvdesk import a module it named"
    assert MARKER_MODULE not in sys.modules


@pytest.mark.parametrize(
    "payload",
    [
        b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94\x8c\x04eval\x94\x93\x94.",  # pickle
        b"!!python/object/apply:os.system ['touch /tmp/kvdesk-pwned']\n",  # YAML
        b"cos\nsystem\n(S'touch /tmp/kvdesk-pwned'\ntR.",  # pickle protocol 0
        b"__import__('os').system('touch /tmp/kvdesk-pwned')",  # Python source
    ],
)
def test_non_json_payloads_are_refused(payload: bytes, tmp_path: Path) -> None:
    path = tmp_path / "evil.kvplan"
    path.write_bytes(payload)
    with pytest.raises(PlanFileError, match=r"evil\.kvplan"):
        load_plan(path)
    assert not Path("/tmp/kvdesk-pwned").exists()


def test_unknown_fields_are_rejected_by_name() -> None:
    doc = _doc()
    doc["plan"]["__class__"] = "os.system"
    with pytest.raises(PlanFileError, match="__class__"):
        loads_plan(json.dumps(doc))


# -- static guard over the whole package ---------------------------------------------------------------
_FORBIDDEN_MODULES = {"pickle", "cPickle", "dill", "marshal", "shelve", "jsonpickle", "yaml", "cloudpickle"}
_FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}


def _sources() -> list[Path]:
    return sorted(p for p in KVDESK.rglob("*.py") if "_data" not in p.parts)


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(KVDESK)))
def test_no_code_execution_paths_in_kvdesk(path: Path) -> None:
    rel = str(path.relative_to(KVDESK))
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=rel)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            bad = [n for n in names if n.split(".")[0] in _FORBIDDEN_MODULES]
            assert not bad, f"{rel}:{node.lineno} imports {bad}: kvdesk never deserialises code"
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in _FORBIDDEN_BUILTINS:
                pytest.fail(f"{rel}:{node.lineno} calls {func.id}()")
            if isinstance(func, ast.Attribute) and func.attr == "import_module":
                literal = node.args and isinstance(node.args[0], ast.Constant)
                assert literal or rel in DYNAMIC_IMPORT_ALLOWED, (
                    f"{rel}:{node.lineno} imports a module by a computed name; add it to "
                    "DYNAMIC_IMPORT_ALLOWED only if the name can never come from a file"
                )
            for kw in node.keywords:
                if kw.arg == "shell" and isinstance(kw.value, ast.Constant) and kw.value.value is True:
                    pytest.fail(f"{rel}:{node.lineno} runs a shell command (shell=True)")
