"""Command line: parse, call the library, print. Errors become a message and an exit code."""

from __future__ import annotations

import json
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Optional

import typer

from lmpshear import __version__, mpi
from lmpshear.errors import Interrupted, LmpshearError, UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, rich_markup_mode=None,
                  help="Computational rheology of supercooled liquids: prepare, run and analyze shear runs.")


def _echo(text: str) -> None:
    typer.echo(text)


@app.command()
def prepare(
    config: str = typer.Argument(..., help="A run spec (TOML file) or the name of a preset (see `lmpshear presets`).", metavar="SPEC"),
    out: str = typer.Option(..., "--out", "-o", help="Run directory to create.", metavar="TEXT"),
    rate: Optional[float] = typer.Option(None, "--rate", help="Shear rate to prepare (one of the spec's rates).", metavar="FLOAT"),
    force: bool = typer.Option(False, "--force", help="Replace the spec of a prepared run that has not started "
                               "(never a run with data, a running one or a directory with other files)."),
):
    """Validate a spec and write RUNDIR/{config.toml, in.lammps, manifest.json}."""
    from lmpshear import api

    prepared = api.prepare(config, out, rate, force=force, command=sys.argv)
    spec = prepared.spec
    _echo(f"prepared {prepared.path}: {spec.system.name}, N = {spec.system.n_particles}, rate {spec.rate.rate:g}, "
          f"{spec.n_samples + 1} frames every {spec.rate.sample_interval:g} to strain {spec.total_strain:.3g}")


@app.command()
def run(rundir: Path = typer.Argument(..., help="A prepared run directory.", metavar="RUNDIR"),
        verify: bool = typer.Option(False, "--verify", help="Only check the store, the thermo table and the "
                                    "checkpoints against the digests the run recorded (exit 0: intact; 3: "
                                    "damaged, saying what and how to repair it)."),
        repair: bool = typer.Option(False, "--repair", help="A finished run found damaged: roll back to the newest "
                                    "intact checkpoint and run again from there (a damaged index only: write "
                                    "it back).")):
    """Run (or resume) a prepared directory: LAMMPS in-process (works under `mpiexec -n K`) or, for
    engine "bd", lmpshear's Brownian dynamics (threads: NUMBA_NUM_THREADS). A resume continues only over
    verified frames: from the newest checkpoint whose files, frames and thermo rows are intact."""
    from lmpshear import api, mpi
    from lmpshear.rundir import RunDir

    rd = RunDir(rundir)
    if verify:
        verdict = api.verify(rd.path)
        if verdict is None:
            _echo(f"{rd.path}: no digests recorded yet (no checkpoint): nothing to verify")
        else:
            _echo(f"{rd.path}: frames 0 to {verdict.total - 1} and the thermo table intact (against {verdict.what})")
        return
    if repair:
        found = api.repair(rd.path)
        if found is None or found.ok:
            _echo(f"{rd.path}: intact ({rd.status().get('frames')} frames); nothing to repair")
        else:
            _echo(f"{rd.path}: repaired ({'; '.join(found.problems)}); {rd.status().get('frames')} frames, "
                  "verified")
        return
    rd.require_prepared()
    if rd.complete():
        _echo(f"{rd.path}: already complete ({rd.status().get('frames')} frames); nothing to do "
              f"(`lmpshear run --verify {rd.path}` checks it)")
        return
    summary = _run(rd)
    if mpi.world_rank() == 0:
        _echo(f"{rd.path}: complete, {summary['frames']} frames; {summary['matom_steps_per_second']:.3g} "
              f"Matom-step/s over {summary['wall_seconds']:.1f} s")


def _run(rd) -> dict:
    """Run (or resume) it through the API; the finished run's status (frames, throughput)."""
    from lmpshear import api

    return api.run(rd.path).status


def _stage_list() -> str:
    from lmpshear.stages import STAGES

    return "\n".join(f"  {s.name:<13}{s.what}" for s in STAGES.values())


def _analysis_keys() -> str:
    from lmpshear.config import analysis_block

    return analysis_block()


@app.command(help="Compute the analysis stages and write their products (RUNDIR/STAGE.json) into RUNDIR.\n\n"
                  "\b\nStages, in order:\n" + _stage_list(),
             epilog="\b\n--set takes any key of the [analysis] table (defaults shown):\n" + _analysis_keys())
def analyze(
    rundir: Path = typer.Argument(..., help="A finished run directory.", metavar="RUNDIR"),
    only: Optional[list[str]] = typer.Option(None, "--only", metavar="STAGE", help="Run only this stage "
                                             "(repeatable; the stages are listed above)."),
    force: bool = typer.Option(False, "--force", help="Recompute even if the product is up to date."),
    blocks: Optional[int] = typer.Option(None, "--blocks", min=4, help="Blocks for the viscosity's error bar "
                                         "(default: [analysis] blocks, else 10).", metavar="INTEGER"),
    overlap_a: Optional[float] = typer.Option(None, "--overlap-a", min=0.0, help="Overlap radius a of eq. 14 "
                                              "(default: [analysis] overlap_a, else 0.25 in 3D, 0.3 in 2D).", metavar="FLOAT"),
    cage_size: Optional[float] = typer.Option(None, "--cage-size", min=0.0, help="Cage size l_c^2 for the cage "
                                              "jumps (default: [analysis] cage_size, else from the MSD).", metavar="FLOAT"),
    settings: Optional[list[str]] = typer.Option(None, "--set", metavar="KEY=VALUE", help="Any [analysis] key "
                                                 "for this analysis, e.g. --set cluster_window=5 (repeatable; "
                                                 "the keys are listed below)."),
    figures: bool = typer.Option(True, "--figures/--no-figures", help="Write dynamics.png (MSD, chi4)."),
):
    from lmpshear import api

    overrides = {k: v for k, v in (("overlap_a", overlap_a), ("cage_size", cage_size), ("blocks", blocks))
                 if v is not None}
    overrides |= _settings(settings or [])
    results = api.analyze(rundir, only=only, set=overrides, force=force)
    if figures and ("msd" in results or "overlap" in results):
        from lmpshear.plots import dynamics

        _echo(f"figure: {dynamics(rundir, Path(rundir) / 'dynamics.png')}")
    if figures and "clusters" in results and results["clusters"]["clusters"]:
        from lmpshear.figures import run_figures

        _echo(f"figures: {', '.join(str(p) for p in run_figures(rundir))}")


def _settings(items: list[str]) -> dict:
    """KEY=VALUE pairs, each VALUE read as a TOML value (a bare word is a string)."""
    import tomllib

    out = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--set {item!r}: expected KEY=VALUE, e.g. --set cluster_window=5")
        try:
            out[key.strip()] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = text.strip()
    return out


@app.command()
def figures(
    rundir: Path = typer.Argument(..., help="An analysed run directory (with clusters.json).", metavar="RUNDIR"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Directory for the PNG files (default: RUNDIR).", metavar="PATH"),
    cluster: Optional[int] = typer.Option(None, "--cluster", help="Row of the cluster table to draw (default: "
                                          "the yielded cluster with the most cage jumps).", metavar="INTEGER"),
):
    """The paper's panels for one run: fig1b (jumps, a cluster, contrast spheres), fig1c (traceback),
    fig2 (sigma_c, gamma_c, n_cj, P_ext, R; jump accumulation), fig2ij (contrast), fig3a (P_c)."""
    from lmpshear.figures import run_figures

    _echo(f"figures: {', '.join(str(p) for p in run_figures(rundir, out, cluster))}")


@app.command()
def ice(
    rundir: Path = typer.Argument(..., help="An analysed MD run directory with snapshots.", metavar="RUNDIR"),
    cluster: Optional[int] = typer.Option(None, "--cluster", help="Row of the cluster table (default: the yielded "
                                          "cluster with the most cage jumps).", metavar="INTEGER"),
    replicas: int = typer.Option(50, "--replicas", min=1, help="Replicas with fresh velocities (the paper: 50).", metavar="INTEGER"),
    seed: int = typer.Option(1, "--seed", min=0, help="Seed of the velocities (replica m uses (seed, m)).", metavar="INTEGER"),
):
    """Isoconfigurational ensemble of a convective cluster: branch replicas from the snapshot before t0
    with fresh Maxwell-Boltzmann velocities and average sigma_c(t), gamma_c(t) over them."""
    from lmpshear.ice import ice as _ice

    _ice(rundir, cluster, replicas, seed, echo=_echo)


@app.command("import")
def import_(
    trajectory: Path = typer.Argument(..., help="A trajectory ovito reads: LAMMPS dump (.gz too), data file, GSD, extxyz.", metavar="TRAJECTORY"),
    out: str = typer.Option(..., "--out", "-o", help="Run directory to create.", metavar="TEXT"),
    rate: Optional[float] = typer.Option(None, "--rate", min=0.0, help="Shear rate of the run (default: the one "
                                         "the box tilt implies; a rate that differs by more than 1% is refused).", metavar="FLOAT"),
    force_rate: bool = typer.Option(False, "--force-rate", help="Use --rate even where the box tilt disagrees "
                                    "(a box that does not carry the shear)."),
    temperature: float = typer.Option(..., "--temperature", help="k_BT of the run (for chi4).", metavar="FLOAT"),
    timestep: Optional[float] = typer.Option(None, "--timestep", help="MD time step: frame time = file's step x it.", metavar="FLOAT"),
    sample_interval: Optional[float] = typer.Option(None, "--sample-interval",
                                                    help="Time between frames (files without a step counter).", metavar="FLOAT"),
    steady_strain: float = typer.Option(0.0, "--steady-strain", min=0.0, help="Strain where the steady window starts.", metavar="FLOAT"),
    dimension: Optional[int] = typer.Option(None, "--dimension", min=2, max=3, help="2 or 3 (default: detected).", metavar="INTEGER"),
):
    """Bring a trajectory made elsewhere into a run directory that `lmpshear analyze` reads.

    Positions may be wrapped, come with image flags, or be unwrapped: the unwrapped path and the
    non-affine displacement are rebuilt with the same Lees-Edwards code as lmpshear's own runs.
    """
    from lmpshear.readers import import_run

    import_run(trajectory, out, rate, temperature, timestep=timestep, sample_interval=sample_interval,
               dimension=dimension, steady_strain=steady_strain, force_rate=force_rate, echo=_echo)


@app.command()
def report(
    rundirs: list[Path] = typer.Argument(..., help="Run directories (one per shear rate), or folders holding them.", metavar="RUNDIR..."),
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Directory for the flow curve files.", metavar="PATH"),
    min_rate: Optional[float] = typer.Option(None, "--min-rate", help="Fit only rates >= this (default: automatic).", metavar="FLOAT"),
    max_rate: Optional[float] = typer.Option(None, "--max-rate", help="Fit only rates <= this (default: automatic).", metavar="FLOAT"),
    partial: bool = typer.Option(False, "--partial", help="Campaigns: report the analysed runs even when others "
                                 "are not (they are named); without it that is an error."),
):
    """Flow curve across runs: eta(rate) with error bars and the power-law fit eta ~ rate^-lambda;
    with convective clusters, eta_c vs eta, xi_c and t_y vs rate and Table I. Given a campaign file,
    one report per system of the campaign (default -o: the campaign's ROOT/report)."""
    from lmpshear.campaign import is_campaign_file
    from lmpshear.report import report as _report
    from lmpshear.report import report_campaign

    if len(rundirs) == 1 and is_campaign_file(rundirs[0]):
        given = out if out != Path("report") else None
        report_campaign(rundirs[0], given, min_rate=min_rate, max_rate=max_rate, echo=_echo, partial=partial)
        return
    _report(rundirs, out, min_rate=min_rate, max_rate=max_rate, echo=_echo)


@app.command()
def submit(
    campaign: Path = typer.Argument(..., help="A campaign file (TOML: name, [resources], [[runs]]).", metavar="CAMPAIGN"),
    executor: str = typer.Option("slurm", "--executor", help="slurm: job arrays with sbatch; local: run here.", metavar="TEXT"),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Local executor: steps at once.", metavar="INTEGER"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the batch scripts and sbatch commands only."),
):
    """Prepare a campaign's missing runs and submit what is left (runs, their analyses, the report).
    Submitting again skips what is complete or queued, so a campaign can be topped up or repaired."""
    from lmpshear import campaign as campaigns

    if executor not in ("slurm", "local"):
        raise UserError(f"--executor {executor!r}: slurm or local")
    c = campaigns.load(campaign)
    campaigns.check_directories(c)  # --dry-run too: a directory holding another run is refused
    warn = lambda text: typer.echo(text, err=True)  # noqa: E731
    if executor == "local":
        if dry_run:
            raise UserError("--dry-run prints batch scripts: it goes with --executor slurm")
        from lmpshear.local_executor import run_local

        run_local(c, jobs=jobs, echo=_echo, warn=warn)
        return
    from lmpshear.slurm import submit as _submit

    _submit(c, dry_run=dry_run, echo=_echo, warn=warn)


@app.command()
def status(
    target: Path = typer.Argument(..., metavar="CAMPAIGN|RUNDIR", help="A campaign file, or a run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
):
    """Every run of a campaign: prepared / queued / running (with progress) / complete / failed (why) /
    analysed, and the scheduler's job id working on it; or one run directory's state."""
    from lmpshear import api
    from lmpshear import campaign as campaigns

    if target.is_dir():
        run = api.Run(target)
        status = run.status
        progress = run.progress
        _echo(json.dumps(status, indent=2) if as_json else
              f"{run.path}: {run.state}" + (f", {100 * progress:.0f}% of the frames" if progress is not None else "")
              + (f"; {status['message']}" if status.get("message") else ""))
        return
    c = api.Campaign(target)
    rows = c.status()
    _echo(json.dumps({"campaign": c.campaign.name, "root": str(c.campaign.root), "runs": rows}, indent=2)
          if as_json else campaigns.format_table(rows))


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-output"), "--out", "-o", help="Directory for the demo run and figures.", metavar="PATH"),
    preset: str = typer.Option("ka3d-demo", "--preset", help="Preset to run.", metavar="TEXT"),
):
    """Shear a small Kob–Andersen liquid end to end: prepare, run, analyze, plot."""
    from lmpshear import api, mpi
    from lmpshear.figures import run_figures
    from lmpshear.plots import dynamics, run_overview
    from lmpshear.rundir import RunDir

    out.mkdir(parents=True, exist_ok=True)
    rd = RunDir(out / "run")
    if not rd.config.exists():
        api.prepare(preset, rd.path, command=sys.argv)
    spec = rd.spec()
    _echo(f"demo: {spec.system.name}, N = {spec.system.n_particles}, rate {spec.rate.rate:g}, "
          f"strain {spec.total_strain:g} in {rd.path}")
    _run(rd)
    if mpi.world_rank() != 0:
        return
    results = api.analyze(rd.path)
    eta = results["viscosity"].data
    png = run_overview(rd.path, out / "demo.png", eta)
    dyn = dynamics(rd.path, out / "dynamics.png")
    made = [png, dyn]
    if results.get("clusters", {}).get("clusters"):
        made += run_figures(rd.path, out)
    summary = out / "summary.txt"
    summary.write_text(f"{spec.system.name}: N = {spec.system.n_particles}, T = {spec.system.temperature:g}, "
                       f"rate = {spec.rate.rate:g}\n{eta['summary']}\n"
                       + "".join(f"{k}: {v}\n" for k, v in _demo_lines(results).items())
                       + f"run directory: {rd.path}\nfigures: {', '.join(str(p) for p in made)}\n")
    _echo(f"demo: {eta['summary']}\ndemo: wrote {summary} and {', '.join(str(p) for p in made)}")


def _demo_lines(results: dict) -> dict:
    lines = {}
    if "overlap" in results:
        lines["t_chi"] = f"{results['overlap']['t_chi']:.4g} (chi4 peak, a = {results['overlap']['a']:g})"
    if "msd" in results and results["msd"]["cage_size"]:
        lines["cage size l_c^2"] = f"{results['msd']['cage_size']:.4g}"
    if "cagejumps" in results:
        lines["cage jumps"] = str(results["cagejumps"]["jumps"])
    if "clusters" in results:
        c = results["clusters"]["summary"]
        lines["convective clusters"] = (f"{c['clusters']} ({c['yielded']} yielded), P_c = {c['P_c_mean']:.3g}, "
                                        f"eta_c = {c['eta_c']:.4g}, xi_c = {c['xi_c']:.3g}, t_y = {c['t_y']:.3g}")
    return lines


@app.command()
def presets():
    """List the shipped presets."""
    from lmpshear import config, shipped

    for name in shipped.preset_names():
        spec = config.load(name)
        s = spec.system
        _echo(f"{name:22s} {s.dimension}D N={s.n_particles:<6d} T={s.temperature:g} rates: "
              + ", ".join(f"{r:g}" for r in spec.rate_values()))


@app.callback(invoke_without_command=True)
def _main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")):
    if version:
        _echo(f"lmpshear {__version__}")
        raise typer.Exit()


INTERRUPTED = ("interrupted: what was finished is kept (a run resumes from its last checkpoint with "
               "`lmpshear run RUNDIR`; `lmpshear analyze` redoes only the stages whose products are missing)")


def _interrupted() -> int:
    """Say what is kept, and exit 130: also after an interrupt that struck inside an ``exec``/``eval`` of a
    string (namedtuple, numpy and scipy imports use them). CPython then marks the KeyboardInterrupt as
    unhandled even though we caught it, and at exit kills itself with SIGINT (bpo-1054041); evaluating
    a string of our own clears that mark."""
    typer.echo(INTERRUPTED, err=True)
    exec("")
    return 130


def _terminated(signum, frame):
    """SIGTERM outside a run: the same clean exit as Ctrl-C."""
    raise KeyboardInterrupt


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """The products' warnings as plain lines on stderr (others as Python shows them)."""
    from lmpshear.api import LmpshearWarning

    if issubclass(category, LmpshearWarning):
        typer.echo(str(message), err=True)
    else:
        typer.echo(warnings.formatwarning(message, category, filename, lineno, line).rstrip(), err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: bad input exits 2 with a message, a failed run 3, Ctrl-C 130.

    Usage errors are typer's own (exit 2); lmpshear's errors are caught here, so no traceback.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminated)  # a run replaces it with its own stop-at-a-checkpoint
    from lmpshear.api import LmpshearWarning

    warnings.simplefilter("always", LmpshearWarning)
    warnings.showwarning = _show_warning
    try:
        app(args=argv)
    except SystemExit as exc:
        if exc.code == 130:  # typer turns a KeyboardInterrupt (Ctrl-C, or SIGTERM: _terminated) into exit 130
            return _interrupted()
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        return _interrupted()
    except LmpshearError as exc:
        if not (isinstance(exc, Interrupted) and mpi.world_rank() != 0):  # under mpiexec, one says so
            typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:  # the file system or a damaged file
        typer.echo(f"error: {exc}", err=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
