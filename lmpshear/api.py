"""The Python API: what the command line does, for notebooks and scripts (the CLI is a thin layer over it).

    import lmpshear
    run = lmpshear.prepare("ka3d-tiny", "runs/tiny")      # a preset or a spec file; -> Run
    lmpshear.run(run.path)                                  # run or resume
    lmpshear.analyze(run.path, only=["viscosity"])         # -> {stage: Result}
    run.viscosity.eta, run.clusters.table, run.jumps       # products as objects and DataFrames

Errors raise the package's exceptions (`lmpshear.errors.UserError` for bad input,
`lmpshear.errors.RunError` for a failed run) with the CLI's messages. Library calls print
nothing but progress (a line per analysis stage on stdout, a run's progress on stderr), which
``progress=False`` silences; the products' warnings are Python warnings (`LmpshearWarning`).
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from lmpshear.errors import UserError
from lmpshear.rundir import RunDir


class LmpshearWarning(UserWarning):
    """A product's warning (a sieve with too few jumps, a short steady window, ...)."""


def _warn(text: str) -> None:
    """A product's warning, shown at the first caller outside the package (the user's line)."""
    level, frame = 2, sys._getframe(1)
    while frame.f_globals.get("__name__", "").startswith("lmpshear") and frame.f_back is not None:
        frame, level = frame.f_back, level + 1
    warnings.warn(text, LmpshearWarning, stacklevel=level)


def _quiet(text: str) -> None:
    pass


def _checked(**arguments) -> None:
    """The API's boundary: each argument named with what it must be, so that a wrong type is a UserError in
    the CLI's words, not a TypeError from deep inside. A value is (kind, value): "path" (str or
    os.PathLike), "number", "table" (dict), "names" (list of str), "count>=K" (an int of at least K); None
    passes where the argument is optional (an "optional ..." kind)."""
    import numbers
    import os

    for name, (kind, value) in arguments.items():
        optional, kind = kind.startswith("optional "), kind.removeprefix("optional ")
        if value is None and optional:
            continue
        if kind.startswith("count>="):
            least = int(kind.split(">=")[1])
            ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= least
            want = f"a whole number of at least {least}"
        else:
            ok, want = {
                "path": (isinstance(value, (str, os.PathLike)), "a path (str or Path)"),
                "number": (isinstance(value, numbers.Real) and not isinstance(value, bool), "a number"),
                "table": (isinstance(value, dict), "a dict of spec tables, e.g. {'protocol': {...}}"),
                "names": (
                    isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
                    "a list of names",
                ),
                "paths": (
                    isinstance(value, (list, tuple))
                    and len(value) > 0
                    and all(isinstance(v, (str, os.PathLike)) for v in value),
                    "one path or a list of paths",
                ),
            }[kind]
        if not ok:
            raise UserError(f"{name}: expected {want}, got {value!r}")


def prepare(
    spec_or_preset: str | Path,
    out: str | Path,
    rate: float | None = None,
    *,
    force: bool = False,
    overrides: dict | None = None,
    command: list[str] | None = None,
) -> Run:
    """Validate a spec (a TOML file or a preset's name) and write the run directory ``out`` for one of
    its rates (``rate``; needed when the spec has several). ``overrides``: spec tables merged over it,
    e.g. ``{"protocol": {"production_strain": 2.0}}``. ``force`` replaces the spec of a prepared run
    that has not started. ``command``: what the manifest records as the command (default: this call)."""
    from lmpshear.preparation import prepare as _prepare

    _checked(
        spec_or_preset=("path", spec_or_preset),
        out=("path", out),
        rate=("optional number", rate),
        overrides=("optional table", overrides),
    )
    command = command or [
        f"lmpshear.prepare({str(spec_or_preset)!r}, {str(out)!r}, rate={rate!r}, overrides={overrides!r})"
    ]
    return Run(_prepare(spec_or_preset, out, rate, command=command, force=force, warn=_warn, overrides=overrides).path)


def run(rundir: str | Path, *, progress: bool = True) -> Run:
    """Run (or resume, from the newest intact checkpoint) a prepared run directory with the engine its
    spec names; a complete run is left as it is. Progress lines go to stderr unless ``progress=False``."""
    from lmpshear.engines import run_directory
    from lmpshear.progress import NullReporter, reporter

    _checked(rundir=("path", rundir))
    rd = RunDir(rundir)
    rd.require_prepared()
    if not rd.complete():
        run_directory(rd, reporter() if progress else NullReporter())
    return Run(rd.path)


def verify(rundir: str | Path):
    """Check a run's store, thermo table and records against the digests it recorded (its completion
    record, else its latest checkpoint's); returns the `lmpshear.integrity.Verdict`, or None where
    nothing is recorded yet. Damage raises `lmpshear.errors.RunError` (exit 3) saying what is damaged
    and the command that repairs it."""
    from lmpshear import integrity

    _checked(rundir=("path", rundir))
    rd = RunDir(rundir)
    rd.require_run()
    return integrity.require_intact(rd)


def repair(rundir: str | Path, *, progress: bool = True):
    """Make a damaged finished run whole: a store whose only damage is its index gets the index back;
    otherwise the run rolls back to its newest intact checkpoint (nothing is cut when none is intact)
    and runs again from there. An intact run is left as it is. Returns the `Verdict` found before (None or
    ``ok``: nothing was repaired)."""
    from lmpshear import integrity

    _checked(rundir=("path", rundir))
    rd = RunDir(rundir)
    rd.require_run()
    verdict = integrity.verify(rd)
    if verdict is None or verdict.ok:
        return verdict
    if rd.source.is_file():
        raise UserError(
            f"{rd.path} is an imported trajectory and is damaged ({'; '.join(verdict.problems)}): "
            "import it again into a new directory"
        )
    if verdict.index_only:
        integrity.IndexCopy.load(rd.file("store_index")).restore(rd.store)
        return verdict
    if rd.complete():  # its record certifies a store that is no longer there
        for name in ("digests", "store_index"):
            rd.file(name).unlink(missing_ok=True)
        rd.set_status(
            state="stopped",
            frames=verdict.intact,
            message=f"damaged after the run ({'; '.join(verdict.problems)}): being repaired",
        )
    run(rd.path, progress=progress)
    return verdict


def analyze(
    rundir: str | Path,
    only: list[str] | None = None,
    set: dict | None = None,
    *,
    force: bool = False,
    progress: bool = True,
) -> dict[str, Result]:
    """Compute the analysis stages (all, or ``only``; see `lmpshear.stages.STAGES`) of a finished
    run and return what they made, by stage. ``set``: [analysis] keys for this analysis (validated
    as the spec's table is), e.g. ``{"cluster_window": 5}``. A product already up to date with the
    same parameters is read, not recomputed (``force`` recomputes)."""
    from lmpshear.stages import STAGES
    from lmpshear.stages.pipeline import analyze as _analyze

    _checked(rundir=("path", rundir), only=("optional names", only), set=("optional table", set))
    echo = (lambda text: print(text, flush=True)) if progress else _quiet
    made = _analyze(
        rundir, only=only, force=force, overrides=set, echo=echo, warn=_warn, progress=None if progress else _quiet
    )
    units = Run(rundir).units
    return {name: Result(name, STAGES[name].what, data, units) for name, data in made.items()}


def presets() -> dict:
    """The shipped presets by name, each loaded as its `lmpshear.spec.RunSpec`."""
    from lmpshear import config, shipped

    return {name: config.load(name) for name in shipped.preset_names()}


def stages() -> dict[str, str]:
    """The analysis stages in the order they run, each with what it computes."""
    from lmpshear.stages import STAGES

    return {name: stage.what for name, stage in STAGES.items()}


def analysis_keys() -> str:
    """The [analysis] table with every key at its default and its help (what ``set=`` takes)."""
    from lmpshear.config import analysis_block

    return analysis_block()


def figures(rundir: str | Path, out: str | Path | None = None, cluster: int | None = None) -> list[Path]:
    """One run's figures into ``out`` (default: the run directory): ``dynamics.png`` (MSD and χ4) where
    the run has those products, and the paper's per-run panels (`lmpshear.run_figures`) for cluster row
    ``cluster`` (default: the featured one) where it has convective clusters. Returns the files written;
    a run with neither is a UserError saying what to run."""
    from lmpshear import run_figures as drawn

    _checked(rundir=("path", rundir), out=("optional path", out), cluster=("optional count>=0", cluster))
    rd = RunDir(rundir)
    if not rd.path.is_dir():
        raise UserError(f"no run directory at {rd.path}")
    folder = Path(out) if out is not None else rd.path
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    if rd.product("msd").exists() or rd.product("overlap").exists():
        made.append(drawn.dynamics(rd.path, folder / "dynamics.png"))
    clusters = rd.result("clusters") if rd.product("clusters").exists() else None
    if clusters is not None and clusters["clusters"] or cluster is not None:
        made += drawn.run_figures(rd.path, folder, cluster)
    if not made:
        raise UserError(f"{rd.path} has no products to draw: run `lmpshear analyze {rd.path}` first")
    return made


def ice(
    rundir: str | Path, cluster: int | None = None, replicas: int = 50, seed: int = 1, *, progress: bool = True
) -> dict:
    """The isoconfigurational ensemble of convective cluster row ``cluster`` (default: the featured one)
    of an analysed MD run with snapshots: ``replicas`` runs from the snapshot before t0 with fresh
    velocities (replica m seeded by (``seed``, m)), their mean σ_c(t), γ_c(t) and its yield."""
    from lmpshear.ice import ice as _ice

    _checked(
        rundir=("path", rundir),
        cluster=("optional count>=0", cluster),
        replicas=("count>=1", replicas),
        seed=("count>=0", seed),
    )
    return _ice(rundir, cluster, replicas, seed, echo=print if progress else _quiet)


def import_trajectory(
    trajectory: str | Path,
    out: str | Path,
    *,
    temperature: float,
    rate: float | None = None,
    timestep: float | None = None,
    sample_interval: float | None = None,
    steady_strain: float = 0.0,
    dimension: int | None = None,
    force_rate: bool = False,
    progress: bool = True,
) -> Run:
    """Bring a trajectory made elsewhere (anything ovito reads: a LAMMPS dump, a data file, GSD, extxyz)
    into run directory ``out``, which `analyze` then reads as a native run. ``rate``: its size (default:
    what the box tilt implies; its sign always comes from the tilt); ``timestep`` or ``sample_interval``
    gives the frames' times; ``steady_strain`` where the steady window starts."""
    from lmpshear.readers import import_run

    _checked(
        trajectory=("path", trajectory),
        out=("path", out),
        temperature=("number", temperature),
        rate=("optional number", rate),
        timestep=("optional number", timestep),
        sample_interval=("optional number", sample_interval),
        steady_strain=("number", steady_strain),
        dimension=("optional count>=2", dimension),
    )
    rd = import_run(
        trajectory,
        out,
        rate,
        temperature,
        timestep=timestep,
        sample_interval=sample_interval,
        dimension=dimension,
        steady_strain=steady_strain,
        force_rate=force_rate,
        echo=print if progress else _quiet,
    )
    return Run(rd.path)


def report(
    runs: Sequence[str | Path] | str | Path,
    out: str | Path | None = None,
    *,
    min_rate: float | None = None,
    max_rate: float | None = None,
    partial: bool = False,
    progress: bool = True,
):
    """The report across rates: of run directories (or folders of them; written to ``out``, default
    ``report``), returning what `lmpshear.report.report` made; or of a campaign file (one report per
    system, default ``ROOT/report``), returning its `Report`. ``min_rate``/``max_rate`` bound the fit."""
    from lmpshear.campaign import is_campaign_file
    from lmpshear.report import report as _report

    paths = [runs] if isinstance(runs, (str, Path)) else list(runs)
    _checked(
        runs=("paths", paths),
        out=("optional path", out),
        min_rate=("optional number", min_rate),
        max_rate=("optional number", max_rate),
    )
    echo = print if progress else _quiet
    if len(paths) == 1 and is_campaign_file(Path(paths[0])):
        from lmpshear.report import report_campaign

        folder = Path(out) if out is not None else Campaign(paths[0]).campaign.report_dir
        report_campaign(Path(paths[0]), folder, min_rate=min_rate, max_rate=max_rate, echo=echo, partial=partial)
        return Report(folder)
    return _report([Path(p) for p in paths], Path(out or "report"), min_rate=min_rate, max_rate=max_rate, echo=echo)


def demo(
    out: str | Path = "demo-output",
    preset: str = "ka3d-demo",
    *,
    command: list[str] | None = None,
    progress: bool = True,
) -> dict:
    """The whole job on a small default: prepare ``preset`` in ``out``/run (kept: a second call resumes
    or reuses it), run it, analyse it and draw its figures. Returns {"run": Run, "summary": path of
    summary.txt, "lines": its headline lines by name, "figures": the files drawn}."""
    from lmpshear import mpi
    from lmpshear import run_figures as drawn

    _checked(out=("path", out), preset=("path", preset))
    echo = print if progress else _quiet
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rd = RunDir(out / "run")
    if not rd.config.exists():
        prepare(preset, rd.path, command=command)
    spec = rd.spec()
    echo(
        f"demo: {spec.system.name}, N = {spec.system.n_particles}, rate {spec.rate.rate:g}, "
        f"strain {spec.total_strain:g} in {rd.path}"
    )
    run(rd.path, progress=progress)
    if mpi.world_rank() != 0:
        return {"run": Run(rd.path), "summary": None, "lines": {}, "figures": []}
    results = analyze(rd.path, progress=progress)
    eta = results["viscosity"].data
    made = [drawn.run_overview(rd.path, out / "demo.png", eta)] + figures(rd.path, out)
    lines = _demo_lines(results)
    summary = out / "summary.txt"
    summary.write_text(
        f"{spec.system.name}: N = {spec.system.n_particles}, T = {spec.system.temperature:g}, "
        f"rate = {spec.rate.rate:g}\n{eta['summary']}\n"
        + "".join(f"{k}: {v}\n" for k, v in lines.items())
        + f"run directory: {rd.path}\nfigures: {', '.join(str(p) for p in made)}\n"
    )
    return {"run": Run(rd.path), "summary": summary, "lines": {"viscosity": eta["summary"], **lines}, "figures": made}


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
        lines["convective clusters"] = (
            f"{c['clusters']} ({c['yielded']} yielded), P_c = {c['P_c_mean']:.3g}, "
            f"eta_c = {c['eta_c']:.4g}, xi_c = {c['xi_c']:.3g}, t_y = {c['t_y']:.3g}"
        )
    return lines


#: what each dimension of a column or value is measured in, by engine (reduced units throughout)
UNITS = {
    "lammps": {"length": "σ", "time": "τ = σ√(m/ε)", "stress": "ε/σ^D", "viscosity": "ε τ/σ^D", "volume": "σ^D"},
    "bd": {"length": "d0", "time": "τ0 = d0²/D0", "stress": "k_BT/d0³", "viscosity": "k_BT τ0/d0³", "volume": "d0³"},
    "imported": {  # the source's own units, whatever they were
        "length": "source length",
        "time": "source time",
        "stress": "source stress",
        "viscosity": "source stress × time",
        "volume": "source length^D",
    },
}

#: the columns of the DataFrames: (dimension, what the column holds)
COLUMNS = {
    "jumps": {
        "particle": (None, "the particle's index in the store"),
        "frame": (None, "the store frame of the jump (the first frame in the new cage)"),
        "time": ("time", "the time of that frame"),
        **{a: ("length", f"{a} of the particle at the jump (lab frame, unwrapped)") for a in "xyz"},
        **{f"d{a}": ("length", f"{a} of the non-affine jump vector between the cage centres") for a in "xyz"},
    },
    "clusters": {
        "window": (None, "the window of W that found the cluster (0, 1, ...)"),
        "region": (None, "the region's label in its window"),
        "t_ref": ("time", "the window's end, where its jumps were carried to"),
        "volume": ("volume", "the region's volume (fine-grid nodes)"),
        "xi": ("length", "the radius of a sphere (disk) of that volume"),
        "jumps": (None, "the cage jumps of the window inside the region"),
        "stress_rise": ("stress", "the largest run-up of the traced stress σ_c(t)"),
        "t0": ("time", "the start of the stress rise"),
        "t1": ("time", "the start of the jumps' burst"),
        "t2": ("time", "the yield (the stress peak)"),
        "t3": ("time", "the end of the stress drop"),
        "stress_at_yield": ("stress", "σ_c at t2 (eq. 4)"),
        "strain_at_yield": (None, "the cluster's own shear strain from t0 to t2"),
        "members_t0": (None, "particles inside the region at t0"),
        "p_ext": (None, "the share of extensional jumps over [t0, t3]"),
        "yield_from": (None, "where the yield was found: 'trace' (the run) or 'ice' (the ICE mean)"),
    },
}


def _frame(name: str, rows, description: str, units: dict):
    """A DataFrame whose columns are named "quantity [unit]" (bare where the quantity has no unit), the
    identifiers first, then the columns in the order COLUMNS explains them. ``attrs``: "description";
    "units" and "columns" (what a column holds), both by quantity; "column": the column of each
    quantity, so that ``df[df.attrs["column"]["xi"]]`` reads the same in every engine's units."""
    import pandas as pd

    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    cols = COLUMNS[name]
    order = [c for c in cols if c in df.columns] + [c for c in df.columns if c not in cols]
    if list(df.columns) != order:
        df = df[order]
    unit = {c: units.get(cols[c][0], "").split(" = ")[0] if c in cols and cols[c][0] else "" for c in order}
    named = {c: f"{c} [{unit[c]}]" if unit[c] else c for c in order}
    df.columns = [named[c] for c in order]  # renamed in place: a million jumps are not copied again
    df.attrs["description"] = description
    df.attrs["units"] = unit
    df.attrs["columns"] = {c: cols[c][1] for c in order if c in cols}
    df.attrs["column"] = named
    return df


class Result:
    """One analysis product (RUNDIR/STAGE.json) as an object: its keys as attributes (``r.eta``),
    ``summary`` where the stage has one, ``description`` (one line) and ``units``; for the clusters
    stage, ``table`` (a DataFrame, a row per cluster)."""

    def __init__(self, stage: str, description: str, data: dict, units: dict):
        self.stage, self.description, self.data, self.units = stage, description, data, units

    def __getattr__(self, key: str):
        data = self.__dict__.get("data", {})
        if key in data:
            return data[key]
        raise AttributeError(f"the {self.__dict__.get('stage')} product has no {key!r}; it has: {', '.join(data)}")

    def __getitem__(self, key: str):
        return self.data[key]

    def __dir__(self):
        names = set(super().__dir__()) | set(self.data)
        return sorted(names if self.stage == "clusters" else names - {"table"})

    def keys(self):
        return self.data.keys()

    def get(self, key: str, default=None):
        return self.data.get(key, default)

    @property
    def table(self):
        if "clusters" not in self.data or self.stage != "clusters":
            raise AttributeError(f"the {self.stage} product has no table (the clusters product has)")
        table = [{k: v for k, v in row.items() if k != "centre"} for row in self.data["clusters"]]
        return _frame("clusters", table, "one row per dynamic region traced back (those with t2 yielded)", self.units)

    def __repr__(self) -> str:
        return f"<lmpshear result {self.stage}: {self.headline() or self.description}>"

    def numbers(self, most: int | None = None) -> dict[str, str]:
        """Its key numbers, name -> ``value ± error``: the scalars of its summary (or of the product itself)."""
        import numbers

        summary = self.data.get("summary")
        values = summary if isinstance(summary, dict) else self.data
        scalars = {k: v for k, v in values.items() if isinstance(v, numbers.Real) and not isinstance(v, bool)}
        shown: dict[str, str] = {}
        for key, value in scalars.items():
            if key.endswith("_error") or (most is not None and len(shown) >= most):
                continue
            error = scalars.get(f"{key}_error")
            shown[key] = f"{value:.4g}" + (f" ± {error:.2g}" if error is not None else "")
        return shown

    def headline(self, most: int = 6) -> str:
        """Its first key numbers on one line, ``name = value ± error, ...``."""
        return ", ".join(f"{key} = {text}" for key, text in self.numbers(most).items())

    def _repr_html_(self) -> str:
        """In a notebook: what it is, and its key numbers as a table."""
        import html

        rows = "".join(
            f"<tr><td><code>{html.escape(k)}</code></td><td>{html.escape(v)}</td></tr>"
            for k, v in self.numbers().items()
        )
        return f"<p><b>{html.escape(self.stage)}</b>: {html.escape(self.description)}</p><table>{rows}</table>"


class Run:
    """A run directory: its spec, status and progress, trajectory, and products, a `Result` per stage read
    when asked for: ``run.viscosity``, ``run.structure``, ``run.msd``, ``run.overlap``, ``run.cagejumps``,
    ``run.s4``, ``run.clusters`` (its ``table`` a DataFrame), ``run.gjj``, ``run.phm``,
    ``run.facilitation``; and its cage jumps as a DataFrame (``run.jumps``). ``dir(run)`` lists the
    products it has.

    Attributes: ``path``, ``spec``, ``info``, ``rate``, ``status``, ``state``, ``complete``, ``progress``, ``units``;
    methods ``trajectory()`` (verified first) and ``result(stage)``."""

    def __init__(self, path: str | Path):
        _checked(path=("path", path))
        self.rd = RunDir(path)
        if not self.rd.path.is_dir():
            raise UserError(f"no run directory at {self.rd.path}")
        self.rd.require_run()
        self.path = self.rd.path

    def __repr__(self) -> str:
        return f"<lmpshear Run {self.path} ({self.state})>"

    @property
    def spec(self):
        """The run spec (`lmpshear.spec.RunSpec`); an imported trajectory has none (UserError)."""
        return self.rd.spec()

    @property
    def info(self):
        """What the analysis knows of the run (rate, temperature, steady window, [analysis] keys)."""
        return self.rd.info()

    @property
    def rate(self) -> float:
        return self.info.rate

    @property
    def status(self) -> dict:
        """status.json: state (prepared, running, interrupted, stopped, failed, complete), frames, message."""
        return self.rd.status()

    @property
    def state(self) -> str:
        return self.status.get("state", "prepared")

    @property
    def estimate(self) -> dict:
        """What the run needs (steps, frames, particle-steps, the store's bytes) and how long it takes
        (hours) at the speed measured on this project's 2-core machine (`lmpshear.preparation`)."""
        from lmpshear.preparation import NOMINAL_SPEED, estimate

        return estimate(self.spec) | {"speed": NOMINAL_SPEED[self.spec.engine]}

    @property
    def complete(self) -> bool:
        """Whether the run has finished and recorded its digests (an imported trajectory always has)."""
        return self.rd.complete()

    @property
    def progress(self) -> float | None:
        """The fraction of the frames written (None before the first frame, or for an imported run)."""
        frames = self.status.get("frames")
        if self.rd.source.is_file() or not isinstance(frames, int):
            return None
        return min(1.0, frames / (self.spec.n_samples + 1))

    @property
    def units(self) -> dict:
        """What lengths, times, stresses and viscosities are measured in (reduced units of the engine; D,
        the dimension, filled in)."""
        if self.rd.source.is_file():
            engine, dimension = "imported", json.loads(self.rd.source.read_text())["dimension"]
        else:
            engine, dimension = self.spec.engine, self.spec.system.dimension
        return {k: v.replace("^D", f"^{dimension}") for k, v in UNITS[engine].items()}

    def trajectory(self):
        """The trajectory store (`lmpshear.store.Trajectory`; use it in a ``with`` block), verified first
        against the digests its run recorded (UserError where it is damaged)."""
        from lmpshear import integrity
        from lmpshear.store import Trajectory

        if not self.rd.store.exists():
            raise UserError(f"{self.path} has no trajectory yet (state: {self.state}); run it first")
        integrity.require_intact(self.rd, reading="read")
        return Trajectory(self.rd.store)

    def result(self, stage: str) -> Result:
        """A stage's product; UserError naming the command that makes it where it was not made. Products are
        read as `analyze` wrote them, from a store it verified then; they are not verified again here
        (`lmpshear.verify(run.path)` checks the store and thermo table now)."""
        from lmpshear.stages import STAGES

        if stage not in STAGES:
            raise UserError(f"unknown stage {stage!r}; available: {', '.join(STAGES)}")
        data = self.rd.result(stage)
        if data is None:
            raise UserError(
                f"{self.path}: no {stage} product yet; make it with lmpshear.analyze({str(self.path)!r}, "
                f"only=[{stage!r}]) or `lmpshear analyze {self.path} --only {stage}`"
            )
        return Result(stage, STAGES[stage].what, data, self.units)

    def __getattr__(self, name: str):
        from lmpshear.stages import STAGES

        if name in STAGES:
            return self.result(name)
        raise AttributeError(name)

    def __dir__(self):
        from lmpshear.stages import STAGES

        made = {name for name in STAGES if self.rd.product(name).exists()}
        return sorted(set(super().__dir__()) | made | ({"jumps"} if self.rd.file("jumps").exists() else set()))

    @property
    def jumps(self):
        """The cage jumps (cagejumps.csv.gz), one row per jump."""
        import pandas as pd

        path = self.rd.file("jumps")
        if not path.exists():
            raise UserError(
                f"{self.path}: no cage jumps yet; make them with lmpshear.analyze({str(self.path)!r}, "
                "only=['cagejumps'])"
            )
        return _frame("jumps", pd.read_csv(path), "one row per cage jump (Candelier's rule, eq. 11)", self.units)


class Campaign:
    """A campaign file (systems × rates × seeds): its runs and their states, and its report as DataFrames."""

    def __init__(self, path: str | Path):
        from lmpshear import campaign

        _checked(path=("path", path))
        self.campaign = campaign.load(path)
        self.path = self.campaign.file

    def __repr__(self) -> str:
        return f"<lmpshear Campaign {self.campaign.name}: {len(self.campaign.runs)} runs>"

    def status(self) -> list[dict]:
        """A row per run (run, path, rate, seed, state, progress, detail, job), with the SLURM job working
        on it where this campaign submitted jobs and `squeue` answers."""
        import shutil

        from lmpshear.campaign import recorded_jobs, status_rows

        live = {}
        if recorded_jobs(self.campaign) and shutil.which("squeue"):
            from lmpshear.slurm import queued

            live = queued(self.campaign)
        return status_rows(self.campaign, live)

    @property
    def runs(self):
        """`status` as a DataFrame."""
        import pandas as pd

        return pd.DataFrame(self.status())

    def run(self, name: str) -> Run:
        """One of its runs by name (LABEL/rate-R[-seed-S]), as a `Run`."""
        for r in self.campaign.runs:
            if r.name == name:
                return Run(r.path)
        raise UserError(f"{self.path}: no run {name!r}; its runs: {', '.join(r.name for r in self.campaign.runs)}")

    def submit(self, executor: str = "local", jobs: int = 1, *, dry_run: bool = False, progress: bool = True) -> dict:
        """Prepare the missing runs and do what is left: here (``local``, ``jobs`` steps at once, until
        done) or as SLURM array jobs (``slurm``, returning once submitted; ``dry_run`` prints the batch
        scripts and sbatch commands only). Returns what the executor carried out of the campaign's plan."""
        from lmpshear import campaign

        _checked(jobs=("count>=1", jobs))
        if executor not in ("slurm", "local"):
            raise UserError(f"executor {executor!r}: slurm or local")
        if dry_run and executor == "local":
            raise UserError("--dry-run prints batch scripts: it goes with --executor slurm")
        echo = print if progress else _quiet
        campaign.check_directories(self.campaign)  # a dry run too: a directory holding another run is refused
        if executor == "local":
            from lmpshear.local_executor import run_local

            return run_local(self.campaign, jobs=jobs, echo=echo, warn=_warn)
        from lmpshear.slurm import submit

        return submit(self.campaign, dry_run=dry_run, echo=echo, warn=_warn)

    def table(self) -> str:
        """`status` as the text table `lmpshear status` prints."""
        from lmpshear.campaign import format_table

        return format_table(self.status())

    def report(self, out: str | Path | None = None, *, partial: bool = False, progress: bool = True) -> Report:
        """Write the campaign's report (default: its ROOT/report) and return it as DataFrames."""
        from lmpshear.report import report_campaign

        folder = Path(out) if out is not None else self.campaign.report_dir
        report_campaign(self.path, folder, partial=partial, echo=print if progress else _quiet)
        return Report(folder)


class Report:
    """A campaign's report folder as DataFrames, each with a "system" column: ``flow_curve`` (rate, η
    and its error, in the fit), ``clusters_vs_rate`` (η_c, P̄_c, σ_c,y, ξ_c, t_y, t_χ and the other
    lengths by rate), ``table1`` (λ, λ/(D+1), ν_c and the other lengths' exponents) and ``runs``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        if not (self.folder / "campaign.json").exists():
            raise UserError(f"{self.folder}: no campaign report here (campaign.json); make one with Campaign.report()")

    def _systems(self, name: str):
        import pandas as pd

        parts = [pd.read_csv(f).assign(system=f.parent.name) for f in sorted(self.folder.glob(f"*/{name}"))]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def _read(self, name: str):
        import pandas as pd

        path = self.folder / name
        return pd.read_csv(path) if path.exists() else pd.DataFrame()

    flow_curve = property(lambda self: self._systems("flowcurve.csv"))
    clusters_vs_rate = property(lambda self: self._systems("clusters_vs_rate.csv"))
    table1 = property(lambda self: self._read("table1.csv"))
    runs = property(lambda self: self._read("runs.csv"))
