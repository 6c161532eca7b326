"""Cell lists in a sheared (triclinic) periodic cell, for every short-range pair search.

Lees–Edwards boundaries are a periodic cell whose b vector is tilted by xy (LAMMPS's deforming
box): the same lattice, so one triclinic cell list serves the BD engine, g(r) and the overlap Q(t).

Particles are binned in fractional coordinates s = (r − lo)·H⁻¹ (H's rows are a, b, c). Along
fractional axis k the cell's planes are w_k = V/|a_i × a_j| apart; with n_k = ⌊m w_k/r_c⌋ bins (m
``divisions`` per cutoff), two points closer than r_c lie within ±m bins of each other
(|Δs_k| ≤ r_c/w_k ≤ m/n_k), and for r_c < w_k/2 rounding Δs to the nearest integer is the minimum
image. Axes with fewer than 2m + 1 bins are scanned whole, so no pair is visited twice. Finer bins
(m = 2) scan less volume around each particle, (5/2)³ r_c³ instead of 3³ r_c³.

What every pair kernel shares lives here: ``binned`` (the sort and the bin-neighbour table), ``bin_of``
and ``minimum_image`` (inlined). The walk itself, over a bin's neighbour bins and their particles, is
written in each kernel (:func:`pairs_within` here; g(r) in kernels/structure.py, g_jj in jumppairs.py,
the sieve's node counts in sieve.py, Q(t) in overlap.py), each marked "the cell-list walk": numba
compiles no callback into a loop body at full speed, and the bodies differ (a list, a histogram, a
count, an overlap), as does what runs in parallel (particles, nodes or chunks).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

from lmpshear.cell import Cell
from lmpshear.errors import UserError


@dataclass(frozen=True)
class CellGrid:
    """Everything a kernel needs: H, H⁻¹, the origin and the bins per fractional axis."""

    h: np.ndarray  # (3, 3) rows a, b, c
    h_inv: np.ndarray
    lo: np.ndarray  # (3,)
    n: np.ndarray  # (3,) int64 bins per axis
    periodic_z: bool
    divisions: int = 1  # bins are at least cutoff / divisions wide: neighbours lie within ±divisions

    @classmethod
    def for_cell(cls, cell: Cell, cutoff: float, max_bins: int | None = None, divisions: int = 1) -> CellGrid:
        """Bins at least ``cutoff / divisions`` wide; at most ``max_bins`` of them (a short cutoff in a
        big cell would otherwise make far more bins than particles, and the bin set-up would dominate)."""
        h = cell.matrix()
        widths = cell.widths()
        axes = 3 if cell.dimension == 3 else 2
        if cutoff >= 0.5 * widths[:axes].min():
            raise UserError(
                f"cutoff {cutoff:g} is not below half the cell width {widths[:axes].min():g}: "
                "the system is too small for this cutoff"
            )
        n = np.maximum(1, np.floor(divisions * widths / cutoff)).astype(np.int64)
        if cell.dimension == 2:
            n[2] = 1
        if max_bins is not None and n.prod() > max_bins:
            n = np.maximum(1, np.floor(n / (n.prod() / max_bins) ** (1.0 / axes))).astype(np.int64)
            if cell.dimension == 2:
                n[2] = 1
        return cls(h, np.linalg.inv(h), np.asarray(cell.lo, dtype=np.float64), n, cell.dimension == 3, divisions)

    def table(self) -> np.ndarray:
        """:func:`bin_neighbours` of this grid, built once per grid shape: a kernel called for many
        frames of one cell (the overlap's origins × lags) would otherwise rebuild it every call."""
        return _table_for(tuple(int(k) for k in self.n), self.divisions)


@lru_cache(maxsize=16)
def _table_for(shape: tuple[int, int, int], reach: int) -> np.ndarray:
    table = bin_neighbours(np.array(shape, dtype=np.int64), reach)
    table.flags.writeable = False  # shared between callers
    return table


@numba.njit(cache=True)
def fractional(r, lo, h_inv):
    """Fractional coordinates wrapped into [0, 1)."""
    s = np.empty_like(r)
    for i in range(r.shape[0]):
        for k in range(3):
            s[i, k] = (
                (r[i, 0] - lo[0]) * h_inv[0, k] + (r[i, 1] - lo[1]) * h_inv[1, k] + (r[i, 2] - lo[2]) * h_inv[2, k]
            )
            s[i, k] -= np.floor(s[i, k])
            if s[i, k] >= 1.0:  # floor of −1e−17 leaves exactly 1.0
                s[i, k] = 0.0
    return s


@numba.njit(cache=True)
def bin_of(s0, s1, s2, n):
    a = min(int(s0 * n[0]), n[0] - 1)
    b = min(int(s1 * n[1]), n[1] - 1)
    c = min(int(s2 * n[2]), n[2] - 1)
    return (a * n[1] + b) * n[2] + c


@numba.njit(cache=True)
def bin_particles(s, n):
    """Counting sort by bin: particles of bin c are order[start[c]:start[c + 1]]."""
    nbins = n[0] * n[1] * n[2]
    which = np.empty(s.shape[0], dtype=np.int64)
    start = np.zeros(nbins + 1, dtype=np.int64)
    for i in range(s.shape[0]):
        which[i] = bin_of(s[i, 0], s[i, 1], s[i, 2], n)
        start[which[i] + 1] += 1
    for c in range(nbins):
        start[c + 1] += start[c]
    fill = start[:-1].copy()
    order = np.empty(s.shape[0], dtype=np.int64)
    for i in range(s.shape[0]):
        order[fill[which[i]]] = i
        fill[which[i]] += 1
    return order, start


@numba.njit(cache=True)
def _offsets(n_axis, reach):
    if n_axis >= 2 * reach + 1:
        return np.arange(-reach, reach + 1)
    return np.arange(n_axis)


@numba.njit(cache=True)
def bin_neighbours(n, reach=1):
    """(bins, m) table of each bin's neighbours within ±reach bins (itself included), each once."""
    oa, ob, oc = _offsets(n[0], reach), _offsets(n[1], reach), _offsets(n[2], reach)
    m = len(oa) * len(ob) * len(oc)
    table = np.empty((n[0] * n[1] * n[2], m), dtype=np.int64)
    for a in range(n[0]):
        for b in range(n[1]):
            for c in range(n[2]):
                here = (a * n[1] + b) * n[2] + c
                k = 0
                for da in oa:
                    for db in ob:
                        for dc in oc:
                            # axes scanned whole (n < 3) use absolute bins, the others relative ones
                            aa = (a + da) % n[0] if n[0] >= 2 * reach + 1 else da
                            bb = (b + db) % n[1] if n[1] >= 2 * reach + 1 else db
                            cc = (c + dc) % n[2] if n[2] >= 2 * reach + 1 else dc
                            table[here, k] = (aa * n[1] + bb) * n[2] + cc
                            k += 1
    return table


@numba.njit(cache=True)
def binned(r, lo, h_inv, n, divisions=1):
    """What every pair loop starts from: fractional positions, the bin sort and the bin neighbours."""
    s = fractional(r, lo, h_inv)
    order, start = bin_particles(s, n)
    return s, order, start, bin_neighbours(n, divisions)


@numba.njit(cache=True, inline="always")
def minimum_image(ds0, ds1, ds2, h, periodic_z):
    """Cartesian minimum-image displacement from a fractional one."""
    ds0 -= np.rint(ds0)
    ds1 -= np.rint(ds1)
    ds2 = ds2 - np.rint(ds2) if periodic_z else 0.0
    dx = ds0 * h[0, 0] + ds1 * h[1, 0] + ds2 * h[2, 0]
    dy = ds0 * h[0, 1] + ds1 * h[1, 1] + ds2 * h[2, 1]
    dz = ds0 * h[0, 2] + ds1 * h[1, 2] + ds2 * h[2, 2]
    return dx, dy, dz


@numba.njit(cache=True)
def pairs_within(r, h, h_inv, lo, n, periodic_z, cutoff):
    """All ordered pairs (i, j), i ≠ j, closer than ``cutoff``, sorted by i (counted, then filled)."""
    s, order, start, table = binned(r, lo, h_inv, n)
    c2 = cutoff * cutoff
    count = np.zeros(r.shape[0] + 1, dtype=np.int64)
    out_i = np.empty(0, dtype=np.int64)
    out_j = np.empty(0, dtype=np.int64)
    for fill in range(2):
        for i in range(r.shape[0]):
            here = bin_of(s[i, 0], s[i, 1], s[i, 2], n)
            k_out = count[i]
            # the cell-list walk (lmpshear.neighbors says why each kernel writes its own)
            for k in range(table.shape[1]):
                c = table[here, k]
                for m in range(start[c], start[c + 1]):
                    j = order[m]
                    if j == i:
                        continue
                    dx, dy, dz = minimum_image(s[j, 0] - s[i, 0], s[j, 1] - s[i, 1], s[j, 2] - s[i, 2], h, periodic_z)
                    if dx * dx + dy * dy + dz * dz < c2:
                        if fill:
                            out_i[k_out] = i
                            out_j[k_out] = j
                            k_out += 1
                        else:
                            count[i + 1] += 1
        if not fill:
            count = np.cumsum(count)
            out_i = np.empty(count[-1], dtype=np.int64)
            out_j = np.empty(count[-1], dtype=np.int64)
    return out_i, out_j
