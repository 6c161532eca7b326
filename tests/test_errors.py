"""The error contract (README): bad input exits 2 with a message, no traceback, nothing overwritten."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from lmpshear.rundir import RunDir
from lmpshear.store import Trajectory

from conftest import cli, write_spec


def test_prepare_never_overwrites_a_run_a_spec_or_a_users_files(tmp_path):
    run = tmp_path / "run"
    cli("prepare", "ka3d-tiny", "-o", run, check=True)
    first = (run / "config.toml").read_text()
    proc = cli("prepare", "softdisk2d-tiny", "-o", run)
    assert proc.returncode == 2 and "already holds a prepared run" in proc.stderr and "--force" in proc.stderr
    assert (run / "config.toml").read_text() == first
    # --force replaces the spec of a run that has not started
    cli("prepare", "softdisk2d-tiny", "-o", run, "--force", check=True)
    assert RunDir(run).spec().system.dimension == 2
    # ... but never while a run holds the directory (a run equilibrating has no data yet), even with --force
    with RunDir(run).lock():
        proc = cli("prepare", "ka3d-tiny", "-o", run, "--force")
    assert proc.returncode == 2 and "is being run now" in proc.stderr and "Traceback" not in proc.stderr
    assert RunDir(run).spec().system.dimension == 2
    # a directory with a user's own files
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    for extra in ((), ("--force",)):
        proc = cli("prepare", "ka3d-tiny", "-o", mine, *extra)
        assert proc.returncode == 2 and "not empty (notes.txt)" in proc.stderr
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    # an empty -o is not the current directory
    proc = cli("prepare", "ka3d-tiny", "-o", "", cwd=tmp_path)
    assert proc.returncode == 2 and "-o/--out is empty" in proc.stderr
    assert not (tmp_path / "config.toml").exists()


def _interrupt(rundir, after_rows, sig=signal.SIGINT, timeout=300):
    """Start ``lmpshear run`` and send ``sig`` once thermo.csv has more than ``after_rows`` lines."""
    proc = subprocess.Popen([sys.executable, "-m", "lmpshear", "run", rundir], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    thermo = rundir / "thermo.csv"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if thermo.exists() and sum(1 for _ in open(thermo)) > after_rows:
            break
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.parametrize("preset, spec, sig", [
    ("bd45-tiny", {"production_strain": 1.0, "checkpoint_every": 10}, signal.SIGINT),
    ("ka3d-tiny", {"checkpoint_every": 5}, signal.SIGTERM),
])
def test_an_interrupted_run_says_so_and_resumes(tmp_path, preset, spec, sig):
    """Ctrl-C (or SLURM's SIGTERM) mid-run: exit 130, a message saying how to resume, status
    "interrupted" (not "running"), no traceback; `lmpshear run` then completes every sample."""
    path = write_spec(tmp_path / "spec.toml", preset, protocol=spec)
    run = tmp_path / "run"
    cli("prepare", path, "-o", run, check=True)
    code, _, err = _interrupt(run, 12, sig)
    assert code == 130, err
    assert "interrupted" in err and f"lmpshear run {run}" in err and "resumes" in err
    assert "Traceback" not in err and "SystemError" not in err
    status = RunDir(run).status()
    assert status["state"] == "interrupted" and "resumes" in status["message"]
    cli("run", run, check=True)
    spec_ = RunDir(run).spec()
    with Trajectory(run / "traj.gsd") as traj:
        assert len(traj) == spec_.n_samples + 1
        np.testing.assert_allclose(np.diff(traj.times), spec_.rate.sample_interval, rtol=1e-9)
    assert RunDir(run).status()["state"] == "complete"


@pytest.mark.parametrize("system, protocol, rates, needle", [
    ({"n_particles": 10**12}, {}, None, "beyond what one run can hold"),
    ({}, {"timestep": 1e-300}, [{"rate": 0.06, "sample_interval": 1e-299}], "particle-steps, about"),
    ({}, {"production_strain": 1e12}, None, "years at"),
])
def test_prepare_refuses_runs_that_cannot_finish_with_the_numbers(tmp_path, system, protocol, rates, needle):
    path = write_spec(tmp_path / "spec.toml", "ka3d-tiny", system=system, protocol=protocol, rates=rates)
    proc = cli("prepare", path, "-o", tmp_path / "run")
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_prepare_estimates_and_warns_about_long_runs(tmp_path):
    from lmpshear import config
    from lmpshear.prepare import STORE_BYTES_PER_PARTICLE, estimate

    spec = config.load("ka3d").select_rate(0.06)
    e = estimate(spec)
    assert e["frames"] == spec.n_samples + 1
    assert e["store_bytes"] == e["frames"] * 16500 * STORE_BYTES_PER_PARTICLE
    assert e["steps"] == spec.steps(spec.protocol.equilibration_time) + spec.shear_steps
    path = write_spec(tmp_path / "long.toml", "ka3d", protocol={"production_strain": 100.0})
    proc = cli("prepare", path, "-o", tmp_path / "run", "--rate", 0.06, check=True)
    assert "warning: this run needs about" in proc.stderr and "GB for traj.gsd" in proc.stderr
