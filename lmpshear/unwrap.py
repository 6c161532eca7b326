"""Continuous (unwrapped) positions and non-affine displacements under Lees–Edwards shear.

One implementation for every trajectory source (the LAMMPS driver, the BD engine, readers of
external files). It never uses image flags: LAMMPS's are 10-bit and wrap at |image| = 512, and
x-images grow with strain.

Unwrapping. Let u be the continuous path of a particle in the infinite sheared space and w the
coordinate a code reports (wrapped into, or near, the current cell). At any instant u − w is a
lattice vector of the *current* cell, whatever flips the cell went through (a flip changes the
basis, not the lattice). So from the previous u and the new w, the displacement is
``d = w − u_prev`` reduced to its minimum image in the current lattice; this is exact as long as
no particle moves more than about half a cell between samples, apart from the expected streaming
γ̇ Δt (y − y_lo), which is removed before the reduction (checked).

Non-affine displacement (Yamamoto & Onuki 1998)::

    r̃(t) = r(t) − r(0) − γ̇ ∫_0^t (y(t') − y_lo) dt' e_x

with the streaming profile u_x = γ̇ (y − y_lo) of LAMMPS's ``fix deform remap v`` (zero at the
bottom of the cell). The integral is accumulated per sample interval: from the engine's per-step
mean of y when it provides one (exact to the MD step), else by the trapezoidal rule on the samples.
"""

from __future__ import annotations

import numpy as np

from lmpshear.cell import Cell
from lmpshear.errors import RunError


class LeesEdwardsUnwrapper:
    """Accumulates unwrapped positions and non-affine displacements sample by sample."""

    #: largest allowed displacement between samples, as a fraction of the shortest cell edge
    max_jump_fraction = 0.35

    def __init__(self, rate: float, y_lo: float, positions: np.ndarray):
        self.rate = float(rate)
        self.y_lo = float(y_lo)
        self.unwrapped = np.array(positions, dtype=np.float64, copy=True)
        if self.unwrapped.ndim != 2 or self.unwrapped.shape[1] != 3:
            raise ValueError("positions must have shape (N, 3)")
        self.nonaffine = np.zeros_like(self.unwrapped)

    @classmethod
    def from_state(cls, rate: float, y_lo: float, unwrapped: np.ndarray, nonaffine: np.ndarray) -> LeesEdwardsUnwrapper:
        self = cls.__new__(cls)
        self.rate, self.y_lo = float(rate), float(y_lo)
        self.unwrapped = np.array(unwrapped, dtype=np.float64, copy=True)
        self.nonaffine = np.array(nonaffine, dtype=np.float64, copy=True)
        return self

    def advance(self, positions: np.ndarray, cell: Cell, interval: float, y_integral: np.ndarray | None = None) -> None:
        """Take the next sample.

        positions: reported coordinates (N, 3), wrapped or not, at the end of the interval.
        cell: the cell at that time. interval: time since the previous sample.
        y_integral: ∫ (y − y_lo) dt over the interval per particle, on the continuous path, if the
            engine integrated it per step; otherwise the trapezoidal rule on the two samples is used.
        """
        # Remove the expected streaming first, so that only the thermal (non-affine) part must be
        # shorter than half a cell: particles far up the y-images stream fast.
        streaming = self.rate * interval * (self.unwrapped[:, 1] - self.y_lo)
        d = np.asarray(positions, dtype=np.float64) - self.unwrapped
        d[:, 0] -= streaming
        d = cell.minimum_image(d)
        limit = self.max_jump_fraction * min(cell.lx, cell.ly, cell.lz if cell.dimension == 3 else np.inf)
        jump = np.abs(d).max(initial=0.0)
        if not np.isfinite(jump):
            raise RunError("non-finite particle positions: the simulation blew up")
        if jump > limit:
            raise RunError(
                f"a particle moved {jump:.3g} between two samples (more than {limit:.3g}); "
                "the sample interval is too long to follow particles through the periodic cell"
            )
        d[:, 0] += streaming
        previous_y = self.unwrapped[:, 1].copy()
        self.unwrapped += d
        if y_integral is None:
            y_integral = 0.5 * interval * (previous_y + self.unwrapped[:, 1]) - interval * self.y_lo
        self.nonaffine += d
        self.nonaffine[:, 0] -= self.rate * y_integral


def per_step_y_integral(
    y_mean: np.ndarray, y_prev: np.ndarray, y_now: np.ndarray, interval: float, timestep: float, y_lo: float
) -> np.ndarray:
    """Trapezoidal ∫(y − y_lo)dt over one sample interval from the mean of y over its steps.

    ``y_mean`` is the average of y over the steps 1..n of the interval (as LAMMPS ``fix ave/atom``
    gives it); the trapezoid over every step is dt·[Σ_1^n y_j − (y_n − y_0)/2].
    """
    return interval * (y_mean - y_lo) - 0.5 * timestep * (y_now - y_prev)
