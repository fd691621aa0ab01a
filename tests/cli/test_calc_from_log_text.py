"""`kvdesk calc --from-log` without --json prints the log's figures beside the prediction as a table."""

from __future__ import annotations

from pathlib import Path

import pytest

from kvdesk.cli import main

# verbatim line from the llama.cpp b6209 Llama-3.1-70B log in tests/data/validation/engine_logs.json
LINE = (
    "llama_kv_cache_unified: size = 1280.00 MiB (  4096 cells,  80 layers,  1/1 seqs), "
    "K (f16):  640.00 MiB, V (f16):  640.00 MiB"
)


def test_from_log_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "run.log"
    log.write_text(LINE + "\n")
    code = main(["calc", "--model", "llama-3.1-70b", "--engine", "llama.cpp", "--ctx", "4096", "--from-log", str(log)])
    out = capsys.readouterr().out
    assert code == 0
    table = out.split("compared with", 1)[1].splitlines()
    kv_row = next(line for line in table if line.strip().startswith("KV cache "))
    assert kv_row.split()[-2:] == ["0", "B"]  # kvdesk's prediction equals the engine's figure exactly
    assert "1.25 GiB" in kv_row
