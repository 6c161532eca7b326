"""The Brownian-dynamics integrator: state, Lees–Edwards cell, one step at a time.

The physics and the kernels are described in :mod:`lmpshear.engines.bd_kernels`. The state is the
positions (kept inside the cell), the time, and the random generator (numpy PCG64), whose state is
plain data: saving it with the positions makes a resumed run repeat an uninterrupted one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmpshear.engines import bd_kernels as K
from lmpshear.neighbors import CellGrid, fractional, pairs_within
from lmpshear.unwrap import Cell


@dataclass(frozen=True)
class Yukawa:
    """V(r) = K exp[−z(r − d_ij)]/(r/d_ij), r ≥ d_ij, truncated at ``cutoff`` (K = 0: no interaction)."""

    K: float = 9.69
    z: float = 4.86
    cutoff: float = 5.0


class BrownianDynamics:
    def __init__(self, positions: np.ndarray, diameter: np.ndarray, diffusion: np.ndarray, box: tuple,
                 dimension: int, rate: float, dt: float, seed: int, yukawa: Yukawa | None = Yukawa(),
                 hard_core: bool = True, overlap_tol: float = 1e-6, skin: float | None = 0.4):
        self.dimension = dimension
        self.lx, self.ly, self.lz = (float(v) for v in box)
        self.rate, self.dt = float(rate), float(dt)
        self.diameter = np.ascontiguousarray(diameter, dtype=np.float64)
        self.diffusion = np.ascontiguousarray(diffusion, dtype=np.float64)
        self.yukawa, self.hard_core, self.overlap_tol = yukawa, hard_core, overlap_tol
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.time = 0.0
        self.r = np.zeros((len(self.diameter), 3))
        self.r[:, :dimension] = np.asarray(positions)[:, :dimension]
        self.r = self.cell.wrap(self.r)[0]
        self.virial_xy = np.zeros(len(self.diameter))  # Yukawa part, last force evaluation
        self.collision_xy = np.zeros(len(self.diameter))  # hard-core part, last step
        self.energy = 0.0
        self.sweeps = 0
        self.skin = skin  # Verlet-list skin; None: a fresh list (no skin) every step
        self._list = None  # (offsets, partners, fractional positions and tilt at the build)
        self.list_builds = 0

    @property
    def cell(self) -> Cell:
        """The cell at the current time: tilt γ̇ t L_y, kept in [−L_x/2, L_x/2) (flips change no image)."""
        xy = self.rate * self.time * self.ly
        xy -= np.floor(xy / self.lx + 0.5) * self.lx
        return Cell((0.0, 0.0, 0.0), self.lx, self.ly, self.lz, float(xy), self.dimension)

    def _grid(self, cutoff: float) -> CellGrid:
        return CellGrid.for_cell(self.cell, cutoff, max_bins=len(self.diameter))

    def forces(self) -> np.ndarray:
        y = self.yukawa
        if y is None or y.K == 0.0:
            self.virial_xy[:] = 0.0
            self.energy = 0.0
            return np.zeros_like(self.r)
        cell = self.cell
        h, h_inv, lo = cell.matrix(), np.linalg.inv(cell.matrix()), np.asarray(cell.lo, dtype=np.float64)
        if self._list_stale(cell, h, h_inv, lo):
            reach = y.cutoff + (self.skin or 0.0)
            g = self._grid(reach)
            i, j = pairs_within(self.r, g.h, g.h_inv, g.lo, g.n, g.periodic_z, reach)
            j = j[np.lexsort((j, i))]  # partners in index order: sums independent of when the list was built
            offsets = np.concatenate([[0], np.cumsum(np.bincount(i, minlength=len(self.r)))])
            self._list = (offsets, j, fractional(self.r, lo, h_inv), cell.xy)
            self.list_builds += 1
        offsets, partners = self._list[:2]
        f, self.virial_xy, self.energy = K.yukawa_forces_listed(self.r, self.diameter, h, h_inv, lo,
                                                                self.dimension == 3, offsets, partners, y.K, y.z,
                                                                y.cutoff)
        return f

    def _list_stale(self, cell: Cell, h: np.ndarray, h_inv: np.ndarray, lo: np.ndarray) -> bool:
        """Whether a pair now within r_c may have been beyond r_c + skin at the build.

        A pair's separation changes by (δs_i − δs_j)·H + Δs_y (xy − xy_build) e_x (fractional moves
        δs and the tilt change, flips included, which then force a rebuild): so the list holds while
        2 max|δs_i·H| + (r_c + skin)/L_y |xy − xy_build| < skin."""
        if self._list is None or self.skin is None:
            return True
        _, _, s_build, xy_build = self._list
        ds = fractional(self.r, lo, h_inv) - s_build
        ds -= np.rint(ds)
        moved = np.sqrt(((ds @ h) ** 2).sum(axis=1)).max()
        reach = (self.yukawa.cutoff + self.skin) / cell.ly
        return 2.0 * moved + reach * abs(cell.xy - xy_build) >= self.skin

    def step(self) -> None:
        force = self.forces()
        noise = self.rng.standard_normal((len(self.diameter), 3))
        K.brownian_move(self.r, force, self.diffusion, self.dt, self.rate, 0.0, noise, self.dimension)
        self.time += self.dt
        if self.hard_core:
            self.sweeps, pushes = K.resolve_overlaps(self.r, self.diameter, self._grid(self.diameter.max()),
                                                     self.overlap_tol)
            self.collision_xy = pushes / (self.diffusion * self.dt)  # displacement / (μ dt) is a force
        self.r = self.cell.wrap(self.r)[0]
        if self.dimension == 2:
            self.r[:, 2] = 0.0

    def state(self) -> dict:
        return {"positions": self.r.copy(), "time": self.time, "rng": self.rng.bit_generator.state}

    def restore(self, state: dict) -> None:
        self.r = np.array(state["positions"], dtype=np.float64)
        self.time = float(state["time"])
        self.rng.bit_generator.state = state["rng"]
