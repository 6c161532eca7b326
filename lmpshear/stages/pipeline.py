"""``lmpshear analyze``: runs the analysis stages (:mod:`lmpshear.stages`) of one run directory.

Each stage writes one product atomically, RUNDIR/STAGE.json (cage jumps also their table), and is
skipped when its product is newer than its inputs and was made with the same parameters; ``force``
redoes it. Stages that cannot apply (no thermo table in an imported trajectory) are reported and
skipped unless asked for by name. All trajectory stages use the steady window (t ≥ the spec's
steady start), read from the store once per ``analyze``; products name frames by their index in the
store.
"""

from __future__ import annotations

import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from lmpshear.errors import UserError, signals_received
from lmpshear.rundir import Product, RunDir, atomic_write_json
from lmpshear.stages import STAGES, Context, Stage


def _up_to_date(rd: RunDir, stage: Stage, params: dict) -> Product | None:
    path = rd.product(stage.name)
    if not path.exists():
        return None
    stored = Product.read(path)
    if stored.params != params:
        return None
    mtime = path.stat().st_mtime
    if any(rd.file(f).stat().st_mtime > mtime for f in stage.inputs if rd.file(f).exists()):
        return None
    return stored


def _stage_params(stage: Stage, analysis: dict) -> dict:
    """What a product is made with: the [analysis] keys its stage reads (and the version of its format)."""
    params = {k: analysis[k] for k in stage.keys}
    return params | ({"version": stage.version} if stage.version > 1 else {})


class _Signals:
    """Ctrl-C and SIGTERM during an analysis: raise KeyboardInterrupt at once, and remember it. Python
    swallows an exception raised inside a finalizer (printing "Exception ignored ... Traceback"); the
    stage then runs on to its end, and the remembered signal stops the analysis at the next stage."""

    def __init__(self):
        self.received: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
            self._previous["hook"], sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc) -> None:
        hook = self._previous.pop("hook", None)
        if hook is not None:
            sys.unraisablehook = hook
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        self.received = signal.Signals(signum).name
        signals_received.append(self.received)
        raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):  # ours: remembered, acted on after the stage
            self._previous["hook"](unraisable)

    def check(self) -> None:
        """Stop (as Ctrl-C does) if a signal came and was swallowed: the products made so far are kept."""
        if self.received:
            raise KeyboardInterrupt


def _verify(rd: RunDir) -> None:
    """Analyse only a store and thermo table that match the digests their run recorded."""
    from lmpshear import integrity

    if not rd.store.is_file() and not rd.source.is_file():
        raise UserError(
            f"{rd.store} is missing (deleted or moved): the products made from it are kept, but analysing "
            "again needs it: put it back, or run the same spec again into a new directory"
        )
    integrity.require_intact(rd, reading="analysed")


def analyze(
    rundir: str | Path,
    only: list[str] | None = None,
    force: bool = False,
    overrides: dict | None = None,
    echo: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda text: print(text, file=sys.stderr),
    progress: Callable[[str], None] | None = None,
) -> dict[str, dict]:
    """Run the stages (all, or ``only``); ``overrides`` replace [analysis] parameters of the spec, after
    the same checks as the [analysis] table. ``echo`` gets a line per stage, ``warn`` the products'
    warnings, ``progress`` the lines within a long stage (default: stderr)."""
    rd = RunDir(rundir)
    checked = {}
    if overrides:  # bad options first: the same checks as the [analysis] table
        from lmpshear import config

        checker = config.Checker("command-line options")
        validated = config.load_analysis(checker, overrides)
        checker.finish()
        checked = {k: getattr(validated, k) for k in overrides}
    if not rd.path.is_dir():
        raise UserError(f"no run directory at {rd.path}")
    if not rd.source.is_file():
        rd.require_prepared()
    if not rd.complete():
        raise UserError(
            f"{rd.path} has not finished running (state: {rd.status().get('state')}); "
            "run it first with: lmpshear run RUNDIR"
        )
    _verify(rd)
    names = only or list(STAGES)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise UserError(f"unknown stage(s) {', '.join(unknown)}; available: {', '.join(STAGES)}")
    info = rd.info()
    info = replace(info, analysis=replace(info.analysis, **checked))
    ctx = Context(rd, info) if progress is None else Context(rd, info, progress=progress)
    results: dict[str, dict] = {}
    outcome: dict[str, str] = {}
    with _Signals() as signals:
        try:
            _run_stages(rd, ctx, names, only, force, asdict(info.analysis), results, outcome, signals, echo, warn)
        finally:
            ctx.close()
    if only is None:  # the record that this run is analysed (campaign status reads it)
        atomic_write_json(rd.file("analysed"), {"stages": outcome, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return results


def _fitted(line: str) -> str:
    """A stage's result as lines of at most 100 columns, the continuation indented (every number is in
    its product as well)."""
    return textwrap.fill(line, 100, subsequent_indent="    ", break_long_words=False, break_on_hyphens=False)


def _run_stages(rd, ctx, names, only, force, analysis, results, outcome, signals, echo, warn) -> None:
    for name in names:
        stage = STAGES[name]
        reason = stage.needs(ctx)
        if reason:
            if only:
                raise UserError(f"stage {name} is not available for {rd.path}: {reason}")
            echo(f"{name}: skipped, {reason}")
            outcome[name] = f"skipped: {reason}"
            continue
        params = _stage_params(stage, analysis)
        stored = None if force else _up_to_date(rd, stage, params)
        product = rd.product(name).name
        if stored is not None:
            echo(_fitted(f"{name}: up to date ({product}); {stage.describe(stored.result)}"))
            results[name] = stored.result
            outcome[name] = "done"
            continue
        echo(f"{name}: computing ...")
        started = time.perf_counter()
        ctx.stage = stage
        result = stage.compute(ctx)
        ctx.stage = None
        Product(name, params, result).write(rd.product(name))
        echo(_fitted(f"{name}: {stage.describe(result)} -> {product} ({time.perf_counter() - started:.1f} s)"))
        summary = result.get("summary")
        for warning in summary.get("warnings", []) if isinstance(summary, dict) else []:
            warn(f"{name}: warning: {warning}")
        results[name] = result
        outcome[name] = "done"
        signals.check()
