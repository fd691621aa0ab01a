"""CLI: ``kvdesk calc --save``, ``check``, ``export`` and ``diff`` end to end (in-process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kvdesk.cli import main
from kvdesk.core.planfile import FORMAT_VERSION, dumps_plan, load_plan, save_plan
from tests.core.test_planfile import hybrid_plan, llama_plan

PLANS = Path(__file__).parents[1] / "data" / "plans"
CALC = ["calc", "--model", "llama-3.1-8b", "--vram-gib", "24", "--ctx", "8k", "--batch", "2"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _saved(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str, name: str = "p.kvplan") -> Path:
    path = tmp_path / name
    code, _, err = _run(capsys, *CALC, *extra, "--save", str(path))
    assert code == 0, err
    return path


def test_calc_save_writes_the_plan_it_computed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "team.kvplan"
    code, out, _ = _run(capsys, *CALC, "--kv-dtype", "q8_0", "--json", "--save", str(path))
    assert code == 0
    loaded = load_plan(path)
    assert loaded.plan.workload.context == 8192 and loaded.plan.workload.kv_dtype_k == "q8_0"
    assert loaded.plan.origin.preset_id == "llama-3.1-8b"
    assert loaded.snapshot == json.loads(out)
    code, out2, _ = _run(capsys, "check", str(path), "--json")
    assert code == 0 and json.loads(out2) == json.loads(out)  # check --json is calc --json


def test_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _saved(tmp_path, capsys)
    assert _run(capsys, "check", str(path))[0] == 0
    code, out, _ = _run(capsys, "check", str(path), "--vram-gib", "8")
    assert code == 1 and "Spills" in out
    code, _, _ = _run(capsys, "check", str(path), "--gpu", "h100-sxm-80gb")
    assert code == 0
    code, out, _ = _run(capsys, "check", str(path), "--vram-gib", "8", "--json")
    assert code == 1 and json.loads(out)["fits"] is False


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"junk", "not valid JSON"),
        (b"", "empty"),
        (b"\x00\x01\x02", "binary"),
        (json.dumps({"format_version": FORMAT_VERSION + 5, "kvdesk_version": "7.0"}).encode(), "update kvdesk"),
    ],
)
def test_check_bad_file_exits_2_with_one_line(
    content: bytes, needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.kvplan"
    path.write_bytes(content)
    code, out, err = _run(capsys, "check", str(path))
    assert code == 2 and out == ""
    assert err.startswith("kvdesk: error: bad.kvplan: ") and needle in err and err.count("\n") == 1


def test_check_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "check", str(tmp_path / "nope.kvplan"))
    assert code == 2 and "no such file" in err


def test_check_bad_gpu_override(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _saved(tmp_path, capsys)
    code, _, err = _run(capsys, "check", str(path), "--gpu", "no-such-gpu")
    assert code == 2 and "no-such-gpu" in err


def test_check_old_file_notes_go_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "check", str(PLANS / "v1_llama8b_generic.kvplan"), "--json")
    assert code in (0, 1)
    json.loads(out)  # stdout stays pure JSON
    assert "kvdesk: note:" in err and "format version 1" in err


@pytest.mark.parametrize("target", ["llama.cpp", "vllm", "ollama", "markdown", "csv"])
def test_export_targets(target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.kvplan"
    save_plan(path, llama_plan(kv_dtype_k="fp8", kv_dtype_v="fp8") if target == "vllm" else llama_plan())
    code, out, err = _run(capsys, "export", str(path), "--to", target)
    assert code == 0, err
    assert out.endswith("\n") and len(out) > 50
    dest = tmp_path / "out.txt"
    code, out2, _ = _run(capsys, "export", str(path), "--to", target, "-o", str(dest))
    assert code == 0 and out2 == "" and dest.read_text(encoding="utf-8") == out


def test_export_impossible_target_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "p.kvplan"
    save_plan(path, llama_plan(kv_dtype_k="fp8", kv_dtype_v="fp8"))
    code, out, err = _run(capsys, "export", str(path), "--to", "llama.cpp")
    assert code == 2 and out == "" and "llama.cpp has no fp8" in err
    code, _, err = _run(capsys, "export", str(path), "--to", "tgi")
    assert code == 2 and "unknown export target" in err


def test_diff_same_plan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _saved(tmp_path, capsys, name="a.kvplan")
    code, out, _ = _run(capsys, "diff", str(a), str(a))
    assert code == 0 and "same plan" in out


def test_diff_names_fields_and_memory_effects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _saved(tmp_path, capsys, name="a.kvplan")
    b = _saved(tmp_path, capsys, "--ctx", "32k", "--kv-dtype", "q8_0", "--vram-gib", "16", name="b.kvplan")
    code, out, _ = _run(capsys, "diff", str(a), str(b))
    assert code == 1
    assert "workload.context: 8,192 → 32,768" in out and "gpu.memory_bytes" in out
    assert "KV cache" in out and "verdict" in out and "FITS → DOES NOT FIT" in out
    code, out, _ = _run(capsys, "diff", str(a), str(b), "--json")
    data = json.loads(out)
    assert code == 1 and data["identical"] is False
    fields = {c["field"] for c in data["changes"]}
    assert {"workload.context", "workload.kv_dtype_k", "gpu.memory_bytes"} <= fields
    mem = data["memory"]
    assert mem["delta"]["kv_cache_bytes"] == mem["b"]["kv_cache_bytes"] - mem["a"]["kv_cache_bytes"] > 0
    assert mem["delta"]["budget_bytes"] == -(8 << 30)
    # the per-section effects add up to the whole difference
    assert [s["section"] for s in data["steps"]] == ["gpu", "workload"]
    for key in ("kv_cache_bytes", "total_bytes", "budget_bytes"):
        assert sum(s["delta"].get(key, 0) for s in data["steps"]) == mem["delta"][key]
    gpu_step = data["steps"][0]
    assert gpu_step["delta"] == {"budget_bytes": -(8 << 30)} or "kv_cache_bytes" not in gpu_step["delta"]


def test_diff_model_change_is_summarised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a.kvplan", tmp_path / "b.kvplan"
    save_plan(a, llama_plan())
    save_plan(b, hybrid_plan())
    code, out, _ = _run(capsys, "diff", str(a), str(b))
    assert code == 1 and "more model field(s)" in out and "model.name: Llama-ish 8B → Hybrid MLA + state" in out


def test_diff_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _saved(tmp_path, capsys, name="a.kvplan")
    bad = tmp_path / "b.kvplan"
    bad.write_text(dumps_plan(llama_plan())[:100])
    code, _, err = _run(capsys, "diff", str(a), str(bad))
    assert code == 2 and "b.kvplan" in err and "truncated" in err


@pytest.mark.parametrize("engine", ["llama.cpp", "vllm", "ollama"])
def test_engine_round_trip_through_a_file(engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip({"llama.cpp": "kvdesk.core.engines.llamacpp", "vllm": "kvdesk.core.engines.vllm",
                         "ollama": "kvdesk.core.engines.ollama"}[engine])
    path = tmp_path / "e.kvplan"
    code, out, err = _run(capsys, *CALC, "--engine", engine, "--json", "--save", str(path))
    assert code == 0, err
    code, out2, _ = _run(capsys, "check", str(path), "--json")
    assert code in (0, 1) and json.loads(out2) == json.loads(out)
    assert load_plan(path).messages == []
