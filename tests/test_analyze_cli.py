"""`lmpshear analyze` stages on a real run: products, up-to-date skipping, --only/--force, overrides."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import cli

from lmpshear.kernels.traceback import smooth
from lmpshear.store import Trajectory


@pytest.fixture()
def run_copy(tiny_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(tiny_run, dst, ignore=shutil.ignore_patterns("*.json.tmp*"))
    for product in dst.glob("*.json"):
        if product.name not in ("manifest.json", "status.json"):
            product.unlink()
    # the products these tests were written on: χ4 over 50 origins and t_χ its argmax (the tiny run's
    # few clusters hang on t_χ; the fitted peak is tested in test_analysis_kernels)
    config = dst / "config.toml"
    text = config.read_text().replace("chi4_origins = 400", "chi4_origins = 50")
    config.write_text(text.replace("t_chi_fraction = 0.7", "t_chi_fraction = 1.0"))
    return dst


def result(rundir, name):
    return json.loads((rundir / name).read_text())["result"]


@pytest.mark.full
def test_stages_products_and_skipping(run_copy):
    proc = cli("analyze", run_copy, "--cage-size", 0.04, check=True)
    for stage in ("viscosity", "structure", "msd", "overlap", "cagejumps", "clusters", "phm", "facilitation"):
        assert f"{stage}: computing" in proc.stdout
    # every result line fits 100 columns (a long one continues, indented; its numbers are in the product)
    assert all(len(line) <= 100 for line in proc.stdout.splitlines()), max(proc.stdout.splitlines(), key=len)
    clusters = next(
        line for line in proc.stdout.splitlines() if line.startswith("clusters: ") and "computing" not in line
    )
    assert " clusters in " in clusters and "    " not in clusters  # the headline starts on its own line
    assert (run_copy / "dynamics.png").stat().st_size > 10_000

    ovl = result(run_copy, "overlap.json")
    assert ovl["a"] == 0.25  # the 3D MD default of the paper
    q = np.array(ovl["q"])
    assert np.all((q > 0) & (q <= 1.5)) and q[0] > q[-1]  # decorrelates
    assert min(ovl["chi4"]) >= 0 and ovl["t_chi_argmax"] in ovl["times"]
    lo, hi = ovl["t_chi_lags"]  # the fitted peak lies within the lags it was fitted over
    assert lo <= ovl["t_chi"] <= hi and (ovl["t_chi_method"] == "fit") == (hi > lo)
    errors = np.array(ovl["chi4_error"])
    varying = (np.array(ovl["chi4"]) > 0) & (np.array(ovl["n_origins"]) >= 4)  # Q fluctuates: a nonzero error
    assert len(errors) == len(ovl["chi4"]) and np.all(errors >= 0) and np.all(errors[varying] > 0)
    assert ovl["t_chi_error"] >= 0

    msd = result(run_copy, "msd.json")  # the value used, and the MSD's own estimate beside it
    assert msd["cage_size"] == 0.04 and msd["cage_size_used"].startswith("given")
    assert "cage_size_measured" in msd and "l_c^2 = 0.04 (given" in proc.stdout

    g = result(run_copy, "structure.json")
    assert 1.2 < g["first_minimum"] < 1.7  # KA: first minimum of g(r) near 1.4-1.5

    jumps = pd.read_csv(run_copy / "cagejumps.csv.gz")
    summary = result(run_copy, "cagejumps.json")
    assert len(jumps) == summary["jumps"] > 0
    assert list(jumps.columns) == ["particle", "frame", "time", "x", "y", "z", "dx", "dy", "dz"]
    with Trajectory(run_copy / "traj.gsd") as traj:
        steady = np.nonzero(traj.strains >= 0.1 - 1e-9)[0]
        assert jumps.frame.min() > steady[0] and jumps.frame.max() <= steady[-1]
        k = jumps.iloc[0]
        t = traj.times
        assert k.time == pytest.approx(0.5 * (t[int(k.frame) - 1] + t[int(k.frame)]))
    assert np.all(np.hypot(np.hypot(jumps.dx, jumps.dy), jumps.dz) > 0)

    again = cli("analyze", run_copy, "--cage-size", 0.04, "--no-figures", check=True)
    from lmpshear.stages import STAGES

    assert again.stdout.count("up to date") == len(STAGES) and "computing" not in again.stdout  # every stage
    # a product of an older version of its stage (no "version" in its params) is made again
    stored = json.loads((run_copy / "overlap.json").read_text())
    assert stored["params"]["version"] == 3  # the overlap stage's (3: t_chi fitted)
    del stored["params"]["version"]
    (run_copy / "overlap.json").write_text(json.dumps(stored))
    old = cli("analyze", run_copy, "--only", "overlap", "--cage-size", 0.04, "--no-figures", check=True)
    assert "overlap: computing" in old.stdout

    clusters = result(run_copy, "clusters.json")
    assert clusters["summary"]["t_chi"] == ovl["t_chi"] and clusters["summary"]["windows"] >= 1
    # the tiny run is far below the paper's resolution, and says so (stderr and the product)
    warnings = clusters["summary"]["warnings"]
    assert any("windows of t_chi, fewer than 20" in w for w in warnings)
    assert "clusters: warning:" in proc.stderr
    assert len(clusters["clusters"]) == clusters["summary"]["clusters"]

    changed = cli("analyze", run_copy, "--cage-size", 0.04, "--overlap-a", 0.3, "--no-figures", check=True)
    # clusters read t_chi from overlap.json, so they follow it
    assert "overlap: computing" in changed.stdout and "clusters: computing" in changed.stdout
    assert changed.stdout.count("up to date") == 4
    assert result(run_copy, "overlap.json")["a"] == 0.3

    forced = cli("analyze", run_copy, "--only", "cagejumps", "--force", "--cage-size", 0.04, "--no-figures", check=True)
    assert "cagejumps: computing" in forced.stdout and "overlap" not in forced.stdout

    # any [analysis] key from the command line: a literal window of 3 t_chi
    cli(
        "analyze",
        run_copy,
        "--only",
        "clusters",
        "--cage-size",
        0.04,
        "--set",
        "cluster_window=3",
        "--set",
        "min_jumps_per_block=0",
        "--no-figures",
        check=True,
    )
    s = result(run_copy, "clusters.json")["summary"]
    t_chi = result(run_copy, "overlap.json")["t_chi"]  # of a = 0.3 now (the overlap stage above)
    assert s["window_multiple"] == 3 and s["window"] == pytest.approx(3 * t_chi)


@pytest.mark.full
def test_bad_requests_exit_2(run_copy, tmp_path):
    proc = cli("analyze", run_copy, "--only", "nosuch")
    assert proc.returncode == 2 and "unknown stage" in proc.stderr and "Traceback" not in proc.stderr
    proc = cli("analyze", run_copy, "--overlap-a", 0)
    assert proc.returncode == 2 and "analysis.overlap_a: must be > 0" in proc.stderr
    proc = cli("analyze", tmp_path / "missing")
    assert proc.returncode == 2 and "no run directory" in proc.stderr
    for bad, needle in (
        ("cluster_windw=3", "cluster_windw"),
        ("cluster_window=-1", "must be > 0"),
        ("atomic_stress=half", "must be one of"),
        ("novalue", "expected KEY=VALUE"),
    ):
        proc = cli("analyze", run_copy, "--set", bad)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr, bad
    # without a given cage size the MSD's is used, and without a plateau cage jumps are skipped
    proc = cli("analyze", run_copy, "--no-figures", check=True)
    lc2 = result(run_copy, "msd.json")["cage_size"]
    if lc2 is None:
        assert "cagejumps: skipped, no cage size" in proc.stdout
    else:
        assert result(run_copy, "cagejumps.json")["threshold"] == lc2


@pytest.mark.full
def test_report_flow_curve(run_copy, tmp_path):
    out = tmp_path / "report"
    proc = cli("report", run_copy, "-o", out, check=True)
    fc = json.loads((out / "flowcurve.json").read_text())
    eta = result(run_copy, "viscosity.json")["eta"]
    assert fc["rates"] == [0.06] and fc["eta"] == [pytest.approx(eta)]
    assert fc["fit"] is None and "no power-law fit" in proc.stdout
    assert (out / "flowcurve.png").is_file() and (out / "flowcurve.csv").is_file()
    proc = cli("report", tmp_path / "nothing-here")
    assert proc.returncode == 2 and "not a run directory" in proc.stderr
    for bounds, needle in (
        (("--min-rate", 1, "--max-rate", 0.1), "is above --max-rate"),
        (("--min-rate", "nan"), "must be a positive number"),
        (("--max-rate", -1), "must be a positive number"),
    ):
        proc = cli("report", run_copy, "-o", tmp_path / "bad", *bounds)
        assert proc.returncode == 2 and needle in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "bad").exists()


@pytest.mark.full
def test_clusters_contrast_and_paper_figures_on_a_real_run(run_copy):
    """The tiny run is too small for clusters of 2 V_stz (d = 3); with spots of d = 1 it has some."""
    config = run_copy / "config.toml"
    config.write_text(
        config.read_text().replace("stz_diameter = 3.0", "stz_diameter = 1.0").replace("min_stz = 2.0", "min_stz = 1.0")
    )
    cli("analyze", run_copy, "--cage-size", 0.04, "--no-figures", check=True)
    r = result(run_copy, "clusters.json")
    s, rows, series = r["summary"], r["clusters"], r["series"]
    assert s["clusters"] == len(rows) == len(series) > 0
    with Trajectory(run_copy / "traj.gsd") as traj:
        cell = traj.cell(len(traj) - 1)
    node_volume = cell.lx * cell.ly * cell.lz / s["grid"] ** 3
    for row, ser in zip(rows, series):
        assert row["volume"] == pytest.approx(len(ser["nodes"]) * node_volume)  # V_c = kept nodes × node volume
        assert row["xi"] == pytest.approx((3 * row["volume"] / (4 * np.pi)) ** (1 / 3))
        assert row["volume"] > 0  # C' V_stz prunes the coarse clusters, not the refined ones
        assert len(ser["t"]) == len(ser["sigma"]) == len(ser["n_cj"]) == len(ser["p_ext"])
        if "t2" in row:
            assert row["t0"] <= row["t1"] <= row["t2"] <= row["t3"]
            smoothed = smooth(np.array(ser["sigma"]), 5)
            assert row["stress_at_yield"] == pytest.approx(smoothed.max())  # σ_c,y: the smoothed peak, at t2
            assert ser["t"][int(np.argmax(smoothed))] == row["t2"]
            assert ser["exchange"][ser["t"].index(row["t0"])] == 0.0  # R(t0) = 0 by definition
    assert all(0 <= p <= 1 for p in r["P_c"]["P_c"])
    if s["yielded"]:
        assert s["eta_c"] == pytest.approx(s["P_c_mean"] * s["sigma_c_y"] / (2 * 0.06), nan_ok=True)  # eq. 8
    assert {c["kind"] for c in r["contrast"]} <= {"quiet", "straddling"}
    for c, ser in zip(r["contrast"], r["contrast_series"]):
        assert abs(ser["strain"][0]) < 1e-12 and ser["exchange"][0] == 0.0  # measured from the trace start
        assert c["volume"] == pytest.approx(len(ser["nodes"]) * node_volume)

    # STZs: the PHMs of the yielded clusters at t0, about their inherent structure with the rest frozen
    yielded = {(row["window"], row["region"]): ser for row, ser in zip(rows, series) if "t2" in row}
    stz = result(run_copy, "phm.json")
    assert stz["summary"]["clusters"] == min(20, len(yielded)) > 0
    for c in stz["clusters"]:
        members = yielded[(c["window"], c["region"])]["members_t0"]
        assert c["members"] == len(members) and c["relax_force"] < 1e-6
        kappas = [m["stiffness"] for m in c["modes"]]
        assert kappas == sorted(kappas) and kappas[0] > 0  # positive definite with the exterior frozen
        assert all(m["particle"] in members for m in c["modes"]) and all(
            0 <= m["extension_angle"] < 180 for m in c["modes"]
        )
        assert c["free"] == len(members) and all(m["shell_weight"] == 0 for m in c["modes"])
    matched, chance = np.array(stz["matched"]), np.array(stz["chance"])
    # with a relaxed shell of 1 around each cluster: more particles free, modes partly in the shell
    cli("analyze", run_copy, "--only", "phm", "--set", "phm_shell=1.0", "--set", "phm_clusters=2", check=True)
    shelled = result(run_copy, "phm.json")
    shelled_any = False  # a cluster of one particle may have no neighbour within 1 d0: nothing to free
    for c in shelled["clusters"]:
        members = yielded[(c["window"], c["region"])]["members_t0"]
        assert c["free"] >= len(members) and all(m["particle"] in members for m in c["modes"])
        assert all(0 <= m["shell_weight"] < 1 for m in c["modes"])
        if c["free"] > len(members):
            shelled_any = True
            assert any(m["shell_weight"] > 0 for m in c["modes"])
        else:
            assert all(m["shell_weight"] == 0 for m in c["modes"])
    assert shelled_any and 0 < shelled["summary"]["shell_weight"] < 1
    assert np.all(np.diff(matched) >= 0) and np.all(np.diff(chance) >= -1e-12) and 0 <= matched.min() <= 1
    fac = result(run_copy, "facilitation.json")
    assert len(fac["alpha"]) == len(fac["r"]) == len(fac["pairs"]) and 0 < fac["clusters"] <= len(yielded)
    assert sum(fac["pairs"]) > 0

    out = run_copy / "paper"
    proc = cli("figures", run_copy, "-o", out, check=True)
    for name in ("fig1b", "fig1c", "fig2", "fig3a", "fig4a", "fig8", "fig9"):
        assert (out / f"{name}.png").stat().st_size > 10_000, proc.stdout
    # the sieve's null beside the real sieve, and the lengths that need no sieve
    for null in ("uniform", "particles"):
        assert 0 <= s["null"][null]["kept_fraction"] <= 1 and s["null"][null]["clusters_per_window"] >= 0
    assert set(result(run_copy, "s4.json")["at"]) == {"t_chi", "tau_alpha"}
    gjj = result(run_copy, "gjj.json")
    assert set(gjj["at"]) == {"t_chi", "cluster_window"}
    # a fixed window (gjj_window) as long as t_χ tiles the steady window as t_χ's does: the same g_jj, ξ_jj
    t_chi = gjj["at"]["t_chi"]["window"]
    cli("analyze", run_copy, "--only", "gjj", "--set", f"gjj_window={t_chi!r}", check=True)
    fixed = result(run_copy, "gjj.json")
    assert (
        set(fixed["at"]) == {"t_chi", "cluster_window", "fixed_window"}
        and fixed["at"]["fixed_window"]["window"] == t_chi
    )
    for key in ("g", "jumps", "windows", "xi"):
        assert fixed["at"]["fixed_window"][key] == pytest.approx(gjj["at"]["t_chi"][key], nan_ok=True), key
    assert fixed["summary"]["xi_jj_fixed_window"] == pytest.approx(gjj["summary"]["xi_jj_t_chi"], nan_ok=True)
    report = cli("report", run_copy, "-o", run_copy / "report", check=True)
    table = pd.read_csv(run_copy / "report" / "clusters_vs_rate.csv")
    assert list(table.rate) == [0.06] and table.eta_c[0] == pytest.approx(s["eta_c"], nan_ok=True)
    assert table.eta[0] == pytest.approx(result(run_copy, "viscosity.json")["eta"])
    assert table.xi_c_null[0] == pytest.approx(s["null"]["uniform"]["xi_c"], nan_ok=True)
    assert table.kept_significant[0] == pytest.approx(s["significance"]["kept_fraction"], nan_ok=True)
    assert table.xi_jj_fixed_window[0] == pytest.approx(fixed["summary"]["xi_jj_fixed_window"], nan_ok=True)
    assert (run_copy / "report" / "clusters_vs_rate.png").stat().st_size > 10_000, report.stdout
    assert (run_copy / "report" / "stz_vs_rate.png").stat().st_size > 10_000, report.stdout
    assert table["matched_at_1.5"][0] == pytest.approx(stz["summary"]["matched_at_1.5"])
    bad = cli("figures", run_copy, "--cluster", len(rows))
    assert bad.returncode == 2 and "cluster table has rows" in bad.stderr and "Traceback" not in bad.stderr


def test_a_stage_reads_only_the_inputs_it_declares(tmp_path):
    from lmpshear.errors import UserError
    from lmpshear.rundir import Product, RunDir
    from lmpshear.stages import STAGES, Context

    Product("overlap", {}, {"t_chi": 1.5}).write(tmp_path / "overlap.json")
    Product("msd", {}, {"cage_size": 0.05}).write(tmp_path / "msd.json")
    assert Product.read(tmp_path / "msd.json") == Product("msd", {}, {"cage_size": 0.05})  # round trip
    ctx = Context(RunDir(tmp_path), info=None, stage=STAGES["cagejumps"])
    with pytest.raises(RuntimeError, match="reads overlap without declaring it"):
        ctx.product("overlap")
    assert ctx.cage_size() == 0.05  # l_c^2: what the msd stage decided
    ctx.stage = STAGES["clusters"]
    assert ctx.product("overlap") == {"t_chi": 1.5}
    with pytest.raises(Exception, match="cagejumps.csv.gz is missing"):
        ctx.input("jumps")
    (tmp_path / "overlap.json").write_text('{"result": {"t_chi": 1.5}}')  # not one of ours
    with pytest.raises(UserError, match="overlap.json is not an analysis product"):
        ctx.product("overlap")


def test_help_reads_plainly():
    top = cli("--help", check=True).stdout
    assert "<bool>" not in top and "submit" in top and "status" in top
    text = " ".join(cli("analyze", "--help", check=True).stdout.split())  # wrapped to the terminal
    assert "[analysis] overlap_a" in text and "[analysis] cage_size" in text and "<bool>" not in text
    from lmpshear import config
    from lmpshear.stages import STAGES

    assert "--only STAGE" in text and all(f" {name} " in text for name in STAGES)  # every stage, from the table
    # usage lines name their arguments plainly, not typer's {RUNDIR}; no type placeholder like <float range>
    usages = {c: cli(c, "--help", check=True).stdout.splitlines()[0].split(f" {c} ")[1] for c in ("analyze", "report")}
    usages |= {c: cli(c, "--help", check=True).stdout.splitlines()[0].split(f" {c} ")[1] for c in ("status", "prepare")}
    assert usages == {
        "analyze": "[OPTIONS] RUNDIR",
        "report": "[OPTIONS] RUNDIR...",
        "status": "[OPTIONS] CAMPAIGN|RUNDIR",
        "prepare": "[OPTIONS] SPEC",
    }
    prepare = " ".join(cli("prepare", "--help", check=True).stdout.split())
    assert "range>" not in text and "<path>" not in text and "RUNDIR A finished run directory" in text
    assert "SPEC A run spec (TOML file)" in prepare and "<str>" not in prepare
    assert all(f" {key} " in text for key in config.Analysis.__dataclass_fields__)  # every --set key


def test_the_steady_window_holds_the_frames_after_the_steady_start_read_once(tiny_run):
    """Every trajectory stage reads the steady window through one SteadyWindow: the store's frames at
    t >= the steady start, their times and cells, and each per-particle array streamed from the store,
    a frame read once while the budget holds it."""
    from lmpshear.errors import UserError
    from lmpshear.rundir import RunDir
    from lmpshear.stages import SteadyWindow

    info = RunDir(tiny_run).info()
    with Trajectory(tiny_run / "traj.gsd") as traj:
        window = SteadyWindow(traj, info.steady_time, tiny_run)
        expected = [k for k, t in enumerate(traj.times) if t >= info.steady_time - 1e-9]
        assert window.frames.tolist() == expected and 0 < expected[0] and expected[-1] == len(traj) - 1
        assert np.array_equal(window.times, traj.times[expected])
        assert window.unwrapped is window.unwrapped
        whole = traj.unwrapped(expected)
        assert all(np.array_equal(window.unwrapped[k], whole[k]) for k in range(len(expected)))
        assert window.unwrapped[2] is window.unwrapped[2] and window.cache.reads == len(expected)  # read once
        assert np.array_equal(window.nonaffine[-1], traj.nonaffine([expected[-1]])[0])
        assert np.array_equal(window.virial_xy[0], traj.virial_xy([expected[0]])[0])
        assert window.cells[3] == traj.cell(expected[3]) and window.cells[3] != window.cells[0]  # the tilt moves
        with pytest.raises(UserError, match="only 2 frames in the steady window"):
            SteadyWindow(traj, float(traj.times[-2]), tiny_run)


def test_set_applies_the_validated_values(tiny_run, tmp_path):
    """`--set` values go through the [analysis] schema and the validated values are applied: an integer
    given for a float key is the float the [analysis] table would hold, and a bad value is refused."""
    import shutil

    from lmpshear.errors import UserError
    from lmpshear.rundir import Product
    from lmpshear.stages.pipeline import analyze

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    out = analyze(run, only=["overlap"], overrides={"overlap_a": 1}, echo=lambda text: None)
    stored = Product.read(run / "overlap.json")
    assert stored.params["overlap_a"] == 1.0 and isinstance(stored.params["overlap_a"], float)
    assert out["overlap"]["a"] == 1.0
    with pytest.raises(UserError, match="crossover_fraction: must be below 1"):
        analyze(run, only=["msd"], overrides={"crossover_fraction": 2.0}, echo=lambda text: None)


def test_the_stages_run_in_the_order_of_their_inputs():
    """Every stage comes after the stages it reads (gjj, declared with the lengths, after clusters); the
    families' order decides among the rest; a cycle is refused when the table is made."""
    from dataclasses import replace

    from lmpshear.stages import STAGES, in_order_of_inputs

    order = list(STAGES)
    for name, stage in STAGES.items():
        assert all(order.index(i) < order.index(name) for i in stage.inputs if i in STAGES), name
    assert order == [
        "viscosity",
        "structure",
        "msd",
        "overlap",
        "cagejumps",
        "s4",
        "clusters",
        "gjj",
        "phm",
        "facilitation",
    ]
    looped = [replace(STAGES["structure"], inputs=("store", "msd")), STAGES["msd"]]
    with pytest.raises(RuntimeError, match="cycle: structure, msd"):
        in_order_of_inputs(looped)


def test_a_stage_reads_only_the_analysis_keys_it_declares(tiny_run):
    """ctx.analysis, while a stage computes, refuses a key the stage did not declare (its product would
    not be remade when that key changes); the rules of spec.Analysis count as the keys they read."""
    from lmpshear.rundir import RunDir
    from lmpshear.stages import STAGES, Context

    ctx = Context(RunDir(tiny_run), RunDir(tiny_run).info())
    ctx.stage = STAGES["structure"]
    assert ctx.analysis.structure_frames == 10 and ctx.analysis.memory_budget == 4.0
    with pytest.raises(RuntimeError, match="stage structure reads \\[analysis\\] n_lags without declaring it"):
        ctx.analysis.n_lags  # noqa: B018  (reading it is what raises)
    with pytest.raises(RuntimeError, match="overlap_a without declaring it"):
        ctx.analysis.value("overlap_a", 3)
    ctx.stage = STAGES["overlap"]
    assert ctx.analysis.value("overlap_a", 3) == 0.25
