"""The sheared periodic cell (Lees–Edwards as a deforming triclinic cell), the one home of its
geometry: lattice, volume, face widths, the narrowest width under shear, the tilt at a time (with
flips), minimum images, wrapping, fractional coordinates, and the affine carry of points between
times. numpy only: the numba kernels (neighbors.py, bd_kernels.py) take its arrays, never the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

#: a cell sheared up to a tilt of L/2 (where LAMMPS and the BD engine flip it) is narrowest across x,
#: L/√(1 + 1/4): a cutoff must stay below half of that
SHEARED_WIDTH_FACTOR = 1.0 / 1.25**0.5


@dataclass(frozen=True)
class Cell:
    """A sheared periodic cell: origin ``lo`` and edges a=(lx,0,0), b=(xy,ly,0), c=(0,0,lz)."""

    lo: tuple[float, float, float]
    lx: float
    ly: float
    lz: float
    xy: float
    dimension: int = 3

    def matrix(self) -> np.ndarray:
        """Rows are the lattice vectors a, b, c."""
        return np.array([[self.lx, 0.0, 0.0], [self.xy, self.ly, 0.0], [0.0, 0.0, self.lz]])

    @property
    def volume(self) -> float:
        """The cell's D-dimensional volume (an area in 2D): shear does not change it."""
        return self.lx * self.ly * (self.lz if self.dimension == 3 else 1.0)

    def widths(self) -> np.ndarray:
        """Distances between opposite faces (3,): the sheared cell is narrower than its edges."""
        h = self.matrix()
        volume = abs(np.linalg.det(h))
        return volume / np.linalg.norm([np.cross(h[1], h[2]), np.cross(h[2], h[0]), np.cross(h[0], h[1])], axis=1)

    def reduced(self) -> Cell:
        """The same lattice with the tilt flipped into [−L_x/2, L_x/2] (as LAMMPS and the BD engine keep
        it; an imported trajectory may not): the widest faces, so the longest cutoff a cell list allows."""
        return replace(self, xy=self.xy - round(self.xy / self.lx) * self.lx)

    def minimum_image(self, d: np.ndarray) -> np.ndarray:
        """Reduce displacements ``d`` (..., D), D = 2 or 3, by lattice vectors to their shortest
        representative."""
        d = np.array(d, dtype=np.float64, copy=True)
        shape = d.shape
        d = d.reshape(-1, shape[-1])
        if self.dimension == 3 and shape[-1] == 3:
            d[:, 2] -= np.rint(d[:, 2] / self.lz) * self.lz
        my = np.rint(d[:, 1] / self.ly)
        d[:, 0] -= my * self.xy
        d[:, 1] -= my * self.ly
        d[:, 0] -= np.rint(d[:, 0] / self.lx) * self.lx
        return d.reshape(shape)

    def wrap(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Split positions into (position inside the cell, integer image) so r = inside + image·(a,b,c)."""
        h = self.matrix()
        frac = np.linalg.solve(h.T, (np.asarray(r, dtype=np.float64) - np.asarray(self.lo)).T).T
        if self.dimension == 2:
            frac[:, 2] = 0.0
        image = np.floor(frac).astype(np.int64)
        inside = np.asarray(r, dtype=np.float64) - image @ h
        return inside, image

    def centroid(self, r: np.ndarray) -> np.ndarray:
        """The centre of points ``r`` (n, D) on the torus: the circular mean of each fractional
        coordinate, so that a set that crosses a face has its centre inside it, not half a cell away."""
        r = np.asarray(r, dtype=np.float64)
        padded = np.zeros((len(r), 3))
        padded[:, : r.shape[1]] = r
        return (np.asarray(self.lo) + circular_mean(self.fractional(padded)) @ self.matrix())[: r.shape[1]]

    def fractional(self, r: np.ndarray) -> np.ndarray:
        """Fractional coordinates of points (n, 3), wrapped into [0, 1)."""
        s = (np.asarray(r, dtype=np.float64) - np.asarray(self.lo)) @ np.linalg.inv(self.matrix())
        s -= np.floor(s)
        s[s >= 1.0] = 0.0  # floor of −1e−17 leaves exactly 1.0
        return s

    def carry(self, positions: np.ndarray, times: np.ndarray, rate: float, t_ref: float) -> np.ndarray:
        """Points (lab frame, each at its own time; 2 or 3 columns) carried by the affine flow
        u_x = γ̇ (y − y_lo) to t_ref, wrapped into this cell (the cell at t_ref)."""
        r = np.zeros((len(positions), 3))
        r[:, : np.shape(positions)[1]] = positions
        r[:, 0] += self.affine_shift(r[:, 1], rate, t_ref - np.asarray(times))
        return self.wrap(r)[0]

    def affine_shift(self, y: np.ndarray, rate: float, dt) -> np.ndarray:
        """How far the flow moves points at height y along x in a time dt."""
        return rate * np.asarray(dt) * (np.asarray(y) - self.lo[1])


def tilt_at(rate: float, time: float, lx: float, ly: float) -> float:
    """The tilt xy = γ̇ t L_y after shearing from an upright cell, flipped by L_x into [−L_x/2, L_x/2)
    as LAMMPS (flip yes) and the BD engine do: a flip changes the basis, not the lattice."""
    xy = rate * time * ly
    return float(xy - np.floor(xy / lx + 0.5) * lx)


def largest_cutoff(shortest_edge: float, sheared: bool) -> float:
    """Half the narrowest width the cell reaches: a pair cutoff (plus skin) must stay below it so
    that a particle never meets two images of one neighbour."""
    return 0.5 * shortest_edge * (SHEARED_WIDTH_FACTOR if sheared else 1.0)


def tilt_strains(cells: list) -> np.ndarray:
    """The strain the tilt has carried since the first cell, at each cell: each frame-to-frame change
    of the tilt taken modulo L_x (a flip subtracts L_x), so frames must be closer than half a flip apart."""
    change = [0.0]
    for before, after in zip(cells[:-1], cells[1:]):
        d = after.xy - before.xy
        change.append(change[-1] + d - after.lx * np.round(d / after.lx))
    return np.asarray(change) / cells[0].ly


def rate_from_tilts(cells: list, times) -> float:
    """The shear rate that a sequence of sheared cells implies: the tilt's strain over the time (signed;
    ``tilt_strains``). 0 for fewer than two frames."""
    if len(cells) < 2:
        return 0.0
    return float(tilt_strains(cells)[-1] / (times[-1] - times[0]))


def circular_mean(frac: np.ndarray) -> np.ndarray:
    """The mean of fractional coordinates (n, k) on the torus, per axis, in [0, 1)."""
    angles = 2 * np.pi * np.asarray(frac)
    return np.arctan2(np.sin(angles).mean(axis=0), np.cos(angles).mean(axis=0)) / (2 * np.pi) % 1.0
