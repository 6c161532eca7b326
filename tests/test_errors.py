"""The error contract (docs/concepts/command-line.md): bad input exits 2 with a message, no traceback, nothing
overwritten."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import cli, write_spec

from lmpshear.rundir import RunDir
from lmpshear.store import Trajectory


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
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "run", rundir], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    thermo = rundir / "thermo.csv"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if thermo.exists() and sum(1 for _ in open(thermo)) > after_rows:
            break
        time.sleep(0.01)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.full
@pytest.mark.parametrize(
    "preset, spec, sig",
    [
        ("bd45-tiny", {"production_strain": 1.0, "checkpoint_every": 1000}, signal.SIGINT),
        ("ka3d-tiny", {"checkpoint_every": 1000}, signal.SIGTERM),
        ("bd45-tiny", {"production_strain": 1.0, "checkpoint_every": 1000}, signal.SIGUSR1),  # SLURM --signal=USR1
    ],
)
def test_an_interrupted_run_says_so_and_resumes(tmp_path, preset, spec, sig):
    """Ctrl-C (or SLURM's SIGTERM or USR1) mid-run: exit 130, a message saying how to resume, status
    "interrupted" (not "running"), no traceback, a checkpoint at the sample where it stopped (the
    regular ones are 1000 samples apart), so nothing is lost; `lmpshear run` then completes every sample."""
    path = write_spec(tmp_path / "spec.toml", preset, protocol=spec)
    run = tmp_path / "run"
    cli("prepare", path, "-o", run, check=True)
    code, _, err = _interrupt(run, 12, sig)
    assert code == 130, err
    assert "interrupted" in err and f"lmpshear run {run}" in err and "resumes" in err
    assert "Traceback" not in err and "SystemError" not in err
    status = RunDir(run).status()
    assert status["state"] == "interrupted" and "resumes" in status["message"]
    ckpt = RunDir(run).latest_checkpoint()
    with Trajectory(run / "traj.gsd") as traj:
        assert 1 < ckpt.frames == len(traj) == status["frames"]
    cli("run", run, check=True)
    spec_ = RunDir(run).spec()
    with Trajectory(run / "traj.gsd") as traj:
        assert len(traj) == spec_.n_samples + 1
        np.testing.assert_allclose(np.diff(traj.times), spec_.rate.sample_interval, rtol=1e-9)
    assert RunDir(run).status()["state"] == "complete"


@pytest.mark.parametrize(
    "system, protocol, rates, needle",
    [
        ({"n_particles": 10**12}, {}, None, "beyond what one run can hold"),
        ({}, {"timestep": 1e-300}, [{"rate": 0.06, "sample_interval": 1e-299}], "particle-steps, about"),
        ({}, {"production_strain": 1e12}, None, "years at"),
    ],
)
def test_prepare_refuses_runs_that_cannot_finish_with_the_numbers(tmp_path, system, protocol, rates, needle):
    path = write_spec(tmp_path / "spec.toml", "ka3d-tiny", system=system, protocol=protocol, rates=rates)
    proc = cli("prepare", path, "-o", tmp_path / "run")
    assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


def test_prepare_estimates_and_warns_about_long_runs(tmp_path):
    from lmpshear import config
    from lmpshear.preparation import STORE_BYTES_PER_PARTICLE, estimate

    spec = config.load("ka3d").select_rate(0.06)
    e = estimate(spec)
    assert e["frames"] == spec.n_samples + 1
    assert e["store_bytes"] == e["frames"] * 16500 * STORE_BYTES_PER_PARTICLE
    p = spec.protocol  # the melt, the equilibration and the shear
    assert e["steps"] == spec.steps(p.melt_time) + spec.steps(p.equilibration_time) + spec.shear_steps > 0
    assert spec.steps(p.melt_time) > 0  # the KA preset melts first: counted
    # days at the nominal speed, sampled sparsely: a store of a few tenths of a GB, which any test
    # machine holds (the store's own refusal against the free disk is tested in test_campaign)
    path = write_spec(
        tmp_path / "long.toml",
        "ka3d",
        protocol={"production_strain": 100.0},
        rates=[{"rate": 0.003, "sample_interval": 150.0}],
    )
    long = config.load(path).select_rate(0.003)
    e = estimate(long)
    assert e["hours"] > 24 and e["store_bytes"] < 1e9
    proc = cli("prepare", path, "-o", tmp_path / "run", "--rate", 0.003, check=True)
    assert f"warning: this run needs about {e['hours']:.3g} hours" in proc.stderr, proc.stderr
    assert f"and {e['store_bytes'] / 1e9:.3g} GB for traj.gsd" in proc.stderr, proc.stderr
    assert f"estimate: {e['particle_steps']:.3g} particle-steps, about {e['hours']:.3g} h" in proc.stdout, proc.stdout


# -- a table of bad inputs through the CLI: exit 2, a message, no traceback, nothing written ---------

_KA = 'extends = "ka3d-tiny"\n'
_BAD_SPECS = {  # spec text -> what the message must say
    "not toml": (_KA + "[system\n", "not valid TOML"),
    "unknown key": (_KA + "[system]\ncolour = 1\n", "colour"),
    "negative N": (_KA + "[system]\nn_particles = -5\n", "n_particles"),
    "zero N": (_KA + "[system]\nn_particles = 0\n", "n_particles"),
    "float N": (_KA + "[system]\nn_particles = 100.5\n", "n_particles"),
    "dimension 4": (_KA + "[system]\ndimension = 4\n", "dimension"),
    "negative T": (_KA + "[system]\ntemperature = -1.0\n", "temperature"),
    "string T": (_KA + '[system]\ntemperature = "hot"\n', "temperature"),
    "name newline": (_KA + '[system]\nname = "x\\n"\n', "system.name"),
    "name spaces": (_KA + '[system]\nname = "a b"\n', "system.name"),
    "negative cutoff": (_KA + "[system.potential]\ncutoff = -1.0\n", "cutoff"),
    "unknown style": (_KA + '[system.potential]\nstyle = "morse"\n', "style"),
    "unknown engine": ('engine = "gromacs"\n' + _KA, "engine"),
    "missing extends": ('extends = "no-such-preset"\n', "no-such-preset"),
    "negative rate": (_KA + "[[protocol.rates]]\nrate = -0.1\nsample_interval = 0.05\n", "must be > 0"),
    "dt not multiple": (
        _KA + "[[protocol.rates]]\nrate = 0.06\nsample_interval = 0.0123\n",
        "whole number of timesteps",
    ),
    "thermo not dividing": (
        _KA + "[[protocol.rates]]\nrate = 0.06\nsample_interval = 0.05\nthermo_interval = 0.03\n",
        "must divide",
    ),
    "rate twice": (
        _KA + "[[protocol.rates]]\nrate = 0.06\nsample_interval = 0.05\n"
        "[[protocol.rates]]\nrate = 0.06\nsample_interval = 0.05\n",
        "listed twice",
    ),
    "no rates": (_KA + "[protocol]\nrates = []\n", "rates"),
    "negative timestep": (_KA + "[protocol]\ntimestep = -0.005\n", "timestep"),
    "both steady": (
        _KA + "[protocol]\nsteady_time = 1.0\nsteady_strain = 1.0\n",
        "exactly one of steady_strain or steady_time",
    ),
    "init file missing": (_KA + '[protocol]\ninit = "file"\n', "init_file"),
    "init file absent": (_KA + '[protocol]\ninit = "file"\ninit_file = "nowhere.data"\n', "not found"),
    "three particles": (_KA + "[system]\nn_particles = 3\n", "would meet its own images"),
    "outer skin md": (_KA + "[protocol]\nouter_skin = 1.0\n", "only for engine 'bd'"),
    "bd thermostat": ('extends = "bd45-tiny"\n[protocol]\nthermostat_damp = 0.5\n', "thermostat_damp"),
    "seed too large": (_KA + "[protocol]\nseed = 4294967296\n", "seed"),
    "unknown analysis key": (_KA + "[analysis]\nwindow = 3\n", "analysis.window"),
    "bad analysis value": (_KA + "[analysis]\noverlap_a = -0.2\n", "analysis.overlap_a"),
    "bad analysis choice": (_KA + '[analysis]\ncluster_sieve = "blobs"\n', "cluster_sieve"),
    "bad per-rate analysis": (
        _KA + "[[protocol.rates]]\nrate = 0.06\nsample_interval = 0.05\nanalysis = { min_stz = -1.0 }\n",
        "rates[0].analysis.min_stz",
    ),
    "too many particles": (_KA + "[system]\nn_particles = 1000000000000\n", "beyond what one run can hold"),
    "endless run": (_KA + "[protocol]\nproduction_strain = 1e12\n", "particle-steps"),
    "fractions": (_KA + '[[system.species]]\nname = "A"\nfraction = 0.5\nmass = 1.0\ndiameter = 1.0\n', "fraction"),
    "vanishing density": (_KA + "[system]\nnumber_density = 1e-300\n", "system.number_density"),
    "bad threshold rule": (_KA + '[analysis]\ncluster_threshold = "maybe"\n', "cluster_threshold"),
    "fdr of one": (_KA + "[analysis]\ncluster_fdr = 1.0\n", "cluster_fdr"),
}


@pytest.mark.parametrize("case", sorted(_BAD_SPECS))
def test_bad_specs_exit_2_with_a_message_and_write_nothing(tmp_path, case):
    text, needle = _BAD_SPECS[case]
    spec = tmp_path / "spec.toml"
    spec.write_text(text)
    out = tmp_path / "run"
    proc = cli("prepare", spec, "-o", out, cwd=tmp_path)
    assert proc.returncode == 2, (case, proc.stdout, proc.stderr)
    assert needle in proc.stderr, (case, proc.stderr)
    assert "Traceback" not in proc.stderr and not out.exists()


def _bad_commands(tmp_path, prepared):
    """(argv, what the message must say) for commands other than prepare."""
    empty = tmp_path / "empty"
    empty.mkdir()
    junk = tmp_path / "junk.dump"
    junk.write_text("this is not a trajectory\n")
    return [
        (("prepare", "no-such-preset", "-o", tmp_path / "x"), "no-such-preset"),
        (("prepare", tmp_path / "missing.toml", "-o", tmp_path / "x"), "not found"),
        (("prepare", "ka3d", "-o", tmp_path / "x"), "choose one with --rate"),
        (("prepare", "ka3d", "--rate", 0.5, "-o", tmp_path / "x"), "not in the protocol"),
        (("run", tmp_path / "nowhere"), "no run directory"),
        (("run", empty), "not a prepared run directory"),
        (("analyze", tmp_path / "nowhere"), "no run directory"),
        (("analyze", prepared), "has not finished running"),
        (("analyze", prepared, "--set", "nokey=1"), "nokey"),
        (("figures", tmp_path / "nowhere"), "no run directory"),
        (("ice", tmp_path / "nowhere"), "no run directory"),
        (("report", tmp_path / "nowhere"), "not a run directory"),
        (("report", empty), "no run directories found"),
        (
            (
                "import",
                tmp_path / "none.dump",
                "-o",
                tmp_path / "imp",
                "--rate",
                0.1,
                "--temperature",
                1.0,
                "--timestep",
                0.005,
            ),
            "none.dump",
        ),
        (("import", junk, "-o", tmp_path / "imp", "--rate", 0.1, "--temperature", 1.0, "--timestep", 0.005), "junk"),
        (
            ("import", junk, "-o", tmp_path / "imp", "--rate", 0.1, "--temperature", "nan", "--timestep", 0.005),
            "--temperature nan",
        ),
        (
            ("import", junk, "-o", tmp_path / "imp", "--rate", 0.1, "--temperature", 1.0, "--timestep", 0),
            "--timestep 0",
        ),
        (("import", junk, "-o", "", "--rate", 0.1, "--temperature", 1.0, "--timestep", 0.005), "-o/--out is empty"),
    ]


@pytest.mark.full
def test_bad_commands_exit_2_with_a_message(tmp_path):
    prepared = tmp_path / "prepared"
    cli("prepare", "ka3d-tiny", "-o", prepared, check=True)
    before = sorted(p.name for p in prepared.iterdir())
    cases = _bad_commands(tmp_path, prepared)
    for argv, needle in cases:
        proc = cli(*argv, cwd=tmp_path)
        assert proc.returncode == 2, (argv, proc.stdout, proc.stderr)
        assert needle in proc.stderr, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr, (argv, proc.stderr)
    assert sorted(p.name for p in prepared.iterdir()) == before  # nothing written into the prepared run
    assert not (tmp_path / "x").exists() and not (tmp_path / "imp").exists()
    assert len(_BAD_SPECS) + len(cases) >= 50


@pytest.mark.full
def test_a_damaged_checkpoint_pointer_is_set_again_from_the_verified_checkpoints(tmp_path):
    """The pointer is derived: the resume checks every checkpoint itself and points again at the newest
    intact one, and the run ends bitwise equal to one never stopped."""
    from conftest import prepare_and_run, run_and_kill

    path = write_spec(tmp_path / "spec.toml", "bd45-tiny", protocol={"production_strain": 0.5, "checkpoint_every": 5})
    reference = prepare_and_run(tmp_path, path, "reference")
    run = tmp_path / "run"
    cli("prepare", path, "-o", run, check=True)
    run_and_kill(run, 15)
    pointer = run / "checkpoint" / "latest.json"
    pointer.write_text("{ not json")
    proc = cli("run", run, check=True)
    assert "latest.json was damaged: it points again at the newest intact checkpoint" in proc.stderr
    assert RunDir(run).status()["state"] == "complete"
    with Trajectory(reference / "traj.gsd") as ref, Trajectory(run / "traj.gsd") as got:
        assert np.array_equal(ref.particle_array("unwrapped"), got.particle_array("unwrapped"))


def test_lammps_equilibration_reports_progress_and_stops_on_a_signal(tmp_path):
    path = write_spec(tmp_path / "spec.toml", "ka3d-tiny", protocol={"equilibration_time": 200.0})
    run = tmp_path / "run"
    cli("prepare", path, "-o", run, check=True)
    proc = subprocess.Popen(
        [sys.executable, "-m", "lmpshear", "run", run], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    where = run / "checkpoint" / "equilibration" / "where.json"
    deadline = time.time() + 300
    while time.time() < deadline:  # until the 40000-step NVT piece (after the melt) has a checkpoint
        try:
            if json.loads(where.read_text())["run"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    assert "equilibrating:" in out + err and " of 40000 steps" in out + err  # progress inside the long run
    assert "before shear started" in err and "Traceback" not in err
    assert RunDir(run).status()["state"] == "interrupted" and not (run / "traj.gsd").exists()


@pytest.mark.full
def test_a_stop_in_the_lammps_equilibration_checkpoints_where_it_arrives(tmp_path, monkeypatch):
    """The stop is asked for every STOP_CHECK_STEPS, not only at the tenths (a tenth of KA's 1000 tau at
    paper size is minutes, more than a SLURM task's stop_before), and it writes the equilibration
    checkpoint there: the run resumes from that step. In process, with the stop asked at the 4th check."""
    import itertools
    import json

    from lmpshear.engines import run_directory
    from lmpshear.engines.lammps import LammpsRunner
    from lmpshear.errors import Interrupted
    from lmpshear.stopping import StopRequests

    path = write_spec(
        tmp_path / "spec.toml",
        "ka3d-tiny",
        protocol={"melt_time": 100.0, "equilibration_time": 20.0, "production_strain": 0.05},
    )
    run = tmp_path / "run"
    cli("prepare", path, "-o", run, check=True)
    checks = itertools.count()
    monkeypatch.setattr(StopRequests, "requested", lambda self: next(checks) >= 3)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Interrupted) as stopped:
        run_directory(RunDir(run))
    piece = LammpsRunner.STOP_CHECK_STEPS
    saved = json.loads((run / "checkpoint" / "equilibration" / "where.json").read_text())
    assert saved == {"run": 0, "done": 4 * piece}  # in the melt (20000 steps, tenths of 2000)
    assert f"before shear started, while equilibrating (step {4 * piece} of 20000 of run 1)" in str(stopped.value)
    monkeypatch.undo()
    out = cli("run", run, check=True)
    assert f"equilibration resumed at step {4 * piece} of 20000 (run 1)" in out.stderr
    assert RunDir(run).status()["state"] == "complete"


@pytest.mark.parametrize(
    "text, message",
    [
        ("hello, not a data file\n", "is not a LAMMPS data file"),
        ("LAMMPS data file\n\n100 atoms\n2 atom types\n", "holds 100 atoms of 2 types; the spec has 250 of 2"),
    ],
)
def test_an_init_file_is_read_at_prepare(tmp_path, text, message):
    (tmp_path / "start.data").write_text(text)
    spec = write_spec(tmp_path / "spec.toml", "ka3d-tiny", protocol={"init": "file", "init_file": "start.data"})
    out = cli("prepare", spec, "-o", tmp_path / "run")
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


@pytest.fixture
def small_disk(tmp_path):
    """A real file system of its own (tmpfs) whose size the test sets: ``resize("1200k")``."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4M", "tmpfs", str(disk)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"a full disk needs a tmpfs of its own, and mount failed (not root?): {mounted.stderr.strip()}")

    def resize(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True, capture_output=True)

    yield disk, resize
    subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_full_disk_stops_the_run_and_more_space_lets_it_finish(small_disk):
    """A real ENOSPC mid-run (the store outgrows a 1.2 MB file system): exit 3 with the system's
    message and what to do, no traceback; the process leaves no lock behind, and once there is space
    `lmpshear run` resumes from the last checkpoint and ends with every sample exactly once."""
    disk, resize = small_disk
    run = disk / "run"
    cli("prepare", "ka3d-tiny", "-o", run, check=True)  # prepare checks the free space first
    resize("1200k")  # the 101 frames need about 2 MB
    proc = cli("run", run)
    assert proc.returncode == 3, proc.stderr
    assert (
        "No space left on device" in proc.stderr
        and "Free space" in proc.stderr
        and f"lmpshear run {run}" in proc.stderr
    )
    assert "Traceback" not in proc.stderr
    ckpt = RunDir(run).latest_checkpoint()
    spec = RunDir(run).spec()
    assert ckpt is not None and 0 < ckpt.frames < spec.n_samples + 1  # stopped part way, with checkpoints
    status = RunDir(run).status()  # written in the room .status-reserve kept: the disk is full
    assert (run / "status.json").read_text().endswith("}\n")  # plain JSON, no padding: a reader sees it whole
    assert status["state"] == "stopped" and "No space left on device" in status["message"]
    resize("20M")
    cli("run", run, check=True)
    with Trajectory(run / "traj.gsd") as traj:
        assert len(traj) == spec.n_samples + 1
        assert np.array_equal(traj.steps, np.arange(len(traj)) * spec.sample_steps)
    thermo = (run / "thermo.csv").read_text().splitlines()[1:]
    steps = [int(line.split(",")[0]) for line in thermo]
    assert steps == sorted(set(steps)) and len(steps) == spec.shear_steps // spec.thermo_steps + 1
    assert RunDir(run).status()["state"] == "complete"


@pytest.mark.full
def test_damaged_stores_products_and_a_sigterm_to_analyze_are_messages(tmp_path, tiny_run):
    """A foreign or cut store, a damaged product or status file: exit 2 naming the file, no traceback;
    SIGTERM to analyze: exit 130 with Ctrl-C's message."""
    import shutil

    foreign = tmp_path / "foreign"
    shutil.copytree(tiny_run, foreign)
    (foreign / "traj.gsd").write_bytes(b"this is not a GSD file" * 100)
    cut = tmp_path / "cut"
    shutil.copytree(tiny_run, cut)
    data = (cut / "traj.gsd").read_bytes()
    (cut / "traj.gsd").write_bytes(data[:-777])
    unrecorded = tmp_path / "unrecorded"  # a store without the digests of its run (older runs, imports)
    shutil.copytree(foreign, unrecorded)
    shutil.rmtree(unrecorded / "checkpoint")
    deleted = tmp_path / "deleted"  # a finished run whose trajectory was deleted to free disk
    shutil.copytree(tiny_run, deleted)
    (deleted / "traj.gsd").unlink()
    frames = RunDir(tiny_run).status()["frames"]
    for run, needle in (
        (foreign, f"frames 0 to {frames - 1} of {foreign / 'traj.gsd'} do not match their digests"),
        (cut, "the index of traj.gsd is damaged (its frames are intact: `lmpshear run --repair`"),
        (deleted, f"{deleted / 'traj.gsd'} is missing (deleted or moved): the products made from it"),
        (unrecorded, f"{unrecorded / 'checkpoint' / 'frames.json'} is missing: nothing can be certified"),
    ):
        for proc in (
            cli("analyze", run, "--only", "structure", "--no-figures"),
            cli("analyze", run, "--only", "msd", "--no-figures"),
        ):
            assert proc.returncode == 2, proc.stderr
            assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "cut back to" not in cli("run", cut, "--repair", check=True).stderr  # the data was whole: only the
    cli("analyze", cut, "--only", "structure", "--no-figures", check=True)  # index is written back
    # --set values that would leave a kernel without a bin: refused with the key to change
    bounded = tmp_path / "bounded"
    shutil.copytree(tiny_run, bounded)
    cli(
        "analyze",
        bounded,
        *[a for stage in ("structure", "msd", "overlap", "cagejumps", "clusters") for a in ("--only", stage)],
        "--no-figures",
        check=True,
    )  # the inputs of the rest
    # each of these crashed a kernel (a traceback, a segfault, a 7 EiB allocation) before
    for setting, stage, needle in (
        ("s4_q_max=1e6", "s4", "s4_q_max: must be below 20"),
        ("s4_q_max=1e-6", "s4", "below this box's first |q| bin"),
        ("gjj_bin=1e6", "gjj", "gjj_bin = 1e+06 leaves fewer than two bins"),
        ("overlap_a=1e-6", "overlap", "overlap_a: use at least 0.01"),
        ("chi4_origins=1", "overlap", "chi4_origins: use at least 2"),
        ("kernel_scale=1e-6", "clusters", "kernel_scale: use at least 0.1"),
        ("cluster_fine=1000000", "clusters", "cluster_fine: must be below 513"),
        ("stz_diameter=1e-6", "clusters", "stz_diameter: use at least 0.1"),
        ("phm_shell=1e6", "phm", "reaches across the cell"),
        ("shell_width=1e6", "facilitation", "leaves fewer than two shells below r_max"),
    ):
        proc = cli("analyze", bounded, "--only", stage, "--set", setting, "--no-figures")
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_run, damaged)
    cli("analyze", damaged, "--only", "structure", "--no-figures", check=True)
    (damaged / "structure.json").write_text('{"stage": "structure", "params": {}, "result": {"r": [1, 2')
    proc = cli("analyze", damaged, "--only", "s4", "--no-figures")  # s4 reads g(r) first
    assert proc.returncode == 2 and str(damaged / "structure.json") in proc.stderr and "Traceback" not in proc.stderr
    (damaged / "status.json").write_text("{")
    proc = cli("analyze", damaged, "--no-figures")
    assert proc.returncode == 2 and str(damaged / "status.json") in proc.stderr and "Traceback" not in proc.stderr
    # SIGTERM while analysing: the same exit and message as Ctrl-C
    calm = tmp_path / "calm"
    shutil.copytree(tiny_run, calm)
    messages = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        for product in calm.glob("*.json"):
            if product.name not in ("status.json", "manifest.json"):
                product.unlink()
        proc = subprocess.Popen(
            [sys.executable, "-m", "lmpshear", "analyze", str(calm), "--no-figures"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # not ignored
        for _ in range(600):  # until the first stage has written its product: analyze is under way
            time.sleep(0.1)
            if (calm / "viscosity.json").exists() or proc.poll() is not None:
                break
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, (sig, err)
        assert "Traceback" not in err
        messages[sig] = err.strip().splitlines()[-1]
    assert messages[signal.SIGINT] == messages[signal.SIGTERM] and "interrupted" in messages[signal.SIGTERM]


def test_run_on_an_input_without_its_sections_is_a_message(tmp_path):
    run = tmp_path / "run"
    cli("prepare", "ka3d-tiny", "-o", run, check=True)
    text = (run / "in.lammps").read_text()
    (run / "in.lammps").write_text(text.replace("# ==== section: shear ====", "# shear"))
    proc = cli("run", run)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "in.lammps lacks its section(s) shear" in proc.stderr and "lmpshear prepare" in proc.stderr
    assert not (run / "traj.gsd").exists()


@pytest.mark.full
def test_an_incomplete_checkpoint_is_passed_over_for_the_older_one(tmp_path):
    """The newest checkpoint lost a file (its record names it): the run resumes from the older one,
    says why, and ends bitwise the run it was."""
    import hashlib

    run = tmp_path / "run"
    cli("prepare", "bd45-tiny", "-o", run, check=True)
    cli("run", run, check=True)
    before = hashlib.sha256((run / "traj.gsd").read_bytes()).hexdigest()
    rd = RunDir(run)
    rd.set_status(state="running", frames=3)  # as after a kill -9
    newest = rd.latest_checkpoint()
    newest.state.unlink()  # and its newest checkpoint lost a file
    proc = cli("run", run, check=True)
    assert f"passed over checkpoint {newest.directory.name}: {newest.state} is missing" in proc.stderr
    assert "rolled back to the checkpoint at step" in proc.stderr and "Traceback" not in proc.stderr
    assert rd.status()["state"] == "complete"
    assert hashlib.sha256((run / "traj.gsd").read_bytes()).hexdigest() == before


def test_an_interrupt_inside_an_evaluated_string_still_exits_130(tmp_path):
    """A Ctrl-C that strikes inside ``exec``/``eval`` of a string (namedtuple and numpy's imports use them)
    leaves CPython's 'unhandled' mark set although lmpshear catches it: without clearing it, a process
    started as ``python -m`` (as lmpshear is) kills itself with SIGINT at exit (-2) after saying so."""
    (tmp_path / "interrupted_in_exec.py").write_text(
        "import os, signal, sys\n"
        "from lmpshear import cli\n"
        "try:\n"
        "    exec('os.kill(os.getpid(), signal.SIGINT)\\nfor _ in range(10**6): pass')\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(cli._interrupted())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "interrupted_in_exec"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # not ignored (a background job's is)
    assert proc.returncode == 130 and "interrupted: what was finished is kept" in proc.stderr, proc


def test_an_interrupt_that_an_import_reports_as_an_importerror_still_exits_130(monkeypatch, capsys):
    """A signal that strikes while a C extension imports (numba's, as analyze starts) comes out as an
    ImportError ("numba._devicearray failed to import"): after a signal it is the interrupt, exit 130;
    without one it stays the error it is."""
    from lmpshear import cli

    received: list[str] = []
    monkeypatch.setattr(cli, "signals_received", received)

    def struck(*args, **kwargs):
        received.append("SIGTERM")  # what the handlers record before they raise KeyboardInterrupt
        raise ImportError("numba._devicearray failed to import")

    monkeypatch.setattr(cli, "app", struck)
    assert cli.main(["analyze", "x"]) == 130 and cli.INTERRUPTED in capsys.readouterr().err

    def broken(*args, **kwargs):
        raise ImportError("a missing module")

    received.clear()
    monkeypatch.setattr(cli, "app", broken)
    with pytest.raises(ImportError, match="a missing module"):
        cli.main(["analyze", "x"])
