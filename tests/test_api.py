"""The Python API: a notebook-style session on a real tiny run, products as objects equal to the JSON
products, DataFrames with their documented columns and units, the CLI's errors as exceptions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import lmpshear
from lmpshear.api import COLUMNS, UNITS
from lmpshear.rundir import Product


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    """ka3d-tiny prepared, run and analysed through the API, silently."""
    out = tmp_path_factory.mktemp("api") / "run"
    run = lmpshear.prepare("ka3d-tiny", out)
    assert run.state == "prepared" and run.progress is None
    lmpshear.run(run.path, progress=False)
    made = lmpshear.analyze(run.path, progress=False)
    return run, made


def test_a_notebook_prepares_runs_and_analyses_a_tiny_run_and_reads_its_products(api_run, capsys):
    run, made = api_run
    assert run.state == "complete" and run.progress == 1.0 and run.rate == run.spec.rate.rate
    stored = Product.read(run.path / "viscosity.json").result
    assert run.viscosity.eta == stored["eta"] == made["viscosity"].eta and run.viscosity.eta > 0
    assert run.viscosity.description.startswith("eta = -<P_xy^vir>/rate")
    assert run.units == {k: v.replace("^D", "^3") for k, v in UNITS["lammps"].items()}  # D filled in
    assert run.viscosity.units["viscosity"] == "ε τ/σ^3"
    clusters = json.loads((run.path / "clusters.json").read_text())["result"]
    assert run.clusters.summary == clusters["summary"] and run.clusters.summary["clusters"] == len(clusters["clusters"])
    table = run.clusters.table
    assert len(table) == len(clusters["clusters"]) > 0
    named = table.attrs["column"]
    assert set(named) <= set(COLUMNS["clusters"]) and {"t_ref", "volume", "xi", "t2"} <= set(named)
    # the identifiers first, as COLUMNS explains; a column's name carries its unit, D filled in
    assert list(table.columns[:5]) == ["window", "region", "t_ref [τ]", "volume [σ^3]", "xi [σ]"]
    assert named["stress_rise"] == "stress_rise [ε/σ^3]" and named["jumps"] == "jumps"
    assert np.allclose(table["volume [σ^3]"], [c["volume"] for c in clusters["clusters"]])
    assert table.attrs["units"]["xi"] == "σ" and table.attrs["units"]["t2"] == "τ"
    assert table.attrs["columns"]["xi"].startswith("the radius")
    jumps = run.jumps
    on_disk = pd.read_csv(run.path / "cagejumps.csv.gz")
    lengths = [f"{a} [σ]" for a in ("x", "y", "z", "dx", "dy", "dz")]
    assert list(jumps.columns) == ["particle", "frame", "time [τ]", *lengths]
    assert np.array_equal(jumps.to_numpy(), on_disk.to_numpy())  # the file's values, renamed only
    assert len(jumps) == made["cagejumps"].jumps and jumps.attrs["units"]["dx"] == "σ"
    assert "cage jump" in jumps.attrs["description"]
    with run.trajectory() as traj:
        assert len(traj) == run.status["frames"] and traj.n_particles == run.spec.system.n_particles
    capsys.readouterr()
    again = lmpshear.analyze(run.path, only=["viscosity"], progress=False)  # up to date: read, not made
    assert again["viscosity"].eta == stored["eta"] and capsys.readouterr().out == ""  # progress=False: silent


def test_the_api_raises_the_cli_s_errors(api_run, tmp_path):
    run, _ = api_run
    with pytest.raises(lmpshear.UserError, match="no run directory at"):
        lmpshear.Run(tmp_path / "nowhere")
    with pytest.raises(lmpshear.UserError, match="unknown stage"):
        run.result("nonsense")
    with pytest.raises(lmpshear.UserError, match="must be"):
        lmpshear.analyze(run.path, only=["viscosity"], set={"cluster_window": -1}, progress=False)
    with pytest.raises(AttributeError, match="has no 'nonsense'"):
        run.viscosity.nonsense  # noqa: B018  (reading it is what raises)
    fresh = lmpshear.prepare("ka3d-tiny", tmp_path / "fresh")
    with pytest.raises(lmpshear.UserError, match="has not finished running"):
        lmpshear.analyze(fresh.path, progress=False)
    with pytest.raises(lmpshear.UserError, match=r"no viscosity product yet; make it with lmpshear.analyze"):
        fresh.viscosity  # noqa: B018  (reading it is what raises)
    with pytest.raises(lmpshear.UserError, match="prepared run"):  # the CLI's refusal of a second prepare
        lmpshear.prepare("ka3d-tiny", tmp_path / "fresh", overrides={"protocol": {"production_strain": 2.0}})
    assert issubclass(lmpshear.UserError, lmpshear.LmpshearError) and lmpshear.UserError.exit_code == 2
    # wrong types are refused at the boundary in the CLI's words, never a TypeError from inside
    (tmp_path / "plain").mkdir()
    wrong = [
        (lambda: lmpshear.run(42), "rundir: expected a path"),
        (lambda: lmpshear.Run(7), "path: expected a path"),
        (lambda: lmpshear.Run(tmp_path / "plain"), "not a prepared run directory"),
        (lambda: lmpshear.prepare(123, tmp_path / "x"), "spec_or_preset: expected a path"),
        (lambda: lmpshear.prepare("ka3d-tiny", None), "out: expected a path"),
        (lambda: lmpshear.prepare("ka3d-tiny", tmp_path / "x", rate="fast"), "rate: expected a number"),
        (lambda: lmpshear.prepare("ka3d-tiny", tmp_path / "x", overrides=[1]), "overrides: expected a dict"),
        (lambda: lmpshear.analyze(run.path, set={"blocks": "x"}), "blocks: must be an integer"),
        (lambda: lmpshear.analyze(run.path, set={"blocks": 2}), "blocks: use at least 4"),
        (lambda: lmpshear.analyze(run.path, only="viscosity"), "only: expected a list of names"),
        (lambda: lmpshear.verify(3.5), "rundir: expected a path"),
    ]
    for call, message in wrong:
        with pytest.raises(lmpshear.UserError, match=message):
            call()
    assert not (tmp_path / "x").exists()


def test_a_campaign_s_runs_and_report_as_dataframes():
    """The committed KA campaign report read through the API equals its CSV files; the campaign file's
    runs (not on this machine) are listed as missing."""
    from conftest import REPO

    campaign = lmpshear.Campaign(REPO / "analysis" / "campaigns" / "ka3d.toml")
    runs = campaign.runs
    assert len(runs) == len(campaign.campaign.runs) and set(runs.state) == {"missing"}
    assert {"run", "rate", "state", "progress"} <= set(runs.columns)
    folder = REPO / "analysis" / "results" / "ka3d-N16500" / "report"
    report = lmpshear.Report(folder)
    flow = pd.read_csv(folder / "ka3d-N16500" / "flowcurve.csv")
    assert np.allclose(report.flow_curve.eta, flow.eta) and set(report.flow_curve.system) == {"ka3d-N16500"}
    assert np.allclose(report.table1.nu_c, pd.read_csv(folder / "table1.csv").nu_c)
    assert len(report.clusters_vs_rate) == 3 and "xi_c" in report.clusters_vs_rate
    with pytest.raises(lmpshear.UserError, match="no campaign report"):
        lmpshear.Report(REPO)
    with pytest.raises(lmpshear.UserError, match="jobs: expected a whole number of at least 1"):
        campaign.submit(jobs=0)  # "0 at a time" would wait forever


def test_the_demo_goes_through_the_api_and_writes_its_summary_and_figures(tmp_path):
    """`lmpshear demo` (prepare, run, analyze through the API, then plot) on the tiny preset."""
    from conftest import cli

    proc = cli("demo", "--preset", "ka3d-tiny", "--out", tmp_path, check=True)
    summary = (tmp_path / "summary.txt").read_text()
    eta = json.loads((tmp_path / "run" / "viscosity.json").read_text())["result"]["eta"]
    assert f"eta = {eta:.5g}" in summary and "convective clusters:" in summary and "t_chi:" in summary
    assert (tmp_path / "demo.png").stat().st_size > 20_000 and (tmp_path / "dynamics.png").stat().st_size > 20_000
    assert "demo: wrote" in proc.stdout and "Traceback" not in proc.stderr
    assert f"demo: eta = {eta:.4g}" in proc.stdout and "source .venv/bin/activate" in proc.stdout
    results = [line for line in proc.stdout.splitlines() if line.startswith("demo:") and "/" not in line]
    assert len(results) >= 4 and all(len(line) <= 100 for line in results)  # the details are in summary.txt
    # the phases in plain words: the melt, then the quench and equilibration, then the shear
    assert "melting at T = 2" in proc.stderr and "quenched to T = 0.45, equilibrating" in proc.stderr


@pytest.mark.full
def test_the_demo_preset_shows_one_region_of_the_liquid_and_finite_lengths(tmp_path):
    """The real `lmpshear demo` (ka3d-demo, ~3.5 min): the issue-40 measurement as a test. The sieve
    keeps at most 60% of the box, the featured cluster is at most 10% of it, xi_4 is finite, and the
    run needs no warning."""
    from conftest import cli

    from lmpshear.kernels.convective import choose_cluster

    proc = cli("demo", "--out", tmp_path, check=True)
    run = lmpshear.Run(tmp_path / "run")
    clusters = json.loads((run.path / "clusters.json").read_text())["result"]
    box = run.spec.system.box_length**3
    featured = clusters["clusters"][choose_cluster(clusters, None)]
    assert clusters["summary"]["kept_fraction"] <= 0.6 and featured["volume"] / box <= 0.10
    assert featured["volume"] < 0.5 * max(c["volume"] for c in clusters["clusters"])  # typical, not the largest
    s4 = run.s4.summary
    assert np.isfinite(s4["xi4_t_chi"]) and 0 < s4["xi4_t_chi_error"] < 0.5 * s4["xi4_t_chi"]
    assert "warning" not in proc.stdout + proc.stderr
    assert 25 <= run.viscosity.eta <= 35 and clusters["summary"]["yielded"] >= 50


def test_the_api_completes_and_shows_its_values(api_run):
    """Tab completion and help list what is there; a result's repr shows its numbers; typos get a
    suggestion; `status` takes a run directory too."""
    from conftest import cli

    from lmpshear.stages import STAGES

    run, _ = api_run
    assert {"prepare", "run", "analyze", "verify", "repair", "Run", "Campaign"} <= set(dir(lmpshear))
    assert set(STAGES) | {"jumps"} <= set(dir(run))
    assert all(f"run.{name}" in lmpshear.Run.__doc__ for name in STAGES)
    v = run.viscosity
    assert f"eta = {v.eta:.4g} ± {v.eta_error:.2g}" in repr(v)
    html = v._repr_html_()  # a notebook's table of the same numbers
    assert "<table>" in html and f"<td><code>eta</code></td><td>{v.eta:.4g} ± {v.eta_error:.2g}</td>" in html
    assert "table" not in dir(v) and "table" in dir(run.clusters)
    with pytest.raises(lmpshear.UserError, match="did you mean 'cluster_window'"):
        lmpshear.analyze(run.path, set={"cluster_windw": 2}, progress=False)
    out = cli("status", run.path, check=True).stdout
    assert out.strip() == f"{run.path}: complete, 100% of the frames"


def test_every_cli_command_parses_calls_the_api_and_prints(monkeypatch, tmp_path, capsys):
    """cli.py imports nothing of lmpshear but the API (besides its errors, mpi and the version); and each
    command, walked here one by one (a new command must join the list), reaches the API function named for
    it: each API entry point is replaced by a recorder that stops the command with an error of its own."""
    import ast
    from pathlib import Path

    from lmpshear import api, cli
    from lmpshear.errors import UserError

    tree = ast.parse(Path(cli.__file__).read_text())
    imported = {
        (node.module, a.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module.startswith("lmpshear")
        for a in node.names
    }
    assert imported == {
        ("lmpshear", "__version__"),
        ("lmpshear", "mpi"),
        ("lmpshear", "api"),
        ("lmpshear.errors", "Interrupted"),
        ("lmpshear.errors", "LmpshearError"),
        ("lmpshear.errors", "UserError"),
        ("lmpshear.errors", "signals_received"),
        ("lmpshear.api", "LmpshearWarning"),
    }
    assert not any(
        isinstance(node, ast.Import) and any(a.name.startswith("lmpshear") for a in node.names)
        for node in ast.walk(tree)
    )

    called = []
    for name in (
        "prepare",
        "run",
        "verify",
        "repair",
        "analyze",
        "figures",
        "ice",
        "import_trajectory",
        "report",
        "demo",
        "presets",
        "Run",
        "Campaign",
    ):

        def recorder(*args, _name=name, **kwargs):
            called.append(_name)
            raise UserError(f"recorded {_name}")

        monkeypatch.setattr(api, name, recorder)
    rundir = tmp_path / "run"
    rundir.mkdir()
    campaign = tmp_path / "c.toml"
    campaign.write_text("name = 'c'\n")
    traj = tmp_path / "t.gsd"
    traj.write_bytes(b"")
    walk = {
        "prepare": (["prepare", "ka3d-tiny", "-o", str(rundir)], "prepare"),
        "run": (["run", str(rundir)], "Run"),
        "run --verify": (["run", str(rundir), "--verify"], "verify"),
        "run --repair": (["run", str(rundir), "--repair"], "repair"),
        "analyze": (["analyze", str(rundir)], "analyze"),
        "figures": (["figures", str(rundir)], "figures"),
        "ice": (["ice", str(rundir)], "ice"),
        "import": (["import", str(traj), "-o", str(tmp_path / "imp"), "--temperature", "0.45"], "import_trajectory"),
        "report": (["report", str(rundir)], "report"),
        "submit": (["submit", str(campaign), "--executor", "local"], "Campaign"),
        "status": (["status", str(campaign)], "Campaign"),
        "status RUNDIR": (["status", str(rundir)], "Run"),
        "demo": (["demo", "-o", str(tmp_path / "demo")], "demo"),
        "presets": (["presets"], "presets"),
    }
    commands = {c.name or c.callback.__name__.rstrip("_") for c in cli.app.registered_commands}
    assert commands == {key.split()[0] for key in walk}
    for key, (argv, expected) in walk.items():
        called.clear()
        assert cli.main(argv) == 2, key
        assert called[:1] == [expected], key
        assert f"error: recorded {expected}" in capsys.readouterr().err, key
