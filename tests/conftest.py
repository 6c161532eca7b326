"""Shared helpers: real LAMMPS runs of tiny presets, run through the CLI in subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomli_w

from lmpshear import config

REPO = Path(__file__).resolve().parents[1]
# every figure the tests make (here and in the processes they start: figures, demo, report, recipes, ice)
# is checked for text cut by the edge, text over text and legends over data (lmpshear.drawing.save_png)
os.environ["LMPSHEAR_CHECK_LAYOUT"] = "1"


def cli(*args, cwd=None, check=False, env=None, timeout=900) -> subprocess.CompletedProcess:
    """Run ``python -m lmpshear ARGS`` and capture its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "lmpshear", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"lmpshear {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def write_spec(
    path: Path, base: str, system: dict | None = None, protocol: dict | None = None, rates: list[dict] | None = None
) -> Path:
    """A TOML spec that extends a preset with overrides."""
    data: dict = {"extends": str(config.shipped.preset_path(base))}
    if system:
        data["system"] = system
    if protocol or rates:
        data["protocol"] = dict(protocol or {})
        if rates:
            data["protocol"]["rates"] = rates
    path.write_text(tomli_w.dumps(data))
    return path


def prepare_and_run(tmp: Path, spec: str | Path, name: str = "run", rate=None) -> Path:
    rundir = tmp / name
    args = ["prepare", spec, "-o", rundir] + (["--rate", rate] if rate is not None else [])
    cli(*args, check=True)
    cli("run", rundir, check=True)
    return rundir


def wait_for_rows(thermo: Path, rows: int, timeout: float = 300) -> None:
    """Wait (at most ``timeout`` s) until a run's thermo.csv has more than ``rows`` lines."""
    deadline = time.time() + timeout
    while time.time() < deadline and not (thermo.exists() and sum(1 for _ in open(thermo)) > rows):
        time.sleep(0.05)


def run_and_kill(rundir: Path, after_rows: int | None = None, timeout: float = 600, until=None) -> None:
    """Start ``lmpshear run`` and SIGKILL it once thermo.csv has more than ``after_rows`` lines, or once
    ``until()`` is true."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "run", rundir], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    thermo = rundir / "thermo.csv"
    if until is None:

        def until():
            return thermo.exists() and sum(1 for _ in open(thermo)) > after_rows

    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if until():
                break
        except (OSError, ValueError):  # a file caught while being replaced
            pass
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """ka3d-tiny, prepared and run once for the whole session (read-only for tests)."""
    return prepare_and_run(tmp_path_factory.mktemp("tiny"), "ka3d-tiny")
