"""presets/ and resources/ are found from a source checkout, an editable install and an installed wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import kvdesk
from kvdesk.core import resources

REPO = Path(kvdesk.__file__).resolve().parent.parent
PROBE = (
    "import kvdesk, json; from kvdesk.core import resources as r; from kvdesk.core.catalog import shipped_models;"
    "print(json.dumps([kvdesk.__file__, str(r.presets_dir()), str(r.resources_dir()), len(shipped_models())]))"
)


def _probe(env_extra: dict[str, str], cwd: Path) -> list:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_editable_or_checkout_finds_top_level_folders() -> None:
    assert resources.presets_dir() == REPO / "presets"
    assert (resources.presets_dir() / "models.json").is_file()
    assert resources.resources_dir() == REPO / "resources"


def test_source_checkout_via_pythonpath(tmp_path: Path) -> None:
    pkg, presets, _res, n_models = _probe({"PYTHONPATH": str(REPO)}, cwd=tmp_path)
    assert Path(pkg).is_relative_to(REPO)
    assert Path(presets) == REPO / "presets"
    assert n_models >= 1


def test_frozen_bundle_layout_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "presets").mkdir()
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.candidate_dirs("presets")[0] == tmp_path / "presets"


@pytest.mark.slow
def test_installed_wheel_ships_presets_and_resources(tmp_path: Path) -> None:
    wheel_dir = tmp_path / "wheel"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    build = subprocess.run(
        [*pip_wheel, "-w", str(wheel_dir), str(REPO)],
        capture_output=True, text=True, timeout=300,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(wheel_dir.glob("kvdesk-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "kvdesk/_data/presets/models.json" in names
    assert "kvdesk/_data/presets/gpus.json" in names
    assert any(n.startswith("kvdesk/_data/resources/") for n in names)
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    # run from an empty folder with only the installed copy first on the path
    pkg, presets, res, n_models = _probe({"PYTHONPATH": str(target)}, cwd=tmp_path)
    assert Path(pkg).is_relative_to(target)
    assert Path(presets) == target / "kvdesk" / "_data" / "presets"
    assert Path(res) == target / "kvdesk" / "_data" / "resources"
    assert n_models >= 1
