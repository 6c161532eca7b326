"""`lmpshear submit` and `status` against a real single-node SLURM (started by .ci/slurm-up): a campaign
through job arrays with dependencies, and a run task requeued mid-run that loses nothing."""

import json
import os
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, cli
from test_campaign import tiny_campaign

from lmpshear import campaign as campaigns
from lmpshear.rundir import RunDir
from lmpshear.store import Trajectory, read_thermo

#: real runs of minutes (make test-all, CI); `make test` leaves them out
pytestmark = pytest.mark.full


def _slurm_answers() -> bool:
    try:
        return (
            shutil.which("sinfo") is not None
            and subprocess.run(["sinfo", "-h"], capture_output=True, timeout=10).returncode == 0
        )
    except subprocess.TimeoutExpired:
        return False


@pytest.fixture(scope="module")
def slurm():
    if not _slurm_answers():
        if os.geteuid() != 0:
            pytest.skip("SLURM is not running and starting it (.ci/slurm-up) needs root")
        up = subprocess.run(["bash", str(REPO / ".ci" / "slurm-up")], capture_output=True, text=True, timeout=600)
        if up.returncode != 0 or not _slurm_answers():
            pytest.skip(f"SLURM could not be started here: {up.stderr.strip()[-500:]}")


def _wait(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1)
    queue = subprocess.run(["squeue"], capture_output=True, text=True).stdout
    raise AssertionError(f"timed out waiting for {what}; squeue:\n{queue}")


def _queue_empty(c) -> bool:
    from lmpshear.slurm import queued, queued_report

    return not queued(c) and queued_report(c) is None


def test_a_campaign_runs_through_slurm_arrays_and_is_reported(tmp_path, slurm):
    path = tiny_campaign(tmp_path, name="ci")
    c = campaigns.load(path)
    out = cli("submit", path, check=True).stdout
    assert "run -> job" in out and "analyze -> job" in out and "report -> job" in out, out
    jobs = campaigns.recorded_jobs(c)
    assert [j["step"] for j in jobs] == ["run", "analyze", "report"]
    assert sorted(jobs[0]["tasks"]) == ["0", "1", "2", "3"] and jobs[1]["tasks"] == jobs[0]["tasks"]
    # while queued, status names the jobs; a second submission adds nothing
    table = cli("status", path, check=True).stdout
    assert jobs[0]["id"] in table or "analysed" in table
    again = cli("submit", path, check=True).stdout
    assert "run -> job" not in again and ("skipping" in again or "nothing to do" in again), again
    _wait(lambda: _queue_empty(c) and (c.report_dir / "campaign.json").exists(), 900, "the campaign")
    rows = json.loads(cli("status", path, "--json", check=True).stdout)["runs"]
    assert [r["state"] for r in rows] == ["analysed"] * 4, rows
    runs = pd.read_csv(c.report_dir / "runs.csv")
    assert len(runs) == 4
    for r in c.runs:
        assert (r.path / "clusters.json").exists() and (r.path / "analysis.json").exists()
        eta = json.loads((r.path / "viscosity.json").read_text())["result"]["eta"]
        assert runs[runs.run == str(r.path)].eta.iloc[0] == pytest.approx(eta, rel=1e-12)
    logs = list((c.folder / "logs").glob("run-*.out"))
    assert len(logs) == 4 and all("lmpshear run" in p.read_text() for p in logs)
    assert "nothing to do" in cli("submit", path, check=True).stdout


def _requeue_when(c, run, after_rows, how):
    """Requeue the run's task once its thermo table passed ``after_rows`` rows (between checkpoints)."""
    thermo = run.path / "thermo.csv"
    _wait(lambda: thermo.exists() and sum(1 for _ in open(thermo)) > after_rows, 600, "the run to start")
    job = [j for j in campaigns.recorded_jobs(c) if j["step"] == "run"][0]["id"]
    ckpt = RunDir(run.path).latest_checkpoint()
    subprocess.run(how + [f"{job}_0"], check=True, capture_output=True)
    # SLURM holds a requeued job back for about two minutes before it may start again: let it go now
    _wait(
        lambda: (
            "PENDING"
            in subprocess.run(["squeue", "-h", "-r", "-j", job, "-o", "%T"], capture_output=True, text=True).stdout
        ),
        120,
        "the task to be requeued",
    )
    subprocess.run(["scontrol", "update", f"JobId={job}_0", "StartTime=now"], check=True, capture_output=True)
    return ckpt


@pytest.mark.parametrize("engine", ["bd", "lammps"])
def test_a_requeued_run_resumes_and_loses_nothing(tmp_path, slurm, engine):
    """BD: requeued by the scheduler (scontrol requeue: SIGTERM, then back to the queue; the run stops at
    its next sample with a checkpoint), bitwise equal to an uninterrupted run. LAMMPS: the time-limit path
    (USR1 to the batch script: it stops the run and
    requeues itself), equal to the uninterrupted run up to the checkpoint it resumed from."""
    import tomli_w
    from conftest import write_spec

    if engine == "bd":
        spec = write_spec(tmp_path / "s.toml", "bd45-tiny", protocol={"production_strain": 4.0, "checkpoint_every": 10})
        how, after = ["scontrol", "requeue"], 35
    else:
        spec = write_spec(
            tmp_path / "s.toml",
            "ka3d-tiny",
            system={"n_particles": 1000},
            protocol={"production_strain": 1.5, "checkpoint_every": 20},
        )
        how, after = ["scancel", "--signal=USR1", "--batch"], 47
    (tmp_path / "c.toml").write_text(
        tomli_w.dumps(
            {"name": f"requeue-{engine}", "root": "runs", "resources": {"threads": 1}, "runs": [{"spec": "s.toml"}]}
        )
    )
    c = campaigns.load(tmp_path / "c.toml")
    run = c.runs[0]
    cli("submit", tmp_path / "c.toml", check=True)
    ckpt = _requeue_when(c, run, after, how)
    _wait(lambda: _queue_empty(c) and (c.report_dir / "campaign.json").exists(), 900, "the requeued run")
    log = "".join(p.read_text() for p in (c.folder / "logs").glob("run-*.out"))
    assert "start 2:" in log, log  # the task ran twice: requeued, then resumed
    if engine == "lammps":
        assert "time limit near: stopping the run and requeueing" in log
    assert RunDir(run.path).status()["state"] == "complete"
    ref = tmp_path / "reference"
    cli("prepare", spec, "-o", ref, check=True)
    cli("run", ref, check=True, env=os.environ | {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"})
    with Trajectory(ref / "traj.gsd") as a, Trajectory(run.path / "traj.gsd") as b:
        assert len(a) == len(b) and np.array_equal(a.steps, b.steps)  # every frame once, in order
        n = len(a) if engine == "bd" else ckpt.frames
        assert ckpt is not None and 0 < ckpt.frames < len(a)
        for key in ("unwrapped", "nonaffine", "virial_xy"):
            assert np.array_equal(a.particle_array(key)[:n], b.particle_array(key)[:n]), key
    th_a, th_b = read_thermo(ref / "thermo.csv"), read_thermo(run.path / "thermo.csv")
    assert np.array_equal(th_a.step, th_b.step)
    if engine == "bd":
        assert th_a.equals(th_b)


def test_the_local_slurm_and_dry_run_paths_carry_out_one_plan(tmp_path, slurm):
    """One campaign in mixed states (one run done but not analysed, one prepared), in three copies: the
    SLURM dry run, a real SLURM submission and the local executor each report the plan they carried out,
    and all three are campaign.plan's."""
    import tomllib

    from lmpshear import slurm as slurm_submit
    from lmpshear.local_executor import run_local

    path = tiny_campaign(tmp_path, name="plan", ka=False)
    data = tomllib.loads(path.read_text())
    first = campaigns.load(path)
    campaigns.prepare_missing(first, echo=lambda s: None)
    cli("run", first.runs[0].path, check=True)  # rate 20 done, not analysed; rate 10 only prepared
    copies = {}
    for name in ("dry", "slurm", "local"):
        root = tmp_path / f"runs-{name}"
        shutil.copytree(tmp_path / "runs", root, ignore=shutil.ignore_patterns(".lock"))
        file = tmp_path / f"plan-{name}.toml"
        import tomli_w

        file.write_text(tomli_w.dumps(data | {"root": root.name}))
        copies[name] = campaigns.load(file)
    expected = campaigns.plan(copies["dry"]).names()
    assert expected == ["analyze bd/rate-20", "run bd/rate-10", "analyze bd/rate-10", "report"]
    quiet = lambda text: None  # noqa: E731
    assert slurm_submit.submit(copies["dry"], dry_run=True, echo=quiet)["plan"] == expected
    assert slurm_submit.submit(copies["slurm"], echo=quiet)["plan"] == expected
    assert run_local(copies["local"], echo=quiet)["plan"] == expected
    _wait(
        lambda: _queue_empty(copies["slurm"]) and (copies["slurm"].report_dir / "campaign.json").exists(),
        900,
        "the SLURM copy",
    )
    for name in ("slurm", "local"):  # both carried it out to the end: nothing is left
        assert campaigns.plan(copies[name]).names() == ["report"]
