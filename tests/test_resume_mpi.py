"""Fault tolerance and parallel runs: kill -9 and resume, and 2 MPI ranks."""

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import cli, prepare_and_run, run_and_kill, write_spec

from lmpshear import config
from lmpshear.readers import read_trajectory
from lmpshear.rundir import RunDir
from lmpshear.store import Trajectory, read_thermo, write_lammps_data

#: real runs of minutes (make test-all, CI); `make test` leaves them out
pytestmark = pytest.mark.full


def _resume_spec(tmp_path):
    return write_spec(
        tmp_path / "resume.toml",
        "ka3d-tiny",
        system={"n_particles": 1000},
        protocol={"production_strain": 1.5, "checkpoint_every": 20, "lammps_dump": "image"},
    )


def test_resume_after_kill_gives_the_same_frames_as_an_uninterrupted_run(tmp_path):
    spec_path = _resume_spec(tmp_path)
    reference = prepare_and_run(tmp_path, spec_path, "reference")

    victim = tmp_path / "victim"
    cli("prepare", spec_path, "-o", victim, check=True)
    # kill between checkpoints: after frame 45 (checkpoints every 20 samples: 0, 20, 40, 60, ...)
    run_and_kill(victim, 47)
    thermo = victim / "thermo.csv"
    ckpt = RunDir(victim).latest_checkpoint()
    assert ckpt is not None and 0 < ckpt.step
    spec = config.load(victim / "config.toml")
    assert sum(1 for _ in open(thermo)) - 1 > ckpt.frames  # rows beyond the checkpoint exist, to be cut
    # and the store was flushed past the checkpoint, then cut (a crash, a full disk): GSD calls it corrupt
    import gsd.hoomd

    with gsd.hoomd.open(victim / "traj.gsd", "r+") as f:
        f.append(f[len(f) - 1])
    with np.load(ckpt.store_index) as saved:
        os.truncate(victim / "traj.gsd", int(saved["size"]) + 7)

    out = cli("run", victim, check=True)
    assert "cut back to the checkpoint" in out.stderr

    n = ckpt.frames  # frames 0 .. n-1 were kept from before the kill
    with Trajectory(reference / "traj.gsd") as ref, Trajectory(victim / "traj.gsd") as got:
        assert len(got) == len(ref) == spec.n_samples + 1
        assert np.array_equal(got.steps, ref.steps)  # every sample once, in order, no gap
        for key in ("unwrapped", "nonaffine", "virial_xy"):
            a, b = ref.particle_array(key), got.particle_array(key)
            assert np.array_equal(a[:n], b[:n]), key
            # LAMMPS's restart path is exact only to round-off (it re-bins and re-sorts atoms), so the
            # first resumed frame agrees to ~1e-14 and chaos amplifies that later on.
            assert np.abs(a[n] - b[n]).max() < 1e-10, key
    th_ref, th_got = read_thermo(reference / "thermo.csv"), read_thermo(victim / "thermo.csv")
    assert th_got.step.is_unique and th_got.step.is_monotonic_increasing
    assert np.array_equal(th_got.step, th_ref.step)
    # the LAMMPS dump was appended to on resume; the reader keeps one copy of each repeated step
    ext = read_trajectory(victim / "traj.lammpstrj", spec.rate.rate, timestep=spec.protocol.timestep)
    with Trajectory(victim / "traj.gsd") as got:
        assert np.array_equal(ext.steps, got.steps)
        # r̃ by the trapezoid on 10-step samples vs the store's per-step integral: close, not equal
        np.testing.assert_allclose(ext.nonaffine(), got.nonaffine(), atol=2e-3)
    first = th_ref.step <= ckpt.step
    assert th_ref[first].equals(th_got[first])


def test_two_mpi_ranks_give_the_same_store(tiny_run, tmp_path):
    """Same start (a data file, no equilibration): 1 and 2 ranks agree to round-off early on."""
    data = tmp_path / "start.data"
    with Trajectory(tiny_run / "traj.gsd") as tr:
        write_lammps_data(data, tr, len(tr) - 1, masses=[1.0, 1.0])
    spec_path = write_spec(
        tmp_path / "mpi.toml",
        "ka3d-tiny",
        protocol={
            "init": "file",
            "init_file": str(data),
            "minimize": False,
            "melt_time": 0.0,
            "equilibration_time": 0.0,
        },
    )
    serial = prepare_and_run(tmp_path, spec_path, "serial")
    parallel = tmp_path / "parallel"
    cli("prepare", spec_path, "-o", parallel, check=True)
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable))
    assert mpiexec, "the mpich wheel's mpiexec is not next to this python"
    proc = subprocess.run(
        [mpiexec, "-n", "2", sys.executable, "-m", "lmpshear", "run", str(parallel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        "2 MPI processor" in (parallel / "log.lammps").read_text()
        or "on 2 procs" in (parallel / "log.lammps").read_text()
    )
    with Trajectory(serial / "traj.gsd") as a, Trajectory(parallel / "traj.gsd") as b:
        assert len(a) == len(b) and np.array_equal(a.steps, b.steps)
        early = list(range(4))
        assert np.abs(a.unwrapped(early) - b.unwrapped(early)).max() < 1e-6
        assert np.abs(a.virial_xy(early) - b.virial_xy(early)).max() < 1e-5
    ta, tb = read_thermo(serial / "thermo.csv"), read_thermo(parallel / "thermo.csv")
    assert np.allclose(ta.pxy_virial[:20], tb.pxy_virial[:20], rtol=1e-5, atol=1e-7)


def test_a_run_killed_while_equilibrating_resumes_from_the_last_chunk(tmp_path):
    """A multi-hour equilibration is not lost to a kill: each tenth of each equilibration run leaves a
    LAMMPS restart, and the next `run` continues from it (skipping minimize and velocity create)."""
    import json

    spec_path = write_spec(tmp_path / "eq.toml", "ka3d-tiny", protocol={"melt_time": 10.0, "equilibration_time": 20.0})
    victim = tmp_path / "victim"
    cli("prepare", spec_path, "-o", victim, check=True)
    where = victim / "checkpoint" / "equilibration" / "where.json"
    run_and_kill(victim, until=lambda: where.exists() and json.loads(where.read_text())["run"] == 1, timeout=300)
    saved = json.loads(where.read_text())
    assert saved["run"] == 1 and 0 < saved["done"] < 4000  # in the NVT run (melt 2000 steps, NVT 4000)
    out = cli("run", victim, check=True)
    assert f"equilibration resumed at step {saved['done']} of 4000 (run 2)" in out.stderr
    assert "melting at T" not in out.stderr  # the melt is not run again
    assert "quenched to T = 0.45, equilibrating: 4000 of 4000 steps" in out.stderr  # the phases in plain words
    spec = config.load(victim / "config.toml")
    with Trajectory(victim / "traj.gsd") as traj:
        assert len(traj) == spec.n_samples + 1 and np.array_equal(traj.steps, np.arange(len(traj)) * spec.sample_steps)
    thermo = read_thermo(victim / "thermo.csv")
    assert abs(thermo.temp.iloc[len(thermo) // 2 :].mean() / spec.system.temperature - 1) < 0.1  # thermostatted
    assert not (victim / "checkpoint" / "equilibration").exists()  # the shear's checkpoints took over


def test_a_signal_under_mpiexec_stops_every_rank_at_one_checkpoint(tmp_path):
    """mpiexec passes SIGTERM (SLURM's, the local executor's) to both ranks; they agree on the sample
    to stop at, write a checkpoint there and exit 130 with one message; the resumed run is whole."""
    spec_path = write_spec(
        tmp_path / "stop.toml", "ka3d-tiny", protocol={"production_strain": 1.0, "checkpoint_every": 1000}
    )
    run = tmp_path / "run"
    cli("prepare", spec_path, "-o", run, check=True)
    mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable))
    command = [mpiexec, "-n", "2", sys.executable, "-m", "lmpshear", "run", str(run)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    thermo, deadline = run / "thermo.csv", time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if thermo.exists() and sum(1 for _ in open(thermo)) > 40:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    # one message, from rank 0 (its own SIGTERM, or "a signal to another rank" if that one came first)
    assert err.count("error: interrupted (") == 1 and "Traceback" not in err
    status = RunDir(run).status()
    ckpt = RunDir(run).latest_checkpoint()
    with Trajectory(run / "traj.gsd") as traj:
        stopped_at = len(traj)
    assert status["state"] == "interrupted" and 1 < ckpt.frames == stopped_at == status["frames"]
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    spec = config.load(run / "config.toml")
    with Trajectory(run / "traj.gsd") as traj:
        assert len(traj) == spec.n_samples + 1 > stopped_at
        assert np.array_equal(traj.steps, np.arange(len(traj)) * spec.sample_steps)
    th = read_thermo(run / "thermo.csv")
    assert th.step.is_unique and th.step.is_monotonic_increasing


def test_a_lammps_run_rolls_back_past_a_cut_into_checkpointed_frames(tmp_path):
    """kill -9 just after a checkpoint and the last 777 bytes of the store lost: the resume goes back to
    the newest checkpoint whose frames are intact; the frames up to it equal an uninterrupted run's
    exactly, the first one after it to round-off (LAMMPS's restart re-sorts atoms)."""
    import json

    spec_path = _resume_spec(tmp_path)
    reference = prepare_and_run(tmp_path, spec_path, "reference")
    victim = tmp_path / "victim"
    cli("prepare", spec_path, "-o", victim, check=True)
    pointer = victim / "checkpoint" / "latest.json"
    run_and_kill(victim, until=lambda: pointer.exists() and json.loads(pointer.read_text())["frames"] >= 41)
    with open(victim / "traj.gsd", "r+b") as fh:
        fh.truncate(os.path.getsize(victim / "traj.gsd") - 777)
    out = cli("run", victim, check=True)
    import re

    rolled = re.search(r"rolled back to the one at step \d+ \((\d+) frames", out.stderr)
    resumed = int(rolled.group(1)) if rolled else 41  # the cut may reach only bytes after the checkpoint
    with Trajectory(reference / "traj.gsd") as ref, Trajectory(victim / "traj.gsd") as got:
        assert len(got) == len(ref) and np.array_equal(got.steps, ref.steps)
        for key in ("unwrapped", "nonaffine", "virial_xy"):
            a, b = ref.particle_array(key), got.particle_array(key)
            assert np.array_equal(a[:resumed], b[:resumed]), key
            assert np.abs(a[resumed] - b[resumed]).max() < 1e-10, key
    assert "intact" in cli("run", victim, "--verify", check=True).stdout


def test_the_checkpoint_cadence_and_a_stop_anywhere_do_not_change_a_lammps_trajectory(tmp_path):
    """Every sample is a set-up boundary (lmpshear.engines.lammps), so checkpoints every 50 or every
    100 samples give the same trajectory bit for bit (before: 1.7e-3 at the first sample after the
    extra checkpoint), and a SIGINT between grid points, which checkpoints where it arrives, resumes to
    the uninterrupted run within round-off at the first resumed frame (before: 1e-4 to 1e-2)."""
    paths = {
        ce: write_spec(
            tmp_path / f"c{ce}.toml", "ka3d-tiny", protocol={"checkpoint_every": ce, "production_strain": 1.0}
        )
        for ce in (50, 100)
    }
    runs = {ce: prepare_and_run(tmp_path, path, f"run{ce}") for ce, path in paths.items()}
    with Trajectory(runs[50] / "traj.gsd") as a, Trajectory(runs[100] / "traj.gsd") as b:
        for key in ("unwrapped", "nonaffine", "virial_xy"):
            assert np.array_equal(a.particle_array(key), b.particle_array(key)), key
    stopped = tmp_path / "stopped"
    cli("prepare", paths[100], "-o", stopped, check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "run", stopped], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    from conftest import wait_for_rows

    wait_for_rows(stopped / "thermo.csv", 40)  # past the checkpoint at sample 0, well before 100 (a row a sample)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    n = RunDir(stopped).latest_checkpoint().frames
    assert 1 < n - 1 < 100  # a checkpoint off the grid of 100
    cli("run", stopped, check=True)
    with Trajectory(runs[100] / "traj.gsd") as ref, Trajectory(stopped / "traj.gsd") as got:
        for key in ("unwrapped", "nonaffine", "virial_xy"):
            a, b = ref.particle_array(key), got.particle_array(key)
            assert np.array_equal(a[:n], b[:n]), key
            assert np.abs(a[n] - b[n]).max() < 1e-11, key
