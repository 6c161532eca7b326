"""Campaign files, `lmpshear submit --dry-run`, the local executor, `status` and the campaign report
(SLURM itself: test_slurm.py)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import tomli_w
from conftest import cli, wait_for_rows, write_spec

from lmpshear import campaign as campaigns
from lmpshear.errors import UserError
from lmpshear.rundir import RunDir
from lmpshear.store import Trajectory


def tiny_campaign(tmp_path, name="tiny", bd_protocol=None, ka=True, bd=True, **extra) -> "Path":  # noqa: F821
    """bd45-tiny (and ka3d-tiny) at two rates each, one thread per task."""
    bd_spec = write_spec(
        tmp_path / "bd.toml",
        "bd45-tiny",
        protocol=bd_protocol or {},
        rates=[{"rate": 20.0, "sample_interval": 0.001}, {"rate": 10.0, "sample_interval": 0.002}],
    )
    runs = [{"spec": "bd.toml", "rates": [20.0, 10.0]}] if bd else []
    if ka:
        write_spec(
            tmp_path / "ka.toml",
            "ka3d-tiny",
            rates=[{"rate": 0.06, "sample_interval": 0.05}, {"rate": 0.03, "sample_interval": 0.1}],
        )
        runs.append({"spec": "ka.toml", "label": "ka", "n_particles": 300})
    data = {"name": name, "root": "runs", "resources": {"threads": 1}, "runs": runs} | extra
    path = tmp_path / f"{name}.toml"
    path.write_text(tomli_w.dumps(data))
    assert bd_spec.exists()
    return path


def test_a_campaign_plans_one_predictable_directory_per_spec_rate_and_seed(tmp_path):
    path = tiny_campaign(tmp_path)
    data = tomli_w.dumps(
        {
            "name": "seeds",
            "runs": [
                {
                    "spec": "bd.toml",
                    "rates": [10.0],
                    "seeds": [3, 4],
                    "overrides": {"protocol": {"checkpoint_every": 5}},
                }
            ],
        }
    )
    (tmp_path / "seeds.toml").write_text(data)
    c = campaigns.load(path)
    assert [r.name for r in c.runs] == ["bd/rate-20", "bd/rate-10", "ka/rate-0.06", "ka/rate-0.03"]
    assert c.runs[0].path == tmp_path / "runs" / "bd" / "rate-20"
    s = campaigns.load(tmp_path / "seeds.toml")
    assert [r.path.name for r in s.runs] == ["rate-10-seed-3", "rate-10-seed-4"]
    assert s.root == tmp_path / "seeds"  # root defaults to the name, beside the file
    # the overrides, the seed and n_particles reach the prepared spec
    made = campaigns.prepare_missing(s, echo=lambda _: None)
    assert len(made) == 2
    spec = RunDir(s.runs[1].path).spec()
    assert spec.protocol.seed == 4 and spec.protocol.checkpoint_every == 5 and spec.rate.rate == 10.0
    assert RunDir(s.runs[0].path).spec().protocol.seed == 3
    assert campaigns.prepare_missing(s, echo=lambda _: None) == []  # prepared once
    ka = c.runs[2].load()
    assert ka.system.n_particles == 300 and ka.rate.rate == 0.06
    assert c.resources["run"].threads == 1 and c.resources["analyze"].walltime == ""


@pytest.mark.parametrize(
    "change, message",
    [
        ({"runs": [{"spec": "bd.toml", "rates": [5.0]}]}, "runs[0].rates: 5 is not a rate of bd.toml"),
        ({"runs": [{"spec": "nope"}]}, "unknown preset 'nope'"),
        ({"runs": [{"spec": "bd.toml", "n_particles": 0}]}, "runs[0].n_particles: must be > 0"),
        ({"runs": [{"spec": "bd.toml", "seeds": [1, 1]}]}, "runs[0].seeds: lists a value twice"),
        ({"runs": [{"spec": "bd.toml", "overrides": {"system": {"temperature": -1.0}}}]}, "temperature"),
        ({"runs": [{"spec": "bd.toml"}, {"spec": "bd.toml", "rates": [10.0]}]}, "two runs share the directory"),
        ({"runs": []}, "runs: must be a non-empty array of tables"),
        ({"root": "bd.toml/runs"}, "bd.toml is a file, not a directory: the run directories go inside root"),
        ({"resources": {"walltime": "a day"}}, "resources.walltime: 'a day' is not a SLURM time"),
        ({"resources": {"run": {"memory": "lots"}}}, "resources.run.memory: 'lots' is not a SLURM memory size"),
        ({"resources": {"sbatch": ["; rm -rf /"]}}, "resources.sbatch: must be a list of sbatch options"),
        ({"resources": {"partition": "a b"}}, "resources.partition"),
        ({"resources": {"threads": 0}}, "resources.threads: must be > 0"),
        ({"resources": {"gpus": 1}}, "resources.gpus: unknown key"),
        ({"resources": {"run": {"ranks": 2}}}, "resources.run.ranks: MPI ranks are for LAMMPS runs; engine 'bd'"),
        (
            {"runs": [{"spec": "bd.toml", "overrides": {"protocol": {"init": "file", "init_file": "x.data"}}}]},
            "engine 'bd' starts from random insertion",
        ),
        ({"name": "a/b"}, "name: use letters"),
        ({"colour": "red"}, "colour: unknown key"),
        # what --dry-run must refuse as submit would (issue 27)
        ({"resources": {"sbatch": ["--output=/etc/passwd"]}}, "--output=/etc/passwd: submit sets these itself"),
        ({"resources": {"sbatch": ["--wrap=echo hi"]}}, "--wrap=echo hi: submit sets these itself"),
        ({"resources": {"run": {"sbatch": ["--job-name=x"]}}}, "--job-name=x: submit sets these itself"),
        ({"resources": {"threads": 100000}}, "resources.threads: 100000 is more than 1024"),
        ({"resources": {"memory": "999999T"}}, "resources.memory: '999999T' is more than 64 TB"),
        ({"resources": {"walltime": "99999-00:00:00"}}, "is longer than 365 days"),
        ({"resources": {"walltime": "1:99:99"}}, "'1:99:99': minutes and seconds must be below 60"),
        (
            {"resources": {"run": {"walltime": "00:10:00", "stop_before": 100000}}},
            "resources.run.stop_before: 100000 s is not shorter than the walltime 00:10:00",
        ),
        ({"runs": [{"spec": "bd.toml", "n_particles": 10**12}]}, "beyond what one run can hold"),
        ({"runs": [{"spec": "bd.toml", "seeds": [2**40]}]}, "runs[0].seeds: rate 20, seed 1099511627776"),
        (
            {"runs": [{"spec": "bd.toml", "label": "x"}, {"spec": "ka3d-tiny", "label": "x"}]},
            "label 'x' names two different liquids",
        ),
    ],
)
def test_a_bad_campaign_file_exits_2_with_the_key_and_no_traceback(tmp_path, change, message):
    tiny_campaign(tmp_path, ka=False)
    data = {"name": "bad", "runs": [{"spec": "bd.toml"}]} | change
    (tmp_path / "bad.toml").write_text(tomli_w.dumps(data))
    for command in (["submit", tmp_path / "bad.toml", "--dry-run"], ["status", tmp_path / "bad.toml"]):
        out = cli(*command)
        assert out.returncode == 2, out.stderr
        assert message in out.stderr and "invalid campaign file" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "bad").exists()  # nothing prepared


@pytest.mark.parametrize("text, message", [("name = [", "not valid TOML"), (None, "campaign file not found")])
def test_unreadable_campaign_files_exit_2(tmp_path, text, message):
    path = tmp_path / "c.toml"
    if text is not None:
        path.write_text(text)
    out = cli("submit", path)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def test_submit_without_sbatch_says_so(tmp_path):
    path = tiny_campaign(tmp_path, ka=False)
    env = os.environ | {"PATH": os.path.dirname(sys.executable)}  # python, but no SLURM
    out = cli("submit", path, env=env)
    assert out.returncode == 2 and "`sbatch` is not on PATH" in out.stderr and "--executor local" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "runs").exists()
    out = cli("submit", path, "--executor", "lsf")
    assert out.returncode == 2 and "slurm or local" in out.stderr


def test_dry_run_prints_the_scripts_and_the_dependency_chain_and_writes_nothing(tmp_path):
    path = tiny_campaign(
        tmp_path,
        bd=False,  # MPI ranks: LAMMPS runs only
        resources={
            "threads": 2,
            "throttle": 3,
            "walltime": "1:00:00",
            "sbatch": ["--constraint=avx2"],
            "run": {"ranks": 4, "launcher": "mpiexec", "memory": "4G"},
        },
    )
    out = cli("submit", path, "--dry-run", check=True).stdout
    tasks = [line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("#   ")]
    assert tasks == [str(r.path) for r in campaigns.load(path).runs]
    assert out.count("#SBATCH --array=0-1%3") == 2  # runs and their analyses
    assert "#SBATCH --time=1:00:00" in out and "#SBATCH --mem=4G" in out and "#SBATCH --constraint=avx2" in out
    assert "#SBATCH --signal=B:USR1@300" in out and "#SBATCH --requeue" in out and "#SBATCH --ntasks=4" in out
    assert 'mpiexec -n 4 "' in out and "NUMBA_NUM_THREADS=2" in out and "--kill-on-invalid-dep=yes" in out
    assert "$ sbatch --parsable --dependency=aftercorr:<run-job>" in out
    assert "$ sbatch --parsable --dependency=afterany:<analyze-job>" in out and "report.sh" in out
    assert not (tmp_path / "runs").exists()
    # the scripts are valid bash
    script = out.split("run.sh ----\n", 1)[1].split("\n# ----", 1)[0]
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


@pytest.mark.full
def test_the_local_executor_runs_the_dag_resumes_after_a_kill_and_reports(tmp_path):
    path = tiny_campaign(tmp_path, bd_protocol={"production_strain": 1.5, "checkpoint_every": 10})
    c = campaigns.load(path)
    # killed while the first run is between checkpoints
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "submit", path, "--executor", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    wait_for_rows(c.runs[0].path / "thermo.csv", 25)
    proc.send_signal(signal.SIGTERM)
    text = proc.communicate(timeout=120)[0]
    assert proc.returncode == 130 and "--executor local` resumes" in text, text
    assert RunDir(c.runs[0].path).status()["state"] == "interrupted"
    table = cli("status", path, check=True).stdout
    assert "bd/rate-20" in table and "interrupted" in table and "missing" not in table
    out = cli("submit", path, "--executor", "local", "--jobs", "2", check=True).stdout
    assert "4 runs and 4 analyses to do" in out and "report: done" in out
    rows = json.loads(cli("status", path, "--json", check=True).stdout)["runs"]
    assert [r["state"] for r in rows] == ["analysed"] * 4
    # the resumed run equals one that was never stopped
    ref = tmp_path / "reference"
    cli("prepare", tmp_path / "bd.toml", "--rate", "20", "-o", ref, check=True)
    cli("run", ref, check=True, env=os.environ | {"NUMBA_NUM_THREADS": "1"})
    with Trajectory(ref / "traj.gsd") as a, Trajectory(c.runs[0].path / "traj.gsd") as b:
        assert len(a) == len(b) and np.array_equal(a.particle_array("unwrapped"), b.particle_array("unwrapped"))
    # the report gathers every run, one folder per system
    runs = pd.read_csv(c.report_dir / "runs.csv")
    assert len(runs) == 4 and set(runs.system) == {"bd", "ka"}
    for r in c.runs:
        eta = json.loads((r.path / "viscosity.json").read_text())["result"]["eta"]
        assert runs[runs.run == str(r.path)].eta.iloc[0] == pytest.approx(eta, rel=1e-12)
    assert (c.report_dir / "bd" / "flowcurve.png").exists() and (c.report_dir / "ka" / "flowcurve.csv").exists()
    # nothing left: a second submission does no work
    out = cli("submit", path, "--executor", "local", check=True).stdout
    assert "0 runs and 0 analyses to do" in out


@pytest.mark.full
def test_a_local_campaign_runs_lammps_over_mpi_ranks_from_a_shared_equilibrated_liquid(tiny_run, tmp_path):
    """resources.run.ranks starts `mpiexec -n K` here too; a run can start from another run's
    equilibrated.data, named relative to the campaign file, and its frame 0 is that configuration."""
    write_spec(tmp_path / "ka.toml", "ka3d-tiny", rates=[{"rate": 0.06, "sample_interval": 0.05}])
    start = {
        "init": "file",
        "init_file": "start.data",
        "melt_time": 0.0,
        "minimize": False,
        "equilibration_time": 0.0,
        "production_strain": 0.2,
    }
    data = {
        "name": "mpi",
        "root": "runs",
        "resources": {"run": {"ranks": 2}},
        "runs": [{"spec": "../ka.toml", "label": "ka", "overrides": {"protocol": start}}],
    }
    (tmp_path / "sub").mkdir()  # the data file is beside the campaign file, not beside the spec
    shutil.copyfile(tiny_run / "equilibrated.data", tmp_path / "sub" / "start.data")
    path = tmp_path / "sub" / "mpi.toml"
    path.write_text(tomli_w.dumps(data))
    cli("submit", path, "--executor", "local", check=True)
    run = campaigns.load(path).runs[0].path
    assert "on 2 procs" in (run / "log.lammps").read_text() or "2 MPI processor" in (run / "log.lammps").read_text()
    with Trajectory(tiny_run / "traj.gsd") as a, Trajectory(run / "traj.gsd") as b:
        # tiny_run's frame 0 is the configuration it wrote to equilibrated.data
        d = a.unwrapped([0])[0] - b.unwrapped([0])[0]
        cell = a.cell(0)
        d -= np.round(d / [cell.lx, cell.ly, cell.lz]) * [cell.lx, cell.ly, cell.lz]
        assert np.abs(d).max() < 1e-9 and len(b) > 1


def test_the_shipped_campaigns_load_and_render(monkeypatch):
    import collections

    from conftest import REPO

    from lmpshear import preparation
    from lmpshear.slurm import render

    # the paper-size campaigns are for a cluster: whether this machine's disk could hold their
    # trajectories (the soft disks at 1e-4 need 40 GB) is not what this test is about
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(preparation.shutil, "disk_usage", lambda path: usage(10**15, 0, 10**15))

    files = sorted((REPO / "analysis" / "campaigns").glob("*.toml"))
    assert {f.stem for f in files} >= {"bd45", "bd425", "ka3d", "softdisk2d", "ka3d-reduced", "softdisk2d-reduced"}
    for f in files:
        try:
            c = campaigns.load(f)
        except UserError as exc:  # ka3d-shared starts from a liquid that ka3d.toml's first run leaves
            assert f.stem == "ka3d-shared" and "protocol.init_file not found" in str(exc), str(exc)
            assert "rate-0.06/equilibrated.data" in str(exc)
            continue
        assert c.runs and all(r.path.is_relative_to(REPO / "runs") for r in c.runs)  # trajectories stay out of git
        for step in ("run", "analyze", "report"):
            script = render(c, step, c.folder / "tasks.txt", "0-1" if step != "report" else None)
            assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0


def test_the_recipes_run_on_committed_reports(tmp_path):
    from conftest import REPO

    report = REPO / "analysis" / "results" / "bd45-N20000" / "report"
    table1 = json.loads((report / "table1.json").read_text())
    for recipe in ("table1.py", "rate_panels.py"):
        subprocess.run(
            [sys.executable, str(REPO / "analysis" / "recipes" / recipe), str(report), "-o", str(tmp_path)],
            check=True,
            capture_output=True,
        )
    text = (tmp_path / "table1.md").read_text()
    assert f"{table1['lambda_over_D1']:.3g} ± " in text and "(0.166)" in text and "(0.174)" in text
    rates = pd.read_csv(tmp_path / "rates.csv")
    assert list(rates.rate) == table1["rates"] and np.allclose(rates.xi_c, table1["xi_c"])
    assert (tmp_path / "rate_panels.png").stat().st_size > 20_000
    assert "ν of ξ_4 (t_χ)" in text and (tmp_path / "lengths_vs_rate.png").stat().st_size > 20_000


def test_the_results_report_remakes_a_committed_report_from_its_results_folders(tmp_path):
    """`recipes/results_report.py` reads collect.py's folders (no trajectories, no run directories) and
    gives the report that `lmpshear report` made from the run directories: KA N = 16500, three rates."""
    from conftest import REPO

    results = REPO / "analysis" / "results" / "ka3d-N16500"
    folders = sorted(results.glob("rate-*"))
    assert len(folders) == 3
    subprocess.run(
        [
            sys.executable,
            str(REPO / "analysis" / "recipes" / "results_report.py"),
            *map(str, folders),
            "-o",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    made = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in ("table1", "flowcurve")}
    committed = {
        n: json.loads((results / "report" / "ka3d-N16500" / f"{n}.json").read_text()) for n in ("table1", "flowcurve")
    }
    assert made["flowcurve"]["eta"] == committed["flowcurve"]["eta"]
    assert made["flowcurve"]["fit"] == committed["flowcurve"]["fit"]
    for key in ("lambda", "lambda_over_D1", "rates"):
        assert made["table1"][key] == committed["table1"][key], key
    for key in ("nu_c", "nu_c_error", "xi_c", "xi_c_error"):  # volumes through a CSV: round-off only
        assert np.allclose(made["table1"][key], committed["table1"][key], rtol=1e-9, atol=0), key
    rows = pd.read_csv(tmp_path / "clusters_vs_rate.csv")
    assert np.allclose(rows.xi_c, committed["table1"]["xi_c"], rtol=1e-12)
    assert (tmp_path / "stz_vs_rate.png").exists() and (tmp_path / "lengths_vs_rate.png").exists()


@pytest.mark.full
def test_a_campaign_never_mixes_runs_waits_for_a_live_run_and_reports_only_whole(tmp_path):
    """A directory holding another liquid is refused (dry run, local submit, report); a report of a
    campaign with nothing analysed, or with runs missing (without --partial), exits 2 naming them; a run
    already running in another process is waited for, then analysed and reported with the others."""
    import shutil

    path = tiny_campaign(tmp_path, ka=False)
    c = campaigns.load(path)
    cli("prepare", "softdisk2d-tiny", "-o", c.runs[1].path, check=True)
    for command in (["submit", path, "--dry-run"], ["submit", path, "--executor", "local"], ["report", path]):
        out = cli(*command)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (command, out.stderr)
        assert f"{c.runs[1].path} holds softdisk2d-tiny" in out.stderr and "asks for bd45-tiny" in out.stderr
    assert not (c.runs[1].path / "traj.gsd").exists() and not c.runs[0].path.exists()
    shutil.rmtree(c.runs[1].path)
    out = cli("report", path)
    assert out.returncode == 2 and "no run of the campaign is analysed yet" in out.stderr
    # a run started by hand is running when the campaign is submitted: the submit waits for it
    cli("prepare", tmp_path / "bd.toml", "--rate", "20", "-o", c.runs[0].path, check=True)
    own = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "run", c.runs[0].path],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and campaigns.run_state(c.runs[0]).state != "running":
        time.sleep(0.05)
    out = cli("submit", path, "--executor", "local", check=True).stdout
    own.communicate(timeout=300)
    assert own.returncode == 0
    assert (
        "bd/rate-20: running outside this campaign's steps" in out and "no longer running elsewhere (complete)" in out
    ), out
    assert "report: done" in out
    rows = json.loads(cli("status", path, "--json", check=True).stdout)["runs"]
    assert [r["state"] for r in rows] == ["analysed", "analysed"]
    assert len(pd.read_csv(c.report_dir / "runs.csv")) == 2
    # one run's analysis gone: the report names it and exits 2; --partial reports the other
    (c.runs[1].path / "analysis.json").unlink()
    out = cli("report", path)
    assert out.returncode == 2 and "1 of 2 runs are not analysed: bd/rate-10" in out.stderr
    partial = cli("report", path, "--partial", check=True)
    assert "bd/rate-10: left out" in partial.stdout
    assert json.loads((c.report_dir / "campaign.json").read_text())["missing"] == ["bd/rate-10 (complete)"]


@pytest.mark.full
def test_the_steps_of_a_local_submit_end_with_it(tmp_path):
    """kill -9 of `submit --executor local`: its running step gets SIGTERM from the kernel (parent-death
    signal) and stops at a checkpoint; nothing lives on unwatched, and a new submit finishes the run."""
    path = tiny_campaign(tmp_path, ka=False, bd_protocol={"production_strain": 3.0, "checkpoint_every": 10})
    c = campaigns.load(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "submit", path, "--executor", "local"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_rows(c.runs[0].path / "thermo.csv", 25)
    proc.kill()
    proc.wait()
    deadline = time.time() + 120
    while time.time() < deadline and campaigns.run_state(c.runs[0]).state == "running":
        time.sleep(0.1)
    state = campaigns.run_state(c.runs[0]).state
    assert state == "interrupted", state  # stopped at a checkpoint, not running on, not killed mid-write
    out = cli("submit", path, "--executor", "local", check=True).stdout
    assert "report: done" in out


@pytest.mark.full
def test_a_step_stopped_from_outside_is_reported_as_resumable_not_failed(tmp_path):
    """SIGTERM to a running step itself (not to the submit): it stops at a checkpoint, the submit says
    so and how to resume, runs the rest, and ends as interrupted (exit 130), not as a failure."""
    path = tiny_campaign(tmp_path, ka=False, bd_protocol={"production_strain": 3.0, "checkpoint_every": 10})
    c = campaigns.load(path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "submit", path, "--executor", "local"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    while not (lines and "run bd/rate-20: started (pid" in lines[-1]):
        lines.append(proc.stdout.readline())
        assert lines[-1], "".join(lines)
    pid = int(lines[-1].split("(pid ")[1].rstrip(")\n"))
    wait_for_rows(c.runs[0].path / "thermo.csv", 25)
    os.kill(pid, signal.SIGTERM)
    text = "".join(lines) + proc.communicate(timeout=600)[0]
    assert proc.returncode == 130, text
    assert "run bd/rate-20: stopped from outside (exit 130)" in text and "FAILED" not in text, text
    assert "analyze bd/rate-10: done" in text and "1 steps were stopped from outside: run bd/rate-20" in text
    assert campaigns.run_state(c.runs[0]).state == "interrupted"
    out = cli("submit", path, "--executor", "local", check=True).stdout
    assert "1 run and 1 analysis to do" in out and "report: done" in out


def test_the_local_executor_reports_a_finished_campaign(tiny_run, tmp_path):
    """The fast loop's local executor: a campaign whose one run is done runs nothing but its report
    (a real `lmpshear report` process), and a second submit has nothing left."""
    import shutil

    data = {"name": "done", "root": "runs", "resources": {"threads": 1}, "runs": [{"spec": "ka3d-tiny", "label": "ka"}]}
    path = tmp_path / "done.toml"
    path.write_text(tomli_w.dumps(data))
    c = campaigns.load(path)
    shutil.copytree(tiny_run, c.runs[0].path)
    cli("analyze", c.runs[0].path, "--only", "viscosity", "--blocks", "20", "--no-figures", check=True)
    (c.runs[0].path / "analysis.json").write_text('{"stages": {"viscosity": "done"}}')  # as a full analyze ends
    assert campaigns.run_state(c.runs[0]).state == "analysed"
    made = (c.runs[0].path / "viscosity.json").read_bytes()
    out = cli("submit", path, "--executor", "local", check=True).stdout
    assert "0 runs and 0 analyses to do" in out and "report: done" in out
    # the report reads the product as analyze left it (20 blocks), never makes it again with its own
    assert (c.runs[0].path / "viscosity.json").read_bytes() == made
    v = RunDir(c.runs[0].path).result("viscosity")
    runs = pd.read_csv(c.report_dir / "runs.csv")
    assert list(runs.system) == ["ka"] and runs.eta[0] == pytest.approx(v["eta"])
    flow = pd.read_csv(c.report_dir / "ka" / "flowcurve.csv")
    assert flow.eta_error[0] == pytest.approx(v["eta_error"], rel=1e-12)


def test_the_verdict_tables_are_remade_by_one_command_from_the_collected_folders(tmp_path):
    """`analysis/results/verdict/make-tables.sh` on a copy of the committed folders gives the committed
    extended Table I (every exponent) and the lengths figure."""
    import shutil

    from conftest import REPO

    verdict = REPO / "analysis" / "results" / "verdict"
    copy = tmp_path / "verdict"
    copy.mkdir()
    shutil.copy2(verdict / "make-tables.sh", copy)
    for folder in verdict.glob("*-rate*/"):  # the collected folders (not the campaign files)
        shutil.copytree(folder, copy / folder.name)
    (copy / "report").mkdir()
    subprocess.run(
        ["bash", str(copy / "make-tables.sh")],
        check=True,
        capture_output=True,
        env=os.environ | {"PYTHON": sys.executable, "RECIPES": str(REPO / "analysis" / "recipes")},
    )
    made = pd.read_csv(copy / "report" / "tables" / "table1.csv")
    committed = pd.read_csv(verdict / "report" / "tables" / "table1.csv")
    assert list(made.system) == list(committed.system) and len(made) >= 2
    for column in ("lambda", "nu_c", "nu_c_significance", "nu_4_t_chi", "nu_4_tau_alpha", "nu_jj_t_chi"):
        assert np.allclose(made[column], committed[column], equal_nan=True), column
    assert (copy / "report" / "tables" / "lengths_vs_rate.png").stat().st_size > 30_000
    # beside each ξ_c, the sieve's uniform null and the cell the significance rule keeps, from the run's summary
    rates = pd.read_csv(copy / "report" / "tables" / "rates.csv")
    for folder in verdict.glob("ka3d-*-rate*/"):
        summary = json.loads((folder / "clusters_summary.json").read_text())["summary"]
        row = rates[(rates.system == "3D MD") & np.isclose(rates.rate, float(folder.name.rsplit("-rate", 1)[1]))]
        assert row.xi_c_null.item() == pytest.approx(summary["null"]["uniform"]["xi_c"])
        assert row.kept_significant.item() == pytest.approx(summary["significance"]["kept_fraction"])
        assert row.xi_c.item() > row.xi_c_null.item()  # the KA sieve's regions are larger than its grain


def test_a_system_with_too_few_rates_keeps_its_name_and_the_papers_row(tmp_path):
    """One collected rate: no exponents (—), but the row is the paper's system with the paper's
    numbers beside it, as in the full table (the label is in flowcurve.json, not only in table1.json)."""
    import shutil

    from conftest import REPO

    verdict = REPO / "analysis" / "results" / "verdict"
    shutil.copytree(verdict / "ka3d-N16500-rate0.003", tmp_path / "ka3d-N16500-rate0.003")
    recipes = REPO / "analysis" / "recipes"
    run = lambda *a: subprocess.run(
        [sys.executable, *map(str, a)],
        check=True,
        capture_output=True,  # noqa: E731
        text=True,
        cwd=tmp_path,
    )
    run(recipes / "results_report.py", "ka3d-N16500-rate0.003", "-o", "report/ka")
    assert json.loads((tmp_path / "report" / "ka" / "flowcurve.json").read_text())["system"] == "3D MD"
    assert not (tmp_path / "report" / "ka" / "table1.json").exists()
    run(recipes / "table1.py", "report/ka", "-o", "tables")
    row = pd.read_csv(tmp_path / "tables" / "table1.csv").iloc[0]
    assert row.system == "3D MD" and row.lambda_paper == 0.728 and row.nu_c_paper == 0.176
    assert np.isnan(row["lambda"]) and np.isnan(row.nu_c)
    assert "| 3D MD | 0.003 | — (0.728) |" in (tmp_path / "tables" / "table1.md").read_text()


def test_a_campaign_whose_trajectory_exceeds_the_free_disk_is_refused_with_the_numbers(tmp_path, monkeypatch):
    import collections

    from lmpshear import preparation

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(preparation.shutil, "disk_usage", lambda path: usage(10**12, 10**12 - 1000, 1000))
    with pytest.raises(UserError) as exc:
        campaigns.load(tiny_campaign(tmp_path, ka=False))
    assert "GB for traj.gsd, more than the 1e-06 GB free" in str(exc.value), str(exc.value)


def test_runs_that_fit_the_disk_one_by_one_but_not_together_are_refused_before_any_is_prepared(tmp_path, monkeypatch):
    import collections

    from lmpshear import campaign, preparation

    c = campaigns.load(tiny_campaign(tmp_path, ka=False))
    sizes = [preparation.estimate(r.load())["store_bytes"] for r in c.runs]
    free = 0.5 * (max(sizes) + sum(sizes))  # more than either run, less than both
    assert max(sizes) < free < sum(sizes)
    usage = collections.namedtuple("usage", "total used free")

    def free_disk(b):  # shutil is one module: this sets what campaign and preparation both see
        monkeypatch.setattr(campaign.shutil, "disk_usage", lambda path: usage(10**12, 10**12 - b, b))

    free_disk(free)
    with pytest.raises(UserError) as exc:
        campaigns.prepare_missing(c, echo=lambda _: None)
    message = str(exc.value)
    assert f"its 2 unfinished runs need about {sum(sizes) / 1e9:.3g} GB together" in message, message
    assert f"more than the {free / 1e9:.3g} GB free" in message
    assert not (tmp_path / "runs").exists()  # refused before anything was prepared
    # a finished run's store is written: only what the others still lack counts
    free_disk(10**12)
    preparation.prepare(tmp_path / "bd.toml", c.runs[0].path, c.runs[0].rate)
    RunDir(c.runs[0].path).set_status(state="complete")
    free_disk(free)
    assert campaigns.prepare_missing(c, echo=lambda _: None) == [c.runs[1]]
    # a started run counts what its store still lacks
    RunDir(c.runs[1].path).set_status(state="interrupted")
    free_disk(sizes[1] / 2)
    RunDir(c.runs[1].path).store.write_bytes(b"\0" * int(sizes[1] / 2 + 10))
    campaign.check_disk(c)
    RunDir(c.runs[1].path).store.write_bytes(b"\0" * int(sizes[1] / 2 - 10))
    with pytest.raises(UserError, match="its unfinished run needs about"):
        campaign.check_disk(c)


@pytest.mark.full
def test_a_campaign_with_seeds_reports_each_rate_as_their_mean_and_names_a_damaged_seed(tmp_path):
    """Two rates x two seeds of real tiny BD runs: the report's flow curve has one row per rate, the mean
    of its seeds with their spread in the error; runs.csv keeps each seed. A damaged seed stops the
    report (exit 2, named, nothing written) unless --partial, which keeps its intact sibling."""
    path = tiny_campaign(tmp_path, "seeded", ka=False)
    import tomllib

    data = tomllib.loads(path.read_text())
    data["runs"][0]["seeds"] = [1, 2]
    path.write_text(tomli_w.dumps(data))
    c = campaigns.load(path)
    campaigns.prepare_missing(c, echo=lambda s: None)
    assert len(c.runs) == 4
    for r in c.runs:
        cli("run", r.path, check=True)
        cli("analyze", r.path, "--only", "viscosity", "--no-figures", check=True)
        (r.path / "analysis.json").write_text('{"stages": {"viscosity": "done"}}')  # as a full analyze ends
    eta = {(r.rate, r.seed): RunDir(r.path).result("viscosity") for r in c.runs}
    assert eta[(20.0, 1)]["eta"] != eta[(20.0, 2)]["eta"]  # the seeds differ
    out = cli("report", path, check=True).stdout
    assert "mean of 2 seeds" in out
    flow = pd.read_csv(c.report_dir / "bd" / "flowcurve.csv")
    assert list(flow.rate) == [10.0, 20.0] and list(flow.seeds) == [2, 2]
    for rate, row in zip((10.0, 20.0), flow.itertuples()):
        pair = [eta[(rate, s)] for s in (1, 2)]
        values = [p["eta"] for p in pair]
        assert row.eta == pytest.approx(np.mean(values), rel=1e-12)
        within = np.hypot(*[p["eta_error"] for p in pair]) / 2
        between = np.std(values, ddof=1) / np.sqrt(2)
        assert row.eta_error == pytest.approx(np.hypot(within, between), rel=1e-12)
    runs = pd.read_csv(c.report_dir / "runs.csv")
    assert len(runs) == 4 and sorted(runs.seed) == [1, 1, 2, 2]
    # one seed's product damaged: named, exit 2, the report left as it was; --partial keeps its sibling
    before = (c.report_dir / "bd" / "flowcurve.csv").read_text()
    victim = next(r for r in c.runs if r.rate == 20.0 and r.seed == 2)
    (victim.path / "viscosity.json").write_text('{"stage": "viscosity", "params": {}, "result": {"eta": 1')
    refused = cli("report", path)
    assert refused.returncode == 2 and victim.name in refused.stderr and "--partial" in refused.stderr
    assert "Traceback" not in refused.stderr and (c.report_dir / "bd" / "flowcurve.csv").read_text() == before
    out = cli("report", path, "--partial", check=True).stdout
    assert f"left out (damaged; --partial): {victim.name}" in out
    flow = pd.read_csv(c.report_dir / "bd" / "flowcurve.csv")
    assert list(flow.seeds) == [2, 1] and flow.eta[1] == pytest.approx(eta[(20.0, 1)]["eta"], rel=1e-12)


def test_report_refuses_one_law_across_liquids_or_dimensions():
    from lmpshear.report import AnalysedRun, write_report

    runs = [
        AnalysedRun("a", 0.01, 5.0, 0.1, ("ka3d", 3, None)),
        AnalysedRun("b", 0.02, 3.0, 0.1, ("softdisk2d", 2, None)),
    ]
    with pytest.raises(UserError, match="different liquids or dimensions .*ka3d in 3D, softdisk2d in 2D"):
        write_report(runs, "/nonexistent/never-written")
