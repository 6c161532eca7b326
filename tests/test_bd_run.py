"""`lmpshear prepare/run/analyze` with engine = "bd": the store, the thermo table, kill and resume."""

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import cli, prepare_and_run, run_and_kill, write_spec

from lmpshear import config
from lmpshear.errors import UserError
from lmpshear.rundir import RunDir
from lmpshear.store import Trajectory, read_thermo


def _spec(tmp_path, **protocol):
    return write_spec(tmp_path / "bd.toml", "bd45-tiny", protocol={"production_strain": 0.6, **protocol})


@pytest.mark.full
def test_bd_run_writes_the_store_and_a_consistent_thermo_table(tmp_path):
    run = tmp_path / "run"
    cli("prepare", _spec(tmp_path), "-o", run, check=True)
    said = cli("run", run, check=True).stderr
    # the rest after insertion says how far it is, in steps: every 10% (or 30 s, for 10^6 particles)
    steps = [line for line in said.splitlines() if "equilibrating at rest:" in line]
    assert len(steps) == 10 and "500 of 500 steps, t = 0.05 of 0.05" in steps[-1], steps
    spec = config.load(run / "config.toml")
    assert not (run / "in.lammps").exists()
    thermo = read_thermo(run / "thermo.csv")
    with Trajectory(run / "traj.gsd") as traj:
        assert len(traj) == spec.n_samples + 1
        times = traj.times
        np.testing.assert_allclose(np.diff(times), spec.rate.sample_interval, rtol=1e-9)
        virial = traj.virial_xy()
        unwrapped = traj.unwrapped()
        d = np.array([spec.system.species[t].diameter for t in traj.typeid])
        for k in (0, len(traj) - 1):
            cell = traj.cell(k)
            # the per-particle stresses sum to the thermo table's global (Yukawa) virial stress
            row = thermo[thermo.step == traj.steps[k]].iloc[0]
            assert virial[k].sum() / (cell.lx * cell.ly * cell.lz) == pytest.approx(-row.pxy_virial, rel=1e-12)
            # no overlap beyond the tolerance in a stored frame
            rij = cell.minimum_image((unwrapped[k][:, None, :] - unwrapped[k][None, :, :]).reshape(-1, 3))
            dist = np.linalg.norm(rij, axis=1).reshape(len(d), len(d)) / (0.5 * (d[:, None] + d[None, :]))
            np.fill_diagonal(dist, np.inf)
            assert dist.min() >= 1 - 1e-6
        # r̃ is the path minus the affine flow: its y and z parts are the plain displacements
        nonaffine = traj.nonaffine()
        np.testing.assert_allclose(nonaffine[-1][:, 1:], unwrapped[-1][:, 1:] - unwrapped[0][:, 1:], atol=1e-9)
    # every frame describes the particles' sizes, as gsd and ovito read them (GSD's default is 1 for all)
    import gsd.hoomd
    from ovito.io import import_file

    with gsd.hoomd.open(run / "traj.gsd", "r") as f:
        for k in (0, len(f) - 1):
            np.testing.assert_allclose(f[k].particles.diameter, d, rtol=1e-6)
    radius = np.asarray(import_file(str(run / "traj.gsd")).compute(len(times) - 1).particles["Radius"])
    np.testing.assert_allclose(radius, 0.5 * d, rtol=1e-6)
    assert sorted(set(np.round(radius.astype(float), 4))) == [0.3333, 0.5]
    assert (thermo.pxy_collision < 0).mean() > 0.8  # hard-core collisions add shear stress (P_xy < 0)
    assert (thermo.overlaps[1:] > 0).all() and (thermo.sweeps[1:] >= 1).all()
    np.testing.assert_allclose(thermo.pxy, thermo.pxy_virial + thermo.pxy_collision, rtol=1e-12)
    out = cli("analyze", run, "--no-figures", check=True)  # every stage runs on a BD store
    assert "eta =" in out.stdout and "clusters:" in out.stdout and "Traceback" not in out.stderr
    import json

    assert json.loads((run / "overlap.json").read_text())["result"]["a"] == 0.2  # the BD presets' a
    # coarse blocks of the paper's physical size (L/10 of its box), not L/10 of this small box
    summary = json.loads((run / "clusters.json").read_text())["result"]["summary"]
    L = spec.system.box_length
    assert summary["coarse_block"] == pytest.approx(L / round(L / 2.714))


@pytest.mark.full
def test_bd_resume_after_kill_is_bitwise_identical(tmp_path):
    spec_path = _spec(tmp_path, production_strain=1.0, checkpoint_every=10)
    reference = prepare_and_run(tmp_path, spec_path, "reference")
    victim = tmp_path / "victim"
    cli("prepare", spec_path, "-o", victim, check=True)
    run_and_kill(victim, 27, timeout=300)  # between checkpoints (every 10 samples): after frame 25
    thermo = victim / "thermo.csv"
    ckpt = RunDir(victim).latest_checkpoint()
    assert ckpt is not None and ckpt.step > 0 and sum(1 for _ in open(thermo)) - 1 > ckpt.frames
    cli("run", victim, check=True)
    with Trajectory(reference / "traj.gsd") as ref, Trajectory(victim / "traj.gsd") as got:
        assert len(got) == len(ref) and np.array_equal(got.steps, ref.steps)
        for key in ("unwrapped", "nonaffine", "virial_xy"):
            assert np.array_equal(ref.particle_array(key), got.particle_array(key)), key
    a, b = read_thermo(reference / "thermo.csv"), read_thermo(victim / "thermo.csv")
    assert a.equals(b)


def test_bd_at_rest_skips_the_viscosity(tmp_path):
    spec_path = write_spec(
        tmp_path / "rest.toml",
        "bd45-tiny",
        protocol={"steady_time": 0.0, "production_time": 0.01},
        rates=[{"rate": 0.0, "sample_interval": 0.001}],
    )
    # steady_strain/production_strain of the preset are replaced by the times
    run = prepare_and_run(tmp_path, spec_path)
    with Trajectory(run / "traj.gsd") as traj:
        assert len(traj) == 11 and traj.strains.max() == 0.0
        assert np.all(traj.cell(10).xy == 0.0)
    out = cli("analyze", run, "--only", "viscosity")
    assert out.returncode == 2 and "no shear (rate 0): no viscosity" in out.stderr


@pytest.mark.parametrize(
    "protocol, system, message",
    [
        ({"thermostat_damp": 0.5}, {}, "protocol.thermostat_damp: only for engine 'lammps'"),
        ({"steady_time": 1.0}, {}, None),
        ({}, {"potential": {"cutoff": 3.0}}, "is not below half the sheared cell width"),
        ({}, {"potential": {"overlap_tol": 0.5}}, "overlap_tol: must be below 0.1"),
        ({"outer_skin": 0.2}, {}, "protocol.outer_skin: 0.2 is below neighbor_skin"),
        (
            {"outer_skin": 1.4},
            {"potential": {"cutoff": 2.0}},
            "cutoff 2 + outer_skin 1.4 is not below half the sheared",
        ),
    ],
)
def test_bd_spec_errors_exit_2_with_a_message(tmp_path, protocol, system, message):
    spec_path = write_spec(tmp_path / "bad.toml", "bd45-tiny", system=system, protocol=protocol)
    out = cli("prepare", spec_path, "-o", tmp_path / "run")
    if message is None:  # a valid variant: steady_time replaces the preset's steady_strain
        assert out.returncode == 0, out.stderr
        return
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "run").exists()


def test_engine_and_potential_must_match(tmp_path):
    spec = tmp_path / "md-as-bd.toml"
    spec.write_text(f'extends = "{config.shipped.preset_path("ka3d-tiny")}"\nengine = "bd"\n')
    out = cli("prepare", spec, "-o", tmp_path / "run")
    assert out.returncode == 2 and "engine 'bd' runs yukawa, not 'lj'" in out.stderr
    assert "protocol.thermostat_damp: only for engine 'lammps'" in out.stderr


def test_rate_zero_needs_times_and_only_bd_allows_it(tmp_path):
    bad = write_spec(tmp_path / "a.toml", "bd45-tiny", rates=[{"rate": 0.0, "sample_interval": 0.001}])
    out = cli("prepare", bad, "-o", tmp_path / "a")
    assert out.returncode == 2 and "rate 0 (no shear) needs steady_time and production_time" in out.stderr
    md = write_spec(
        tmp_path / "b.toml",
        "ka3d-tiny",
        protocol={"steady_time": 0.0, "production_time": 1.0},
        rates=[{"rate": 0.0, "sample_interval": 0.05}],
    )
    out = cli("prepare", md, "-o", tmp_path / "b")
    assert out.returncode == 2 and "rates[0].rate: must be > 0" in out.stderr


@pytest.mark.full
def test_a_store_cut_after_the_checkpoint_is_repaired_and_the_run_resumes(tmp_path):
    """Power loss or a full disk: traj.gsd cut at a random byte after the last checkpoint (GSD then
    reads it as corrupt). Resume repairs it from the checkpoint's copy of its index and continues
    to a store bitwise equal to an uninterrupted run's."""
    import os
    import shutil

    spec_path = _spec(tmp_path, production_strain=1.0, checkpoint_every=10)
    reference = prepare_and_run(tmp_path, spec_path, "reference")
    victim = tmp_path / "victim"
    cli("prepare", spec_path, "-o", victim, check=True)
    run_and_kill(victim, 37, timeout=300)
    ckpt = RunDir(victim).latest_checkpoint()
    with np.load(ckpt.store_index) as saved:
        flushed = int(saved["size"])
    # frames flushed after the checkpoint (GSD flushes when its write buffer fills): the index on disk
    # now names data that a cut then loses
    import gsd.hoomd

    with gsd.hoomd.open(victim / "traj.gsd", "r+") as f:
        extra = f[len(f) - 1]
        for _ in range(3):
            f.append(extra)
    size = (victim / "traj.gsd").stat().st_size
    rng = np.random.default_rng(5)
    for k, cut in enumerate([flushed + 1, size - 1, *rng.integers(flushed + 1, size - 1, 1)]):
        copy = tmp_path / f"cut-{k}"
        shutil.copytree(victim, copy, ignore=shutil.ignore_patterns(".lock"))
        with open(copy / "traj.gsd", "ab") as fh:  # the cut may also leave garbage where a chunk was going
            fh.truncate(cut)
            fh.write(b"\xff" * 100)
        if k == 0:  # the index names chunks that are gone (a cut inside the last chunk may go unseen: GSD has
            with pytest.raises(UserError, match="Corrupt GSD"):  # no checksums; those frames are dropped anyway)
                Trajectory(copy / "traj.gsd")
        out = cli("run", copy, check=True)
        assert "cut back to the checkpoint" in out.stderr
        with Trajectory(reference / "traj.gsd") as ref, Trajectory(copy / "traj.gsd") as got:
            assert len(got) == len(ref) and np.array_equal(got.steps, ref.steps)
            assert np.array_equal(ref.particle_array("unwrapped"), got.particle_array("unwrapped"))
    # cut before the checkpoint: frames are lost, and the run says so (exit 3) instead of inventing them
    os.truncate(victim / "traj.gsd", flushed // 2)
    out = cli("run", victim)
    assert out.returncode == 3 and "no kept checkpoint of" in out.stderr and "nothing was cut" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.full
def test_a_bd_run_killed_while_equilibrating_resumes_bitwise(tmp_path):
    spec_path = _spec(tmp_path, equilibration_time=1.0)  # 10000 steps at rest: a state every 1000
    reference = prepare_and_run(tmp_path, spec_path, "reference")
    victim = tmp_path / "victim"
    cli("prepare", spec_path, "-o", victim, check=True)
    saved = victim / "checkpoint" / "equilibration" / "state.npz"
    run_and_kill(victim, until=saved.exists, timeout=300)
    assert saved.exists() and not (victim / "traj.gsd").exists(), "killed before the shear started"
    with np.load(saved) as state:
        step = int(state["step"])
    out = cli("run", victim, check=True)
    assert f"equilibration resumed at step {step} of 1000" in out.stderr
    with Trajectory(reference / "traj.gsd") as ref, Trajectory(victim / "traj.gsd") as got:
        assert len(got) == len(ref)
        for key in ("unwrapped", "nonaffine", "virial_xy"):
            assert np.array_equal(ref.particle_array(key), got.particle_array(key)), key
    assert not (victim / "checkpoint" / "equilibration").exists()
    # a signal (Ctrl-C, SLURM's USR1) saves the state where it arrived, not only at the last tenth
    stopped = tmp_path / "stopped"
    cli("prepare", spec_path, "-o", stopped, check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "run", stopped], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    saved, deadline = stopped / "checkpoint" / "equilibration" / "state.npz", time.time() + 300
    while time.time() < deadline and not saved.exists():  # past the first tenth
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130 and "Traceback" not in err, err
    with np.load(saved) as state:
        step = int(state["step"])
    assert f"before shear started, while equilibrating (step {step} of 10000," in err
    out = cli("run", stopped, check=True)
    assert f"equilibration resumed at step {step} of 10000" in out.stderr
    with Trajectory(reference / "traj.gsd") as ref, Trajectory(stopped / "traj.gsd") as got:
        assert np.array_equal(ref.particle_array("unwrapped"), got.particle_array("unwrapped"))
    assert not saved.exists()


def _checkpointed_frames(run) -> int:
    pointer = run / "checkpoint" / "latest.json"
    import json

    return json.loads(pointer.read_text())["frames"] if pointer.exists() else 0


@pytest.mark.full
def test_a_kill_after_a_checkpoint_and_a_cut_tail_roll_back_to_an_intact_checkpoint(tmp_path):
    """kill -9 just after a checkpoint, then the store's last 777 bytes lost (power loss, a full disk):
    `run --verify` says which frames are intact; the run rolls back to the newest checkpoint whose
    frames are all intact (never continuing over damaged bytes) and ends bitwise equal to a run that was
    never stopped. Damage after completion: `run --verify` exits 3 and `analyze` refuses the store."""
    spec_path = _spec(tmp_path, production_strain=1.0, checkpoint_every=10)
    reference = prepare_and_run(tmp_path, spec_path, "reference")
    victim = tmp_path / "victim"
    cli("prepare", spec_path, "-o", victim, check=True)
    run_and_kill(victim, until=lambda: _checkpointed_frames(victim) >= 31, timeout=300)
    size = (victim / "traj.gsd").stat().st_size
    with open(victim / "traj.gsd", "r+b") as fh:
        fh.truncate(size - 777)
    verified = cli("run", victim, "--verify")
    assert verified.returncode in (0, 3) and "Traceback" not in verified.stderr
    assert "intact" in verified.stdout + verified.stderr
    cli("run", victim, check=True)
    with Trajectory(reference / "traj.gsd") as ref, Trajectory(victim / "traj.gsd") as got:
        assert len(got) == len(ref) and np.array_equal(got.steps, ref.steps)
        for name in ("unwrapped", "nonaffine", "virial_xy"):
            assert np.array_equal(ref.particle_array(name), got.particle_array(name)), name
    assert cli("run", victim, "--verify", check=True).stdout.count("intact") == 1
    # damage inside a finished store (a bit flip in its data): found, and not analysed
    data = bytearray((victim / "traj.gsd").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (victim / "traj.gsd").write_bytes(bytes(data))
    bad = cli("run", victim, "--verify")
    assert bad.returncode == 3 and "damaged" in bad.stderr and "Traceback" not in bad.stderr
    refused = cli("analyze", victim, "--only", "structure", "--no-figures")
    assert refused.returncode == 2 and "do not match their digests" in refused.stderr
    assert f"lmpshear run --repair {victim}" in refused.stderr
