"""Campaigns: a sweep of runs (specs x shear rates x seeds) described by one TOML file, prepared, run
and analysed on SLURM (:mod:`lmpshear.slurm`) or on this machine (:mod:`lmpshear.local_executor`),
then reported on together.

A campaign file::

    name = "bd-paper"
    root = "runs"                  # where its run directories go, relative to this file (default: NAME)

    [resources]                    # every step; [resources.run], [resources.analyze], [resources.report] override
    threads = 2                    # per task: NUMBA_NUM_THREADS / OMP_NUM_THREADS and --cpus-per-task
    walltime = "24:00:00"
    memory = "8G"
    throttle = 4                   # at most this many array tasks at once (0: no limit)

    [[runs]]
    spec = "bd45"                  # a preset or a spec file (relative to this file)
    rates = [1, 3, 10, 20]         # default: every rate of the spec
    seeds = [1, 2]                 # default: the spec's own seed
    overrides = { protocol = { equilibration_time = 0.2 } }   # any table of the spec

Run directories are ``ROOT/LABEL/rate-R`` (``ROOT/LABEL/rate-R-seed-S`` when seeds are listed),
LABEL being ``label`` or the spec's file name.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lmpshear import config
from lmpshear.errors import UserError
from lmpshear.preparation import check_feasible, estimate
from lmpshear.rundir import RunDir
from lmpshear.spec import RunSpec

STEPS = ("run", "analyze", "report")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
#: SLURM's time formats: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS
WALLTIME_RE = re.compile(r"\d+(:\d{2}){0,2}|\d+-\d{1,2}(:\d{2}){0,2}")
MEMORY_RE = re.compile(r"\d+[KMGT]?")
OPTION_RE = re.compile(r"--?[A-Za-z][A-Za-z0-9-]*(=\S.*)?")


def plural(n: int, one: str, many: str | None = None) -> str:
    """ "1 run", "2 runs" (``many`` where the plural is not one + "s")."""
    return f"{n} {one if n == 1 else (many or one + 's')}"


@dataclass(frozen=True)
class Resources:
    """What one task of a step asks the scheduler for (and how many threads it uses here)."""

    threads: int = 1
    ranks: int = 1  # MPI ranks (LAMMPS only); each run task then starts `launcher` with this many
    walltime: str = ""  # "" leaves it to the partition's default
    memory: str = ""
    partition: str = ""
    account: str = ""
    qos: str = ""
    sbatch: tuple[str, ...] = ()  # further sbatch options, e.g. "--constraint=avx2"
    launcher: str = "srun"  # how ranks > 1 are started: "srun" or "mpiexec"
    stop_before: int = 300  # run tasks: seconds before the time limit to stop at a step and requeue


RESOURCE_KEYS = {
    "threads": "int",
    "ranks": "int",
    "walltime": "str",
    "memory": "str",
    "partition": "str",
    "account": "str",
    "qos": "str",
    "sbatch": "list",
    "launcher": "str",
    "stop_before": "int",
}


@dataclass(frozen=True)
class CampaignRun:
    """One run of a campaign: a spec at one rate and seed, and its directory."""

    label: str
    spec: str  # as given: preset name or resolved path
    rate: float
    seed: int | None
    overrides: dict = field(hash=False, compare=False)
    path: Path = Path()
    engine: str = "lammps"

    @property
    def name(self) -> str:
        return f"{self.label}/{self.path.name}"

    def load(self) -> RunSpec:
        return config.load(self.spec, self.overrides or None).select_rate(self.rate)


@dataclass(frozen=True)
class Campaign:
    name: str
    file: Path
    root: Path
    runs: tuple[CampaignRun, ...]
    resources: dict  # step -> Resources
    throttle: int = 0

    @property
    def folder(self) -> Path:
        """Scripts, job records and logs of the campaign (inside its root)."""
        return self.root / ".campaign"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    def labels(self) -> list[str]:
        return list(dict.fromkeys(r.label for r in self.runs))


def run_dir_name(rate: float, seed: int | None) -> str:
    return f"rate-{rate:g}" + (f"-seed-{seed}" if seed is not None else "")


def is_campaign_file(path: str | Path) -> bool:
    """A TOML file with [[runs]]: how `report` tells a campaign from run directories."""
    path = Path(path)
    if path.suffix != ".toml" or not path.is_file():
        return False
    try:
        return "runs" in tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False


def load(path: str | Path) -> Campaign:
    """Read and validate a campaign file; every run's spec is loaded and checked here, so that a bad
    campaign is refused before anything is prepared or submitted."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"campaign file not found: {path}")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text (a campaign file is UTF-8)") from None
    c = config.Checker(str(path), "campaign file")
    c.no_extra(data, {"name", "root", "resources", "runs"}, "")
    name = c.get(data, "name", "", "str")
    if name is not None and not NAME_RE.fullmatch(name):
        c.error("name", "use letters, digits, '_', '-', '.' (at most 64)")
    root_text = c.get(data, "root", "", "str", required=False, default=name or "runs")
    root = (path.parent / root_text).resolve() if root_text and root_text.strip() else None
    if root is None:
        c.error("root", "must not be empty")
    else:  # the nearest existing ancestor must be a directory: the runs go inside it
        existing = next(p for p in (root, *root.parents) if p.exists())
        if not existing.is_dir():
            c.error("root", f"{existing} is a file, not a directory: the run directories go inside root")
    resources, throttle = _load_resources(c, data.get("resources", {}))
    runs: list[CampaignRun] = []
    for i, t in enumerate(c.tables(data, "runs", "", '[[runs]] spec = "bd45"')):
        runs += _load_runs(c, t, f"runs[{i}].", path, root or Path("."))
    c.finish()
    seen: dict[Path, str] = {}
    for r in runs:
        if r.path in seen:
            c.error(
                "runs",
                f"two runs share the directory {r.path} ({seen[r.path]} and {r.spec}): give them different labels",
            )
        seen[r.path] = r.spec
    if resources["run"].ranks > 1:
        bd = sorted({r.label for r in runs if r.engine == "bd"})
        if bd:
            c.error(
                "resources.run.ranks",
                f"MPI ranks are for LAMMPS runs; engine 'bd' uses threads: put "
                f"{', '.join(bd)} in a campaign of its own",
            )
    systems: dict[str, tuple] = {}
    for run in runs:  # one label is one liquid: its report's runs must differ only in rate and seed
        held = identity(run.load())
        liquid = (held["engine"], held["system"])
        if systems.setdefault(run.label, liquid) != liquid:
            c.error(
                "runs",
                f"label {run.label!r} names two different liquids (spec {run.spec}: "
                f"{held['system']['name']}); give each its own label",
            )
    c.finish()
    assert root is not None  # else c.finish() raised
    return Campaign(name, path.resolve(), root, tuple(runs), resources, throttle)


def _load_resources(c: config.Checker, t: dict) -> tuple[dict, int]:
    if not isinstance(t, dict):
        c.error("resources", "must be a table")
        return {s: Resources() for s in STEPS}, 0
    c.no_extra(t, set(RESOURCE_KEYS) | set(STEPS) | {"throttle"}, "resources.")
    throttle = c.get(t, "throttle", "resources.", "int", required=False, default=0, nonnegative=True)
    common = _resource_values(c, t, "resources.")
    out = {}
    for step in STEPS:
        own = t.get(step, {})
        if not isinstance(own, dict):
            c.error(f"resources.{step}", "must be a table")
            own = {}
        c.no_extra(own, set(RESOURCE_KEYS), f"resources.{step}.")
        out[step] = Resources(**(common | _resource_values(c, own, f"resources.{step}.")))
    run = out["run"]
    if run.walltime and not _walltime_problem(run.walltime) and run.stop_before >= walltime_seconds(run.walltime):
        c.error(
            "resources.run.stop_before",
            f"{run.stop_before} s is not shorter than the walltime {run.walltime}: "
            "a task would be told to stop before it starts",
        )
    return out, throttle


#: sbatch options that `submit` writes itself: passing them through `sbatch` would break the campaign
OWNED_OPTIONS = (
    "--output",
    "--error",
    "--array",
    "--dependency",
    "--wrap",
    "--job-name",
    "--requeue",
    "--no-requeue",
    "--signal",
    "--kill-on-invalid-dep",
    "-o",
    "-e",
    "-a",
    "-d",
    "-J",
)
#: bounds of a task's resources: beyond them a value is a typo, not a machine
MAX_THREADS, MAX_RANKS, MAX_MEMORY_MB, MAX_WALLTIME_DAYS = 1024, 65536, 64 * 1024**2, 365


def walltime_seconds(text: str) -> int:
    """SLURM's time formats in seconds: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS."""
    days, _, rest = text.rpartition("-")
    parts = [int(x) for x in rest.split(":")]
    if days:
        parts += [0] * (3 - len(parts))  # D-HH[:MM[:SS]]
        h, m, sec = parts
    else:
        h, m, sec = {1: (0, parts[0], 0), 2: (0, *parts), 3: tuple(parts)}[len(parts)]
    return ((int(days or 0) * 24 + h) * 60 + m) * 60 + sec


def _walltime_problem(text: str) -> str | None:
    days, _, rest = text.rpartition("-")
    parts = [int(x) for x in rest.split(":")]
    if any(x >= 60 for x in parts[1:]):  # the minutes and seconds after hours (or after minutes: MM:SS)
        return f"{text!r}: minutes and seconds must be below 60"
    if days and parts[0] >= 24:
        return f"{text!r}: hours must be below 24 after a day count"
    if walltime_seconds(text) > MAX_WALLTIME_DAYS * 86400:
        return f"{text!r} is longer than {MAX_WALLTIME_DAYS} days"
    return None


def memory_mb(text: str) -> float:
    number, unit = (text[:-1], text[-1]) if text[-1] in "KMGT" else (text, "M")
    return float(number) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}[unit]


def _resource_values(c: config.Checker, t: dict, w: str) -> dict:
    values = {}
    for key, kind in RESOURCE_KEYS.items():
        if key not in t:
            continue
        if kind == "list":
            v = t[key]
            if not isinstance(v, list) or not all(isinstance(x, str) and OPTION_RE.fullmatch(x.strip()) for x in v):
                c.error(f"{w}{key}", 'must be a list of sbatch options such as "--constraint=avx2"')
                continue
            owned = [x for x in v if x.strip().split("=")[0] in OWNED_OPTIONS]
            if owned:
                c.error(
                    f"{w}{key}",
                    f"{', '.join(owned)}: submit sets these itself (logs, the array, its "
                    "dependencies, requeue and signals); leave them out",
                )
                continue
            values[key] = tuple(x.strip() for x in v)
            continue
        v = c.get(t, key, w, kind, positive=kind == "int" and key != "stop_before", nonnegative=key == "stop_before")
        if v is None:
            continue
        if key == "walltime" and not WALLTIME_RE.fullmatch(v):
            c.error(f"{w}{key}", f"{v!r} is not a SLURM time (minutes, HH:MM:SS or D-HH:MM:SS)")
            continue
        if key == "walltime" and (problem := _walltime_problem(v)):
            c.error(f"{w}{key}", problem)
            continue
        if key == "memory" and not MEMORY_RE.fullmatch(v):
            c.error(f"{w}{key}", f"{v!r} is not a SLURM memory size (e.g. 4G, 500M)")
            continue
        if key == "memory" and memory_mb(v) > MAX_MEMORY_MB:
            c.error(f"{w}{key}", f"{v!r} is more than {MAX_MEMORY_MB // 1024**2} TB")
            continue
        bound = {"threads": MAX_THREADS, "ranks": MAX_RANKS}.get(key)
        if bound is not None and v > bound:
            c.error(f"{w}{key}", f"{v} is more than {bound}")
            continue
        if key in ("partition", "account", "qos") and not re.fullmatch(r"[A-Za-z0-9_.,-]*", v):
            c.error(f"{w}{key}", f"{v!r}: letters, digits, '_', '-', '.', ',' only")
            continue
        if key == "launcher" and v not in ("srun", "mpiexec"):
            c.error(f"{w}{key}", f"must be srun or mpiexec; got {v!r}")
            continue
        values[key] = v
    return values


def _load_runs(c: config.Checker, t: dict, w: str, file: Path, root: Path) -> list[CampaignRun]:
    c.no_extra(t, {"spec", "label", "rates", "seeds", "n_particles", "overrides"}, w)
    spec_arg = c.get(t, "spec", w, "str")
    if spec_arg is None:
        return []
    candidate = file.parent / spec_arg
    spec_ref = str(candidate.resolve()) if spec_arg.endswith(".toml") or candidate.is_file() else spec_arg
    overrides = t.get("overrides", {})
    if not isinstance(overrides, dict):
        c.error(f"{w}overrides", "must be a table of spec tables, e.g. { protocol = { equilibration_time = 0.2 } }")
        overrides = {}
    init_file = overrides.get("protocol", {}).get("init_file") if isinstance(overrides.get("protocol"), dict) else None
    if isinstance(init_file, str):  # a path in the campaign file is relative to that file
        overrides = config.merge(overrides, {"protocol": {"init_file": str((file.parent / init_file).resolve())}})
    n = c.get(t, "n_particles", w, "int", required=False, positive=True)
    if n is not None:
        overrides = config.merge(overrides, {"system": {"n_particles": n}})
    try:
        spec = config.load(spec_ref, overrides or None)
    except UserError as exc:
        c.error(f"{w}spec", str(exc).replace("\n", "\n  "))
        return []
    label = c.get(t, "label", w, "str", required=False, default=Path(spec_arg).stem)
    if not NAME_RE.fullmatch(label):
        c.error(f"{w}label", f"{label!r}: use letters, digits, '_', '-', '.' (at most 64)")
        return []
    rates = _numbers(c, t, "rates", w, float) if "rates" in t else spec.rate_values()
    seeds = _numbers(c, t, "seeds", w, int) if "seeds" in t else [None]
    out = []
    for rate in rates:
        if not any(math.isclose(rate, r, rel_tol=1e-6) for r in spec.rate_values()):
            c.error(
                f"{w}rates",
                f"{rate:g} is not a rate of {spec_arg} (it lists "
                f"{', '.join(f'{r:g}' for r in spec.rate_values())}); add it with "
                "overrides = { protocol = { rates = [...] } }",
            )
            continue
        for seed in seeds:
            over = overrides if seed is None else config.merge(overrides, {"protocol": {"seed": seed}})
            path = root / label / run_dir_name(rate, seed)
            try:  # everything prepare checks: the spec with this seed, and whether the run can finish or fit
                check_feasible((config.load(spec_ref, over) if seed is not None else spec).select_rate(rate), path)
            except UserError as exc:
                c.error(
                    f"{w}{'seeds' if seed is not None else 'spec'}",
                    f"rate {rate:g}{f', seed {seed}' if seed is not None else ''}: {exc}".replace("\n", "\n  "),
                )
                continue
            out.append(CampaignRun(label, spec_ref, rate, seed, over, path, spec.engine))
    return out


def _numbers(c: config.Checker, t: dict, key: str, w: str, kind) -> list:
    v = t[key]
    ok = isinstance(v, list) and v and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
    if ok and kind is int:
        ok = all(isinstance(x, int) and x >= 0 for x in v)
    if ok and kind is float:
        ok = all(math.isfinite(x) and x > 0 for x in v)
    if not ok:
        c.error(
            f"{w}{key}", "must be a non-empty list of " + ("seeds (integers >= 0)" if kind is int else "positive rates")
        )
        return []
    if len(set(v)) != len(v):
        c.error(f"{w}{key}", "lists a value twice")
        return []
    return [kind(x) for x in v]


# ---------------------------------------------------------------------------------------------
# The state of each run, read from its directory (and, for queued work, the scheduler)


def identity(spec: RunSpec) -> dict:
    """What makes two runs the same run: the engine, the liquid, the rate and the seed."""
    d = spec.to_dict()
    return {"engine": d["engine"], "system": d["system"], "rate": spec.rate.rate, "seed": spec.protocol.seed}


def foreign_directories(campaign: Campaign) -> list[str]:
    """The prepared run directories whose spec is not the one the campaign asks for there: each named
    with both systems (a campaign must never run, analyse or report one run as another)."""
    out = []
    for run in campaign.runs:
        rd = RunDir(run.path)
        if not rd.config.exists():
            continue
        held, asked = identity(rd.spec()), identity(run.load())
        if held != asked:
            what = [k for k in asked if held[k] != asked[k]]
            out.append(
                f"{rd.path} holds {held['system']['name']} (engine {held['engine']}, rate {held['rate']:g}, "
                f"seed {held['seed']}) where the campaign asks for {asked['system']['name']} (engine "
                f"{asked['engine']}, rate {asked['rate']:g}, seed {asked['seed']}): they differ in "
                f"{', '.join(what)}"
            )
    return out


def check_directories(campaign: Campaign) -> None:
    """Refuse a campaign whose directories hold other runs than it asks for."""
    foreign = foreign_directories(campaign)
    if foreign:
        raise UserError(
            f"{campaign.file}: {len(foreign)} run director{'y holds' if len(foreign) == 1 else 'ies hold'} "
            "another run than the campaign's:\n  "
            + "\n  ".join(foreign)
            + "\nmove them aside (or fix the campaign file), then submit again"
        )


def check_disk(campaign: Campaign) -> None:
    """Refuse a campaign whose unfinished runs, together, need more disk for their trajectory stores
    than is free where they go: each run alone may fit (``prepare`` checks that) while the second or
    third would fill the disk halfway through. A started run counts what its store still lacks."""
    need: dict[int, list] = {}  # device -> [bytes still to write, runs, a path on it]
    for run in campaign.runs:
        state = run_state(run)
        if not (state.needs_run or state.state == "running"):
            continue
        store = RunDir(run.path).store
        left = estimate(run.load())["store_bytes"] - (store.stat().st_size if store.exists() else 0)
        where = next(p for p in [run.path, *run.path.parents] if p.exists())
        entry = need.setdefault(os.stat(where).st_dev, [0.0, 0, where])
        entry[0] += max(0.0, left)
        entry[1] += 1
    for total, runs, where in need.values():
        free = shutil.disk_usage(where).free
        if total > free:
            together = (
                f"its {runs} unfinished runs need about {total / 1e9:.3g} GB together"
                if runs > 1
                else f"its unfinished run needs about {total / 1e9:.3g} GB more"
            )
            raise UserError(
                f"{campaign.file}: {together} for traj.gsd, more than the {free / 1e9:.3g} GB free at "
                f"{where}: free some disk, sample less often (sample_interval) or submit fewer runs at a time"
            )


def prepare_missing(campaign: Campaign, echo=print, warn=None) -> list[CampaignRun]:
    """Prepare every run that has no directory yet; the ones made. A directory that holds another run
    than the campaign's is refused first."""
    from lmpshear.preparation import prepare

    check_directories(campaign)
    check_disk(campaign)
    made = []
    for run in campaign.runs:
        if RunDir(run.path).config.exists():
            continue
        prepare(
            run.spec,
            run.path,
            run.rate,
            command=["lmpshear submit", str(campaign.file)],
            warn=warn,
            overrides=run.overrides or None,
        )
        echo(f"prepared {run.name}")
        made.append(run)
    return made


@dataclass(frozen=True)
class RunState:
    state: str  # missing, prepared, running, interrupted, stopped, failed, complete, analysed
    detail: str = ""
    progress: float | None = None  # fraction of the frames written (running runs)

    @property
    def needs_run(self) -> bool:
        return self.state in ("missing", "prepared", "interrupted", "stopped")

    @property
    def needs_analysis(self) -> bool:
        return self.state != "analysed"


def run_state(run: CampaignRun) -> RunState:
    rd = RunDir(run.path)
    if not rd.config.exists():
        return RunState("missing", "not prepared")
    holder = rd.running_by()
    try:
        status = rd.status()
    except (OSError, ValueError):
        return RunState("failed", f"status.json unreadable in {rd.path}")
    frames = status.get("frames")
    total = None
    try:
        total = rd.spec().n_samples + 1
    except UserError:
        pass
    progress = frames / total if isinstance(frames, int) and total else None
    if holder:
        phase = status.get("phase", "")
        return RunState("running", f"{phase}, {holder}".strip(", "), progress)
    state = status.get("state", "prepared")
    if state == "complete":
        return RunState("analysed") if rd.analysed() else RunState("complete")
    if state == "running":  # nobody holds the lock: the process died (kill -9, node failure)
        return RunState("interrupted", "the process died; resumes from the last checkpoint", progress)
    if state in ("interrupted", "stopped", "failed"):
        return RunState(state, status.get("message", ""), progress)
    return RunState("prepared")


@dataclass(frozen=True)
class Step:
    """One task of a campaign's plan: ``step`` ("run", "analyze", "report") of ``run`` (None: the report)."""

    step: str
    run: CampaignRun | None

    @property
    def name(self) -> str:
        return "report" if self.run is None else f"{self.step} {self.run.name}"


@dataclass
class Plan:
    """What is left of a campaign, decided once for every executor: the steps to do in order (each run,
    then its analysis; the report after every analysis, and after the runs in ``waiting``), the runs
    already running elsewhere, and why the others are left alone."""

    steps: list[Step]
    waiting: list[CampaignRun]
    skipped: list[str]
    states: dict

    def runs(self, step: str) -> list[CampaignRun]:
        return [t.run for t in self.steps if t.step == step and t.run is not None]

    def names(self) -> list[str]:
        return [t.name for t in self.steps]


def plan(campaign: Campaign, queued: dict | None = None) -> Plan:
    """The one plan of a campaign that the local executor, SLURM submission and its dry run carry out
    (``queued``: run path -> the live job working on it, from :func:`lmpshear.slurm.queued`)."""
    steps, waiting, skipped, states = [], [], [], {}
    for run in campaign.runs:
        s = states[run.path] = run_state(run)
        q = (queued or {}).get(run.path)
        if q is not None:
            skipped.append(f"{run.name}: {q['step']} {q['state'].lower()} as job {q['job']}")
        elif s.state == "running":
            waiting.append(run)
            skipped.append(f"{run.name}: running outside this campaign's steps ({s.detail}): its analysis waits")
        elif s.state == "failed":
            skipped.append(
                f"{run.name}: failed ({s.detail}); fix it, then `lmpshear run {run.path}` or delete "
                "the directory to start it afresh"
            )
        elif s.needs_run:
            steps += [Step("run", run), Step("analyze", run)]
        elif s.needs_analysis:
            steps.append(Step("analyze", run))
    return Plan(steps + [Step("report", None)], waiting, skipped, states)


def status_rows(campaign: Campaign, queued: dict | None = None) -> list[dict]:
    """One row per run: its state, progress and the scheduler's job ids for it (``queued``: run path ->
    {"job": id, "step": ..., "state": ...} from :func:`lmpshear.slurm.queued`)."""
    rows = []
    for run in campaign.runs:
        s = run_state(run)
        q = (queued or {}).get(run.path)
        state = s.state
        if q and s.state != "running":
            state = f"{q['step']} {q['state'].lower()}"  # e.g. "run pending", "analyze running"
        rows.append(
            {
                "run": run.name,
                "path": str(run.path),
                "rate": run.rate,
                "seed": run.seed,
                "state": state,
                "progress": s.progress,
                "detail": s.detail,
                "job": q["job"] if q else "",
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    cols = [("run", "run"), ("state", "state"), ("progress", "progress"), ("job", "job"), ("detail", "detail")]
    cells = [
        [
            r["run"],
            r["state"],
            "" if r["progress"] is None else f"{100 * r['progress']:.0f}%",
            str(r["job"]),
            r["detail"][:70],
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (_, h) in enumerate(cols)]
    lines = ["  ".join(h.ljust(wd) for (_, h), wd in zip(cols, widths)).rstrip()]
    lines += ["  ".join(c.ljust(wd) for c, wd in zip(cell, widths)).rstrip() for cell in cells]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    lines.append(f"{plural(len(rows), 'run')}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    return "\n".join(lines)


def record_jobs(campaign: Campaign, entries: list[dict]) -> None:
    """Append submitted jobs to the campaign's record (jobs.json), which status and resubmission read."""
    from lmpshear.rundir import atomic_write_json

    atomic_write_json(campaign.folder / "jobs.json", {"jobs": recorded_jobs(campaign) + entries})


def recorded_jobs(campaign: Campaign) -> list[dict]:
    path = campaign.folder / "jobs.json"
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text())["jobs"])
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"{path} is damaged; move it aside to submit afresh (queued jobs will then not be "
            "recognised: check squeue first)"
        ) from None
