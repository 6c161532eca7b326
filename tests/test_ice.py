"""Isoconfigurational ensemble: snapshots, exact branching, replicas with fresh velocities."""

import json
import math
import shutil

import numpy as np
import pytest
from conftest import cli, prepare_and_run, write_spec

from lmpshear.engines.lammps import BOUNDARY_STEPS
from lmpshear.ice import ReplicaRunner
from lmpshear.rundir import RunDir
from lmpshear.store import Trajectory


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ice")
    spec = write_spec(tmp / "spec.toml", "ka3d-tiny", protocol={"snapshot_every": 5, "lammps_dump": "image"})
    run = prepare_and_run(tmp, spec)
    # spots of d = 1 so that this tiny box has clusters
    config = run / "config.toml"
    config.write_text(
        config.read_text().replace("stz_diameter = 3.0", "stz_diameter = 1.0").replace("min_stz = 2.0", "min_stz = 1.0")
    )
    cli("analyze", run, "--cage-size", 0.04, "--no-figures", check=True)
    return run


@pytest.mark.full
def test_snapshots_are_kept_and_a_branch_without_new_velocities_is_the_run_itself(snapshot_run):
    rd = RunDir(snapshot_run)
    spec = rd.spec()
    snaps = rd.snapshots()
    # each kept at the first set-up boundary at or after every 5th sample (lmpshear.engines.lammps)
    grid = math.lcm(BOUNDARY_STEPS, spec.sample_steps)
    due = range(5 * spec.sample_steps, spec.shear_steps + 1, 5 * spec.sample_steps)
    assert [s.step for s in snaps] == sorted(
        {-(-d // grid) * grid for d in due if -(-d // grid) * grid <= spec.shear_steps}
    )
    snap = snaps[2]
    end = snap.step + 12 * spec.sample_steps
    dump = (rd.path / "traj.lammpstrj").read_bytes()
    branch = ReplicaRunner(rd, snap, end, (1, 0), fresh_velocities=False).branch()
    assert (rd.path / "traj.lammpstrj").read_bytes() == dump  # a branch writes nothing of the run's
    with Trajectory(rd.store) as traj:
        k = np.searchsorted(traj.steps, snap.step) + 1 + np.arange(12)
        assert np.allclose(branch["t"], traj.times[k], rtol=0, atol=1e-12)
        assert np.abs(branch["unwrapped"] - traj.unwrapped(list(k))).max() < 1e-9
        assert np.abs(branch["virial_xy"] - traj.virial_xy(list(k))).max() < 1e-7
    # fresh velocities: the same start, a different path
    other = ReplicaRunner(rd, snap, end, (1, 0)).branch()
    moved = np.abs(other["unwrapped"][-1] - branch["unwrapped"][-1]).max()
    assert moved > 1e-3


@pytest.mark.full
def test_ice_command_averages_replicas(snapshot_run):
    result = json.loads((snapshot_run / "clusters.json").read_text())["result"]
    assert result["clusters"], "the fixture run should have a cluster"
    k = max(range(len(result["clusters"])), key=lambda i: result["clusters"][i]["volume"])  # enough members
    proc = cli("ice", snapshot_run, "--cluster", k, "--replicas", 3, "--seed", 7, check=True)
    assert "replica 3/3" in proc.stdout
    out = json.loads((snapshot_run / "ice" / f"cluster-{k}.json").read_text())
    sigma, strain = np.array(out["sigma"]), np.array(out["strain"])
    assert sigma.shape[0] == 3 and np.allclose(out["sigma_mean"], sigma.mean(axis=0))
    assert np.allclose(out["sigma_error"], sigma.std(axis=0, ddof=1) / np.sqrt(3))
    assert not np.allclose(sigma[0], sigma[1])  # independent velocities
    t0 = out["row"].get("t0", result["series"][k]["t"][0])  # the trace start when there is no yield
    start = int(np.searchsorted(out["t"], t0 - 1e-9))
    assert np.abs(strain[:, start]).max() < 1e-12  # gamma_c counted from t0
    assert np.isfinite(strain).all() and np.abs(strain[:, -1]).max() > 1e-4  # the members deform
    assert out["snapshot_time"] <= t0 + 1e-9
    assert (snapshot_run / "ice" / f"cluster-{k}.png").stat().st_size > 10_000
    # the clusters stage takes the cluster's yield from the ICE mean curve (the paper's MD procedure)
    proc = cli("analyze", snapshot_run, "--only", "clusters", "--cage-size", 0.04, "--no-figures", check=True)
    assert "clusters: computing" in proc.stdout
    again = json.loads((snapshot_run / "clusters.json").read_text())["result"]
    row = again["clusters"][k]
    assert (row["window"], row["region"]) == (out["row"]["window"], out["row"]["region"])
    if out["yield"] is None:
        assert again["summary"]["yield_from_ice"] == 0
    else:
        assert row["yield_from"] == "ice" and again["summary"]["yield_from_ice"] == 1
        assert row["stress_at_yield"] == pytest.approx(out["yield"]["stress_at_yield"])
        assert (row["t0"], row["t2"]) == (out["yield"]["t0"], out["yield"]["t2"])


def test_ice_refuses_runs_without_snapshots_and_bad_requests(snapshot_run, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(snapshot_run, bare, ignore=shutil.ignore_patterns("snapshots", "ice"))
    proc = cli("ice", bare, "--replicas", 2)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no snapshot at or before t0" in proc.stderr and "snapshot_every" in proc.stderr
    proc = cli("ice", snapshot_run, "--cluster", 99)
    assert proc.returncode == 2 and "cluster table has rows" in proc.stderr
    proc = cli("ice", snapshot_run, "--replicas", 0)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    # a damaged snapshot (its restart changed) or a damaged store: a message, not LAMMPS's traceback
    broken = tmp_path / "broken"
    shutil.copytree(snapshot_run, broken, ignore=shutil.ignore_patterns("ice"))
    for restart in (broken / "snapshots").glob("step-*/restart.lmp"):
        data = bytearray(restart.read_bytes())
        data[len(data) // 2] ^= 0xFF
        restart.write_bytes(bytes(data))
    proc = cli("ice", broken, "--replicas", 2)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "is damaged" in proc.stderr and "restart.lmp does not match its digest" in proc.stderr
    from lmpshear.integrity import IndexCopy

    store = bytearray((bare / "traj.gsd").read_bytes())
    entries, _ = IndexCopy.take(bare / "traj.gsd").chunks()
    store[int(entries[entries["frame"] == 1]["location"].max()) + 3] ^= 0xFF  # in frame 1's data
    shutil.copytree(snapshot_run, tmp_path / "flipped", ignore=shutil.ignore_patterns("ice"))
    (tmp_path / "flipped" / "traj.gsd").write_bytes(bytes(store))
    for command in (("ice", tmp_path / "flipped", "--replicas", 2), ("figures", tmp_path / "flipped")):
        proc = cli(*command)
        assert proc.returncode == 2 and "do not match their digests" in proc.stderr and "Traceback" not in proc.stderr
