"""What every analysis stage stands on: the steady window of a run (:class:`SteadyWindow`), the
context a stage computes in (:class:`Context`: the run directory, its spec's parameters, the
products it declares as inputs) and the declaration of a stage (:class:`Stage`)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from lmpshear.errors import UserError
from lmpshear.rundir import Product, RunDir, RunInfo

#: the share of ``memory_budget`` the window's frame cache may hold; the rest is the kernels' (a block of
#: particle paths for the cage jumps, a frame's temporaries)
CACHE_SHARE = 0.5


class SteadyWindow:
    """The frames of the steady state (t ≥ the steady start) and what the stages read of them: their
    times and cells, and per-particle arrays (frame, particle[, axis]) as :class:`~lmpshear.store.FrameArray`,
    read from the store as needed, holding at most ``CACHE_SHARE`` of ``budget`` bytes of frames."""

    def __init__(self, traj, steady_time: float, where: Path, budget: float = 4e9):
        times = traj.times
        self.traj = traj
        self.frames = np.nonzero(times >= steady_time - 1e-9 * max(1.0, times[-1]))[0]  # indices in the store
        if len(self.frames) < 3:
            raise UserError(
                f"{where}: only {len(self.frames)} frames in the steady window "
                f"(t >= {steady_time:g}); the run is too short for this analysis"
            )
        self.times = times[self.frames]
        self.budget = float(budget)
        from lmpshear.store import FrameCache

        self.cache = FrameCache(CACHE_SHARE * self.budget)

    def __len__(self) -> int:
        return len(self.frames)

    @cached_property
    def cells(self) -> list:
        return [self.traj.cell(int(k)) for k in self.frames]

    def _array(self, key: str):
        from lmpshear.store import FrameArray

        return FrameArray(self.traj, key, self.frames, self.cache)

    @cached_property
    def unwrapped(self):
        return self._array("unwrapped")

    @cached_property
    def nonaffine(self):
        return self._array("nonaffine")

    @cached_property
    def virial_xy(self):
        return self._array("virial_xy")

    def particle_block(self, arrays: int = 1) -> int:
        """Particles per block when ``arrays`` whole paths (every frame of the window) are held at once:
        the kernels' share of the budget."""
        per_particle = arrays * len(self) * max(1, self.traj.dimension) * 8
        return max(1, int((1 - CACHE_SHARE) * self.budget // per_particle))


class _Declared:
    """A stage's view of the [analysis] parameters: a key it did not declare is an internal error, as an
    undeclared input is. ``memory_budget`` is everyone's: it changes no product."""

    FREE = ("memory_budget",)

    def __init__(self, analysis, stage: Stage):
        self._analysis, self._stage = analysis, stage

    def _declared(self, key: str) -> str:
        if key not in self._stage.keys and key not in self.FREE:
            raise RuntimeError(f"internal: stage {self._stage.name} reads [analysis] {key} without declaring it")
        return key

    def __getattr__(self, key: str):
        return getattr(self._analysis, self._declared(key))

    def value(self, key: str, dimension: int):
        """``key`` as set, or what it means unset in this dimension (spec.Analysis.value)."""
        return self._analysis.value(self._declared(key), dimension)

    def unset_default(self, key: str, dimension: int):
        return self._analysis.unset_default(self._declared(key), dimension)


@dataclass
class Context:
    """What a stage computes from: the run directory, its RunInfo (rate, temperature, the [analysis]
    parameters as validated), the trajectory and its steady window (read once per ``analyze``), and
    the inputs the current stage declares."""

    rd: RunDir
    info: RunInfo
    _traj: Any = field(default=None, repr=False)
    _jumps: object = field(default=None, repr=False)  # the cage-jump table, read once
    _steady: SteadyWindow | None = field(default=None, repr=False)
    _times: np.ndarray | None = field(default=None, repr=False)
    stage: Stage | None = None  # the stage being computed: it may read only the inputs it declares
    progress: Callable[[str], None] = field(
        default=lambda text: print(f"[lmpshear] {text}", file=sys.stderr, flush=True), repr=False
    )  # within a stage

    @property
    def analysis(self):
        """The [analysis] parameters, of which the current stage may read only the keys it declares (its
        product records them, so that it is made again when one changes)."""
        if self.stage is None:
            return self.info.analysis
        return _Declared(self.info.analysis, self.stage)

    @property
    def traj(self):
        if self._traj is None:
            from lmpshear.store import Trajectory

            self._traj = Trajectory(self.rd.store)
        return self._traj

    @property
    def steady(self) -> SteadyWindow:
        if self._steady is None:
            self._steady = SteadyWindow(
                self.traj, self.info.steady_time, self.rd.path, budget=self.analysis.memory_budget * 1e9
            )
        return self._steady

    def input(self, name: str) -> Path:
        """A file of the run directory (a RunDir file name or a stage's name for its product) that the
        current stage declares as an input, so that its product is made again when the file changes."""
        if self.stage is not None and name not in self.stage.inputs:
            raise RuntimeError(f"internal: stage {self.stage.name} reads {name} without declaring it")
        path = self.rd.file(name)
        if not path.exists():
            raise UserError(f"{path.name} is missing: run its stage first")
        return path

    def product(self, stage: str) -> dict:
        """The result of a stage this one declares as an input."""
        return Product.read(self.input(stage)).result

    def cage_size(self) -> float | None:
        """l_c², one rule: what the msd stage decided ([analysis] cage_size if given, else measured)."""
        return self.product("msd")["cage_size"]

    def jumps(self):
        """The cage-jump table (a DataFrame; its ``frame`` column indexes the store), read once."""
        if self._jumps is None:
            import pandas as pd

            self._jumps = pd.read_csv(self.input("jumps"))
        return self._jumps

    @property
    def times(self) -> np.ndarray:
        """The store's frame times, read once (the store reads them chunk by chunk, frame by frame)."""
        if self._times is None:
            self._times = self.traj.times
        return self._times

    def frame_at(self, t: float) -> int:
        """The store frame nearest to time t."""
        return int(np.argmin(np.abs(self.times - t)))

    def close(self) -> None:
        if self._traj is not None:
            self._traj.close()


@dataclass(frozen=True, kw_only=True)
class Stage:
    """An analysis stage: its name (its product is RUNDIR/NAME.json), the run files and stage
    products it reads (``inputs``: RunDir file names or stage names), the [analysis] keys its
    product depends on, how it computes and describes its result, and why it cannot run (``needs``)."""

    name: str
    inputs: tuple[str, ...]
    keys: tuple[str, ...] = ()
    compute: Callable[[Context], dict]
    describe: Callable[[dict], str]
    needs: Callable[[Context], str | None] = lambda ctx: None  # why it cannot run, or None
    version: int = 1  # of the product's contents: a product of an older version is made again
    what: str = ""  # one line for the CLI's help and the docs
    page: str = ""  # the docs page (docs/concepts/) that explains it, if any


# -- why a stage cannot run -----------------------------------------------------------------------


def needs_thermo_and_shear(ctx: Context) -> str | None:
    if not ctx.rd.thermo.exists():
        return "no thermo table (an imported trajectory)"
    return None if ctx.info.rate > 0 else "no shear (rate 0): no viscosity"


def needs_cage_size(ctx: Context) -> str | None:
    if ctx.rd.product("msd").exists() and ctx.cage_size() is None:
        return "no cage size l_c^2 (the MSD has no plateau); give one with --cage-size or [analysis] cage_size"
    return None


def needs_jumps_stress_and_shear(ctx: Context) -> str | None:
    if ctx.info.imported:
        return "no per-particle stress (an imported trajectory)"
    if ctx.info.rate == 0:
        return "no shear (rate 0)"
    return needs_cage_size(ctx)
