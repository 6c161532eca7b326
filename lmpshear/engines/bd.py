"""The Brownian-dynamics integrator: state, Lees–Edwards cell, pair lists, one step at a time.

The physics and the kernels are described in :mod:`lmpshear.engines.bd_kernels`.

Internally particles are kept sorted by cell-list bin (re-sorted at every list build) so that
neighbours sit close in memory; every public array is in the caller's particle order. The engine
carries three positions per particle: working positions (wrapped at each list build), the
unwrapped lab-frame path and the non-affine displacement r̃ (Yamamoto–Onuki), the last two
advanced by exactly the moves of the dynamics.

Pair lists, two levels. The forces use a Verlet list of reach R = r_c + skin, and the hard core a
contact list of the pairs within d_ij + skin; both are pruned from an outer list of reach
R_o = r_c + outer_skin, which a cell-list search builds (and particles are re-sorted) only when
pruning it again could miss a pair. A pair's separation changes by the difference of the two
particles' non-affine moves plus the affine shear of the separation itself, at most
m_1 + m_2 + R |γ − γ_0| with m_1, m_2 the two largest |r̃_i − r̃_i,0| since time 0. So the pruned
lists hold while that stays below skin (since the prune), and the outer list can be pruned again
while m_1 + m_2 + R_o |γ − γ_0| < outer_skin − skin (since its build).

Restarts. :meth:`state` returns the arrays together with the positions, clock and r̃ at which the
current lists were built and pruned; :meth:`restore` builds and prunes the lists again at those
and then takes the present state, so a restored engine continues exactly (bit for bit) as the one
that gave the state, and taking a state changes nothing (a run stopped at any sample and resumed
equals one never stopped). The random generator is numpy's PCG64, whose
state is plain data; noise is drawn in the caller's particle order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmpshear.cell import Cell, largest_cutoff, tilt_at
from lmpshear.engines import bd_kernels as K
from lmpshear.errors import RunError
from lmpshear.neighbors import CellGrid, bin_particles, fractional
from lmpshear.spec import OUTER_MARGIN

#: the hard-core sweeps look at the pairs within d_ij + SWEEP_MARGIN d_min (selected again as needed)
SWEEP_MARGIN = 0.1


@dataclass(frozen=True)
class Yukawa:
    """V(r) = K exp[−z(r − d_ij)]/(r/d_ij), truncated (not shifted) at ``cutoff`` (K = 0: no interaction)."""

    K: float = 9.69
    z: float = 4.86
    cutoff: float = 5.0
    precision: str = "mixed"  # "mixed": float32 pair terms and per-particle sums; "double": float64 throughout


@dataclass
class Measurement:
    """Observables of the current configuration (from a force evaluation with everything on)."""

    virial_xy: np.ndarray  # (N,) per-particle Yukawa virial shear stress × volume, caller's order
    energy: float  # Yukawa potential energy
    virial_trace: float  # Σ_pairs r_ij · f_ij (for the pressure)


class BrownianDynamics:
    def __init__(
        self,
        positions: np.ndarray,
        diameter: np.ndarray,
        diffusion: np.ndarray,
        box: tuple,
        dimension: int,
        rate: float,
        dt: float,
        seed: int,
        yukawa: Yukawa | None = Yukawa(),
        hard_core: bool = True,
        overlap_tol: float = 1e-6,
        skin: float = 0.8,
        outer_skin: float | None = None,
        temperature: float = 1.0,
    ):
        self.dimension = dimension
        self.lx, self.ly, self.lz = (float(v) for v in box)
        self.rate, self.dt, self.temperature = float(rate), float(dt), float(temperature)
        self.yukawa = yukawa if (yukawa is not None and yukawa.K != 0.0) else None
        self.hard_core, self.overlap_tol, self.skin = hard_core, overlap_tol, float(skin)
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.time = 0.0
        n = len(diameter)
        self._order = np.arange(n)  # internal index -> caller's index
        self._d = np.ascontiguousarray(diameter, dtype=np.float64)
        self._mu = np.ascontiguousarray(diffusion, dtype=np.float64) / self.temperature
        r = np.zeros((n, 3))
        r[:, :dimension] = np.asarray(positions, dtype=np.float64)[:, :dimension]
        self._r = self.cell.wrap(r)[0]
        if dimension == 2:
            self._r[:, 2] = 0.0
        self._unwrapped = self._r.copy()
        self._nonaffine = np.zeros((n, 3))
        if self.yukawa is not None:
            y = self.yukawa
            self._consts = K.work_constants(y.precision, y.z, y.cutoff)
            self._work = np.empty(0, dtype=type(self._consts[0]))
        base = max(self.yukawa.cutoff if self.yukawa else 0.0, self._d.max())
        if outer_skin is None:  # skin + OUTER_MARGIN, shortened to stay below half the sheared cell's width
            half_width = largest_cutoff(min(self.lx, self.ly, self.lz if dimension == 3 else np.inf), sheared=True)
            outer_skin = max(self.skin, min(self.skin + OUTER_MARGIN, 0.95 * half_width - base))
        self.outer_skin = float(outer_skin)
        if self.outer_skin < self.skin:
            raise ValueError(f"outer_skin {self.outer_skin:g} is below skin {self.skin:g}")
        self.reach, self.outer_reach = base + self.skin, base + self.outer_skin
        self._cached_force: np.ndarray | None = None
        self.sweeps = 0  # hard-core sweeps of the last step
        self.pushed = 0  # overlapping pairs pushed apart in the last step (summed over sweeps)
        self.collision_virial = 0.0  # Σ_pairs x_ij f_ij,y of the last step's hard-core moves
        self.collision_trace = 0.0  # Σ_pairs r_ij·f_ij of the same
        self.list_builds = 0  # outer lists built (cell search, re-sort)
        self.list_prunes = 0  # Verlet and contact lists pruned from the outer list
        self.rebuild()

    # -- the cell ---------------------------------------------------------------------------------
    @property
    def cell(self) -> Cell:
        """The cell now: tilt γ̇ t L_y, kept in [−L_x/2, L_x/2) (flips change no image)."""
        return Cell(
            (0.0, 0.0, 0.0), self.lx, self.ly, self.lz, tilt_at(self.rate, self.time, self.lx, self.ly), self.dimension
        )

    @property
    def volume(self) -> float:
        return self.cell.volume

    def _image_shifts(self) -> np.ndarray:
        """n·H of the lists' image codes, H with the tilt grown continuously since the list build."""
        h = self._h_build.copy()
        h[1, 0] += self.rate * (self.time - self._t_build) * self.ly
        return K.image_shifts(h)

    # -- public arrays, in the caller's order --------------------------------------------------------
    def _public(self, a: np.ndarray) -> np.ndarray:
        out = np.empty_like(a)
        out[self._order] = a
        return out

    @property
    def r(self) -> np.ndarray:
        """Positions inside the current cell."""
        return self.cell.wrap(self._public(self._r))[0]

    @property
    def unwrapped(self) -> np.ndarray:
        return self._public(self._unwrapped)

    @property
    def nonaffine(self) -> np.ndarray:
        return self._public(self._nonaffine)

    @property
    def diameter(self) -> np.ndarray:
        return self._public(self._d)

    # -- lists ----------------------------------------------------------------------------------------
    def rebuild(self) -> None:
        """Wrap the working positions into the cell, sort particles by bin, build all pair lists."""
        cell = self.cell
        self._r = cell.wrap(self._r)[0]
        key, _ = bin_particles(fractional(self._r, self._grid().lo, self._grid().h_inv), self._grid().n)
        for name in ("_order", "_d", "_mu", "_r", "_unwrapped", "_nonaffine"):
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[key]))
        self._cached_force = None
        self._build_lists()

    def _grid(self) -> CellGrid:
        return CellGrid.for_cell(self.cell, self.outer_reach, max_bins=len(self._d), divisions=2)

    def _build_lists(self) -> None:
        grid = self._grid()
        reach_bins = np.minimum(grid.divisions, np.ceil(self.outer_reach * grid.n / self.cell.widths()))
        reach_bins = reach_bins.astype(np.int64)
        if not grid.periodic_z:
            reach_bins[2] = 0
        self._outer = K.build_pair_lists(
            self._r, grid.lo, grid.h, grid.h_inv, grid.n, reach_bins, self.outer_reach, self._room(self.outer_reach)
        )
        self._h_build, self._t_build = grid.h.copy(), self.time
        self._nonaffine_build, self._r_build = self._nonaffine.copy(), self._r.copy()
        if self.yukawa:
            self._particles = K.particle_records(self._d, self.yukawa.z, self.yukawa.precision)
        self.list_builds += 1
        self._prune()

    def _prune(self) -> None:
        offsets, pairs = self._outer
        y0, y1, yp, c0, c1, cp = K.prune_pair_lists(
            self._r,
            self._d,
            offsets,
            pairs,
            self._image_shifts(),
            self.reach,
            self.skin,
            self.yukawa is not None,
            self.hard_core,
        )
        self._yukawa_list, self._contact_list = (y0, y1, yp), (c0, c1, cp)
        self._t_prune, self._nonaffine_prune, self._r_prune = self.time, self._nonaffine.copy(), self._r.copy()
        self.list_prunes += 1

    def _room(self, radius: float) -> int:
        """Room for a chunk's pairs closer than ``radius`` at this density: all neighbours of its
        particles, +10% (the first particles in bin order have nearly all their partners j > i)."""
        ball = 4.0 / 3.0 * np.pi * radius**3 if self.dimension == 3 else np.pi * radius**2
        return int(1.1 * len(self._d) ** 2 / self.volume * ball / K.CHUNKS) + 64

    def _moved(self, before: np.ndarray, since: float, reach: float) -> float:
        """The most a pair's separation within ``reach`` can have changed by since ``before``."""
        return K.largest_moves(self._nonaffine, before) + reach * abs(self.rate * (self.time - since))

    def _stale(self) -> bool:
        return self._moved(self._nonaffine_prune, self._t_prune, self.reach) >= self.skin

    def _refresh(self) -> bool:
        """Make the lists valid again if they may not be: prune the outer list anew while it still
        holds every pair within reach, else rebuild everything. Returns whether they were updated."""
        if not self._stale():
            return False
        if self._moved(self._nonaffine_build, self._t_build, self.outer_reach) < self.outer_skin - self.skin:
            self._prune()
        else:
            self.rebuild()
        return True

    # -- forces ---------------------------------------------------------------------------------------
    def _forces(self, full: bool):
        if self.yukawa is None:
            n = len(self._d)
            return np.zeros((n, 3)), np.zeros(n), 0.0, 0.0
        return K.yukawa_forces(
            self._r,
            self._particles,
            self._d,
            *self._yukawa_list,
            self._image_shifts(),
            self.yukawa.K,
            self._consts,
            self._work,
            full,
        )

    def forces(self) -> np.ndarray:
        """Yukawa forces on the current configuration, in the caller's order."""
        return self._public(self._forces(False)[0])

    def measure(self) -> Measurement:
        """Per-particle virial, energy and virial trace now; the forces are kept for the next step."""
        self._refresh()
        force, virial, energy, trace = self._forces(True)
        self._cached_force = force
        return Measurement(self._public(virial), float(energy), float(trace))

    # -- dynamics -------------------------------------------------------------------------------------
    def step(self) -> None:
        force, self._cached_force = self._cached_force, None  # measure() left the forces of this configuration
        if force is None:
            self._refresh()
            force = self._forces(False)[0]
        noise = self.rng.standard_normal((len(self._d), 3))[self._order]
        K.brownian_move(
            self._r,
            self._unwrapped,
            self._nonaffine,
            force,
            self._mu,
            self.temperature,
            self.dt,
            self.rate,
            noise,
            self.dimension,
        )
        self.time += self.dt
        if self.hard_core:
            self._resolve_overlaps()

    def start_shear(self, rate: float) -> None:
        """Restart the clock at t = 0 with shear rate ``rate``: the unwrapped path starts at the
        current (wrapped) positions and r̃ at zero (after an equilibration at rest, say)."""
        self.rate, self.time = float(rate), 0.0
        self._r = self.cell.wrap(self._r)[0]
        self._unwrapped = self._r.copy()
        self._nonaffine = np.zeros_like(self._r)
        self.rebuild()

    def run(self, steps: int) -> None:
        for _ in range(steps):
            self.step()

    def _resolve_overlaps(self, max_sweeps: int = 10000) -> None:
        self.sweeps = self.pushed = 0
        virial = trace = 0.0
        for _attempt in range(100):
            sweeps, pushed, w, tr, worst = K.resolve_overlaps(
                self._r,
                self._unwrapped,
                self._nonaffine,
                self._d,
                self._mu,
                *self._contact_list,
                self._image_shifts(),
                self.overlap_tol,
                SWEEP_MARGIN * self._d.min(),
                max_sweeps,
            )
            self.sweeps += sweeps
            self.pushed += pushed
            virial += w
            trace += tr
            if worst > self.overlap_tol:
                raise RunError(f"hard-core overlaps not resolved after {max_sweeps} sweeps (worst {worst:.3g})")
            if not self._refresh():  # the contact list still held every pair the pushes could bring together
                break
        self.collision_virial, self.collision_trace = virial / self.dt, trace / self.dt

    # -- restart ----------------------------------------------------------------------------------------
    def state(self) -> dict:
        """Everything a restored engine needs to continue exactly as this one; changes nothing here."""
        state = {
            "time": self.time,
            "rng": self.rng.bit_generator.state,
            "order": self._order.copy(),
            "positions": self._r.copy(),
            "unwrapped": self._unwrapped.copy(),
            "nonaffine": self._nonaffine.copy(),
            "built": (self._r_build.copy(), self._t_build, self._nonaffine_build.copy()),
            "pruned": (self._r_prune.copy(), self._t_prune, self._nonaffine_prune.copy()),
        }
        if self._cached_force is not None:  # measure()'s forces (with the virial: a kernel path whose
            state["force"] = self._cached_force.copy()  # round-off differs from step()'s) drive the next step
        return state

    def restore(self, state: dict) -> None:
        """Take a :meth:`state`. Without "built"/"pruned" (older checkpoints, saved right after a
        rebuild), the lists are built at the present positions, which is the same thing; without
        "force" (older checkpoints) the next step computes its forces, equal up to round-off."""
        order = np.asarray(state["order"], dtype=np.int64)
        if len(order) != len(self._d):
            raise RunError(f"the saved state holds {len(order)} particles, this engine {len(self._d)}")
        d, mu = self.diameter, self._public(self._mu)
        self._order = order.copy()
        self._d, self._mu = np.ascontiguousarray(d[order]), np.ascontiguousarray(mu[order])
        now = (state["positions"], float(state["time"]), state["nonaffine"])
        for stage, redo in (("built", self._build_lists), ("pruned", self._prune)):
            r, t, nonaffine = state.get(stage, now)
            self._r, self.time = np.array(r, dtype=np.float64), float(t)
            self._nonaffine = np.array(nonaffine, dtype=np.float64)
            redo()
        self._r = np.array(state["positions"], dtype=np.float64)
        self._unwrapped = np.array(state["unwrapped"], dtype=np.float64)
        self._nonaffine = np.array(state["nonaffine"], dtype=np.float64)
        self.time = float(state["time"])
        self.rng.bit_generator.state = state["rng"]
        self._cached_force = np.array(state["force"], dtype=np.float64) if state.get("force") is not None else None
