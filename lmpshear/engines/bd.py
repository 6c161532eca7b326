"""The Brownian-dynamics integrator: state, Lees–Edwards cell, one step at a time.

The physics and the kernels are described in :mod:`lmpshear.engines.bd_kernels`. The state is the
positions (kept inside the cell), the time, and the random generator (numpy PCG64), whose state is
plain data: saving it with the positions makes a resumed run repeat an uninterrupted one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmpshear.engines import bd_kernels as K
from lmpshear.neighbors import CellGrid
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
                 hard_core: bool = True, overlap_tol: float = 1e-6):
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
        g = self._grid(y.cutoff)
        f, self.virial_xy, self.energy = K.yukawa_forces(self.r, self.diameter, g.h, g.h_inv, g.lo, g.n,
                                                         g.periodic_z, y.K, y.z, y.cutoff)
        return f

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
