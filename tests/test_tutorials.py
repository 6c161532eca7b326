"""Every tutorial of the documentation runs, at its tiny size, so that the docs cannot rot.

A tutorial page's ```bash blocks run in bash (set -euo pipefail) and its ```python blocks in one
namespace, in the order the page shows them, in a fresh folder with this environment's `lmpshear` on
the PATH; ```sh blocks are shown only (commands for a cluster or another machine). After the page,
the files it promises must exist (``PROMISES``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

TUTORIALS = REPO / "docs" / "tutorials"
BLOCK = re.compile(r"^```(bash|python|sh)[^\n]*\n(.*?)^```", re.S | re.M)

#: what each tutorial leaves behind, to check that its commands did their work
PROMISES = {
    "flow-curve.md": ["report/flowcurve.png", "report/flowcurve.json", "runs/rate-0.12/viscosity.json"],
    "clusters.md": ["runs/tiny/clusters.json", "runs/tiny/fig1b.png", "runs/tiny/fig3a.png"],
    "import.md": ["shear.lammpstrj", "runs/ext/source.json", "runs/ext/overlap.json"],
    "campaign.md": ["campaign/report/campaign.json", "campaign/report/runs.csv"],
    "notebook.md": ["runs/nb/clusters.json", "clusters.csv"],
}
#: the tutorials of minutes (several runs and analyses): `make test-all` only
FULL = {"campaign.md"}


def blocks(page: Path) -> list[tuple[str, str]]:
    return [(kind, code) for kind, code in BLOCK.findall(page.read_text()) if kind != "sh"]


def test_every_tutorial_is_listed_and_has_code():
    pages = sorted(p.name for p in TUTORIALS.glob("*.md"))
    assert pages == sorted(PROMISES)
    for name in pages:
        assert blocks(TUTORIALS / name), f"{name} has no runnable block"


@pytest.mark.parametrize("name", [pytest.param(n, marks=[pytest.mark.full] if n in FULL else []) for n in PROMISES])
def test_the_tutorial_runs(name, tmp_path, monkeypatch):
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "MPLBACKEND": "Agg",
    }
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__tutorial__"}
    for k, (kind, code) in enumerate(blocks(TUTORIALS / name)):
        if kind == "bash":
            proc = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", code],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            assert proc.returncode == 0, f"{name}, block {k}:\n{code}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        else:
            exec(compile(code, f"{name}:block{k}", "exec"), namespace)
    missing = [p for p in PROMISES[name] if not (tmp_path / p).exists()]
    assert not missing, f"{name} did not make {missing}"
