"""Command line: parse, call the library, print. Errors become a message and an exit code."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import threading
import warnings
from pathlib import Path

import typer

from lmpshear import __version__, mpi
from lmpshear.errors import Interrupted, LmpshearError, UserError, signals_received


class _Command(typer.core.TyperCommand):
    """Help with plain placeholders: ``RUNDIR``, not typer's ``{RUNDIR}`` in the usage line and
    ``RUNDIR <path>`` among the arguments."""

    @staticmethod
    def _name(param) -> str:
        return param.metavar or param.name.upper()

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument):
                name = self._name(param)
                dots = "..." if param.nargs != 1 and not name.endswith("...") else ""
                pieces.append((name if param.required else f"[{name}]") + dots)
        return pieces

    def format_options(self, ctx, formatter) -> None:
        records: dict[str, list] = {"argument": [], "option": []}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and param.param_type_name in records:
                named = param.param_type_name == "argument"
                records[param.param_type_name].append((self._name(param), record[1]) if named else record)
        for title, kind in (("Arguments", "argument"), ("Options", "option")):
            if records[kind]:
                with formatter.section(title):
                    formatter.write_dl(records[kind])


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Computational rheology of supercooled liquids: prepare, run and analyze shear runs.",
)


def _echo(text: str) -> None:
    typer.echo(text)


def _drawn(paths: list) -> str:
    """The figures drawn, as their folder once and their names (lines of at most 100 columns)."""
    if not paths:
        return "figures: none drawn"
    folders = {str(Path(p).parent) for p in paths}
    where = f" in {folders.pop()}" if len(folders) == 1 else ""
    names = ", ".join(Path(p).name if where else str(p) for p in paths)
    return textwrap.fill(f"figures{where}: {names}", 100, subsequent_indent="    ", break_long_words=False)


@app.command(cls=_Command)
def prepare(
    config: str = typer.Argument(
        ..., help="A run spec (TOML file) or the name of a preset (see `lmpshear presets`).", metavar="SPEC"
    ),
    out: str = typer.Option(..., "--out", "-o", help="Run directory to create.", metavar="TEXT"),
    rate: float | None = typer.Option(
        None, "--rate", help="Shear rate to prepare (one of the spec's rates).", metavar="FLOAT"
    ),
    force: bool = typer.Option(
        False,
        "--force",
        help="Replace the spec of a prepared run that has not started "
        "(never a run with data, a running one or a directory with other files).",
    ),
):
    """Validate a spec and write RUNDIR/{config.toml, in.lammps, manifest.json}."""
    from lmpshear import api

    prepared = api.prepare(config, out, rate, force=force, command=sys.argv)
    spec, need = prepared.spec, prepared.estimate
    _echo(
        f"prepared {prepared.path}: {spec.system.name}, N = {spec.system.n_particles}, rate {spec.rate.rate:g}, "
        f"{need['frames']} frames every {spec.rate.sample_interval:g} to strain {spec.total_strain:.3g}"
    )
    minutes = need["hours"] * 60
    _echo(
        f"estimate: {need['particle_steps']:.3g} particle-steps, about "
        + (f"{minutes:.2g} min" if minutes < 120 else f"{need['hours']:.3g} h")
        + f" at {need['speed']:.2g} particle-steps/s (measured on 2 cores); "
        + f"a store of {need['store_bytes'] / 1e9:.2g} GB"
    )


@app.command(cls=_Command)
def run(
    rundir: Path = typer.Argument(..., help="A prepared run directory.", metavar="RUNDIR"),
    verify: bool = typer.Option(
        False,
        "--verify",
        help="Only check the store, the thermo table and the "
        "checkpoints against the digests the run recorded (exit 0: intact; 3: "
        "damaged, saying what and how to repair it).",
    ),
    repair: bool = typer.Option(
        False,
        "--repair",
        help="A finished run found damaged: roll back to the newest "
        "intact checkpoint and run again from there (a damaged index only: write "
        "it back).",
    ),
):
    """Run (or resume) a prepared directory: LAMMPS in-process (works under `mpiexec -n K`) or, for
    engine "bd", lmpshear's Brownian dynamics (threads: NUMBA_NUM_THREADS). A resume continues only over
    verified frames: from the newest checkpoint whose files, frames and thermo rows are intact."""
    from lmpshear import api

    if verify:
        verdict = api.verify(rundir)
        if verdict is None:
            _echo(f"{rundir}: no digests recorded yet (no checkpoint): nothing to verify")
        else:
            _echo(f"{rundir}: frames 0 to {verdict.total - 1} and the thermo table intact (against {verdict.what})")
        return
    if repair:
        found = api.repair(rundir)
        frames = api.Run(rundir).status.get("frames")
        _echo(
            f"{rundir}: intact ({frames} frames); nothing to repair"
            if found is None or found.ok
            else f"{rundir}: repaired ({'; '.join(found.problems)}); {frames} frames, verified"
        )
        return
    existing = api.Run(rundir)
    if existing.complete:
        _echo(
            f"{rundir}: already complete ({existing.status.get('frames')} frames); nothing to do "
            f"(`lmpshear run --verify {rundir}` checks it)"
        )
        return
    summary = api.run(rundir).status
    if mpi.world_rank() == 0:
        _echo(
            f"{rundir}: complete, {summary['frames']} frames; {summary['matom_steps_per_second']:.3g} "
            f"Matom-step/s over {summary['wall_seconds']:.1f} s"
        )


def _stage_list() -> str:
    from lmpshear import api

    return "\n".join(f"  {name:<13}{what}" for name, what in api.stages().items())


def _analysis_keys() -> str:
    from lmpshear import api

    return api.analysis_keys()


@app.command(
    cls=_Command,
    help="Compute the analysis stages and write their products (RUNDIR/STAGE.json) into RUNDIR.\n\n"
    "\b\nStages, in order:\n" + _stage_list(),
    epilog="\b\n--set takes any key of the [analysis] table (defaults shown):\n" + _analysis_keys(),
)
def analyze(
    rundir: Path = typer.Argument(..., help="A finished run directory.", metavar="RUNDIR"),
    only: list[str] | None = typer.Option(
        None, "--only", metavar="STAGE", help="Run only this stage (repeatable; the stages are listed above)."
    ),
    force: bool = typer.Option(False, "--force", help="Recompute even if the product is up to date."),
    blocks: int | None = typer.Option(
        None,
        "--blocks",
        min=4,
        help="Blocks for the viscosity's error bar (default: [analysis] blocks, listed below).",
        metavar="INTEGER",
    ),
    overlap_a: float | None = typer.Option(
        None,
        "--overlap-a",
        min=0.0,
        help="Overlap radius a of eq. 14 (default: [analysis] overlap_a, listed below).",
        metavar="FLOAT",
    ),
    cage_size: float | None = typer.Option(
        None,
        "--cage-size",
        min=0.0,
        help="Cage size l_c^2 for the cage jumps (default: [analysis] cage_size, else from the MSD).",
        metavar="FLOAT",
    ),
    settings: list[str] | None = typer.Option(
        None,
        "--set",
        metavar="KEY=VALUE",
        help="Any [analysis] key "
        "for this analysis, e.g. --set cluster_window=5 (repeatable; "
        "the keys are listed below).",
    ),
    figures: bool = typer.Option(
        True, "--figures/--no-figures", help="Draw the run's figures after (as `lmpshear figures` does)."
    ),
):
    from lmpshear import api

    overrides = {
        k: v for k, v in (("overlap_a", overlap_a), ("cage_size", cage_size), ("blocks", blocks)) if v is not None
    }
    overrides |= _settings(settings or [])
    results = api.analyze(rundir, only=only, set=overrides, force=force)
    if figures and {"msd", "overlap", "clusters"} & set(results):
        _echo(_drawn(api.figures(rundir)))


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


@app.command(cls=_Command)
def figures(
    rundir: Path = typer.Argument(..., help="An analysed run directory (with clusters.json).", metavar="RUNDIR"),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Directory for the PNG files (default: RUNDIR).", metavar="PATH"
    ),
    cluster: int | None = typer.Option(
        None,
        "--cluster",
        help="Row of the cluster table to draw (default: a typical one, the yielded cluster of the median volume).",
        metavar="INTEGER",
    ),
):
    """One run's figures: dynamics.png (MSD, chi4) and the paper's panels, fig1b (jumps, a cluster, contrast
    spheres), fig1c (traceback), fig2 (sigma_c, gamma_c, n_cj, P_ext, R; jump accumulation), fig2ij
    (contrast), fig3a (P_c), fig8, fig9 and fig4a where the run has them."""
    from lmpshear import api

    _echo(_drawn(api.figures(rundir, out, cluster)))


@app.command(cls=_Command)
def ice(
    rundir: Path = typer.Argument(..., help="An analysed MD run directory with snapshots.", metavar="RUNDIR"),
    cluster: int | None = typer.Option(
        None,
        "--cluster",
        help="Row of the cluster table (default: a typical one, the yielded cluster of the median volume).",
        metavar="INTEGER",
    ),
    replicas: int = typer.Option(
        50, "--replicas", min=1, help="Replicas with fresh velocities (the paper: 50).", metavar="INTEGER"
    ),
    seed: int = typer.Option(
        1, "--seed", min=0, help="Seed of the velocities (replica m uses (seed, m)).", metavar="INTEGER"
    ),
):
    """Isoconfigurational ensemble of a convective cluster: branch replicas from the snapshot before t0
    with fresh Maxwell-Boltzmann velocities and average sigma_c(t), gamma_c(t) over them."""
    from lmpshear import api

    api.ice(rundir, cluster, replicas, seed)


@app.command("import", cls=_Command)
def import_(
    trajectory: Path = typer.Argument(
        ..., help="A trajectory ovito reads: LAMMPS dump (.gz too), data file, GSD, extxyz.", metavar="TRAJECTORY"
    ),
    out: str = typer.Option(..., "--out", "-o", help="Run directory to create.", metavar="TEXT"),
    rate: float | None = typer.Option(
        None,
        "--rate",
        min=0.0,
        help="Shear rate of the run (default: the one "
        "the box tilt implies; a rate that differs by more than 1% is refused).",
        metavar="FLOAT",
    ),
    force_rate: bool = typer.Option(
        False,
        "--force-rate",
        help="Use --rate even where the box tilt disagrees (a box that does not carry the shear).",
    ),
    temperature: float = typer.Option(..., "--temperature", help="k_BT of the run (for chi4).", metavar="FLOAT"),
    timestep: float | None = typer.Option(
        None, "--timestep", help="MD time step: frame time = file's step x it.", metavar="FLOAT"
    ),
    sample_interval: float | None = typer.Option(
        None, "--sample-interval", help="Time between frames (files without a step counter).", metavar="FLOAT"
    ),
    steady_strain: float = typer.Option(
        0.0, "--steady-strain", min=0.0, help="Strain where the steady window starts.", metavar="FLOAT"
    ),
    dimension: int | None = typer.Option(
        None, "--dimension", min=2, max=3, help="2 or 3 (default: detected).", metavar="INTEGER"
    ),
):
    """Bring a trajectory made elsewhere into a run directory that `lmpshear analyze` reads.

    Positions may be wrapped, come with image flags, or be unwrapped: the unwrapped path and the
    non-affine displacement are rebuilt with the same Lees-Edwards code as lmpshear's own runs.
    """
    from lmpshear import api

    api.import_trajectory(
        trajectory,
        out,
        temperature=temperature,
        rate=rate,
        timestep=timestep,
        sample_interval=sample_interval,
        dimension=dimension,
        steady_strain=steady_strain,
        force_rate=force_rate,
    )


@app.command(cls=_Command)
def report(
    rundirs: list[Path] = typer.Argument(
        ..., help="Run directories (one per shear rate), or folders holding them.", metavar="RUNDIR..."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Directory for the report (default: report, or a campaign's ROOT/report).",
        metavar="PATH",
    ),
    min_rate: float | None = typer.Option(
        None, "--min-rate", help="Fit only rates >= this (default: automatic).", metavar="FLOAT"
    ),
    max_rate: float | None = typer.Option(
        None, "--max-rate", help="Fit only rates <= this (default: automatic).", metavar="FLOAT"
    ),
    partial: bool = typer.Option(
        False,
        "--partial",
        help="Campaigns: report the analysed runs even when others "
        "are not (they are named); without it that is an error.",
    ),
):
    """Flow curve across runs: eta(rate) with error bars and the power-law fit eta ~ rate^-lambda;
    with convective clusters, eta_c vs eta, xi_c and t_y vs rate and Table I. Given a campaign file,
    one report per system of the campaign (default -o: the campaign's ROOT/report)."""
    from lmpshear import api

    api.report(rundirs, out, min_rate=min_rate, max_rate=max_rate, partial=partial)


@app.command(cls=_Command)
def submit(
    campaign: Path = typer.Argument(
        ..., help="A campaign file (TOML: name, [resources], [[runs]]).", metavar="CAMPAIGN"
    ),
    executor: str = typer.Option(
        "slurm", "--executor", help="slurm: job arrays with sbatch; local: run here.", metavar="TEXT"
    ),
    jobs: int = typer.Option(1, "--jobs", "-j", min=1, help="Local executor: steps at once.", metavar="INTEGER"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the batch scripts and sbatch commands only."),
):
    """Prepare a campaign's missing runs and submit what is left (runs, their analyses, the report).
    Submitting again skips what is complete or queued, so a campaign can be topped up or repaired."""
    from lmpshear import api

    if executor not in ("slurm", "local"):
        raise UserError(f"--executor {executor!r}: slurm or local")
    api.Campaign(campaign).submit(executor, jobs, dry_run=dry_run)


@app.command(cls=_Command)
def status(
    target: Path = typer.Argument(..., metavar="CAMPAIGN|RUNDIR", help="A campaign file, or a run directory."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON."),
):
    """Every run of a campaign: prepared / queued / running (with progress) / complete / failed (why) /
    analysed, and the scheduler's job id working on it; or one run directory's state."""
    from lmpshear import api

    if target.is_dir():
        run = api.Run(target)
        status = run.status
        progress = run.progress
        _echo(
            json.dumps(status, indent=2)
            if as_json
            else f"{run.path}: {run.state}"
            + (f", {100 * progress:.0f}% of the frames" if progress is not None else "")
            + (f"; {status['message']}" if status.get("message") else "")
        )
        return
    c = api.Campaign(target)
    _echo(
        json.dumps({"campaign": c.campaign.name, "root": str(c.campaign.root), "runs": c.status()}, indent=2)
        if as_json
        else c.table()
    )


@app.command(cls=_Command)
def demo(
    out: Path = typer.Option(
        Path("demo-output"), "--out", "-o", help="Directory for the demo run and figures.", metavar="PATH"
    ),
    preset: str = typer.Option("ka3d-demo", "--preset", help="Preset to run.", metavar="TEXT"),
):
    """Shear a small Kob–Andersen liquid end to end: prepare, run, analyze, plot."""
    from lmpshear import api

    made = api.demo(out, preset, command=sys.argv)
    if made["summary"] is not None:  # a line per result, within 100 columns; the details are in summary.txt
        eta = made["run"].viscosity
        _echo(f"demo: eta = {eta['eta']:.4g} +/- {eta['eta_error']:.2g} (eq. 1)")
        for name, line in made["lines"].items():
            if name != "viscosity":
                _echo(f"demo: {name}: {line}"[:100])
        _echo(
            f"demo: wrote {made['summary'].name} and {len(made['figures'])} figures into {out}/ (fig1b.png: a "
            "typical convective cluster)"
        )
        _echo("demo: put lmpshear on your PATH with: source .venv/bin/activate")


@app.command(cls=_Command)
def presets():
    """List the shipped presets."""
    from lmpshear import api

    for name, spec in api.presets().items():
        s = spec.system
        _echo(
            f"{name:22s} {s.dimension}D N={s.n_particles:<6d} T={s.temperature:g} rates: "
            + ", ".join(f"{r:g}" for r in spec.rate_values())
        )


@app.callback(invoke_without_command=True)
def _main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")):
    if version:
        _echo(f"lmpshear {__version__}")
        raise typer.Exit()


INTERRUPTED = (
    "interrupted: what was finished is kept (a run resumes from its last checkpoint with "
    "`lmpshear run RUNDIR`; `lmpshear analyze` redoes only the stages whose products are missing)"
)


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
    signals_received.append("SIGTERM")
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
        if signals_received:  # an interrupt that struck an I/O call: it is what happened
            return _interrupted()
        typer.echo(f"error: {exc}", err=True)
        return 2
    except ImportError:
        if signals_received:  # the interrupt struck a C extension's import, which reports it as this
            return _interrupted()
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
