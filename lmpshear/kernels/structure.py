"""Pair distribution functions g_αβ(r) in a sheared periodic cell, and g(r)'s first minimum.

g_αβ(r) = V ⟨n_αβ(r)⟩ / (N_α N'_β s(r)), with n_αβ(r) the number of ordered pairs (i ∈ α, j ∈ β,
i ≠ j) in the shell [r, r + dr), s(r) the shell's volume (area in 2D) and N'_β = N_β − δ_αβ, so
that g → 1 at large r for an ideal gas of any composition. Averaged over the frames given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from lmpshear.cell import Cell
from lmpshear.neighbors import CellGrid, bin_of, binned, minimum_image


@numba.njit(parallel=True, cache=True)
def _partial_pair_histogram(r, typeid, n_types, grid_h, grid_h_inv, lo, n, periodic_z, r_max, n_bins, n_chunks):
    """Ordered pairs (i ≠ j) per type pair and shell, each unordered pair found once (the later of the two
    in bin order) and counted both ways. The particles are walked in bin order, their coordinates
    copied into it: at 10^6 particles a walk in index order reads every neighbour from a random place."""
    s, order, start, table = binned(r, lo, grid_h_inv, n, 2)
    sorted_s = s[order]
    sorted_type = typeid[order]
    hist = np.zeros((n_chunks, n_types, n_types, n_bins), dtype=np.int64)
    N = r.shape[0]
    r_max2 = r_max * r_max
    width = r_max / n_bins
    for chunk in numba.prange(n_chunks):
        for a in range(chunk * N // n_chunks, (chunk + 1) * N // n_chunks):
            here = bin_of(sorted_s[a, 0], sorted_s[a, 1], sorted_s[a, 2], n)
            ta = sorted_type[a]
            # the cell-list walk (lmpshear.neighbors says why each kernel writes its own)
            for k in range(table.shape[1]):
                c = table[here, k]
                for b in range(max(start[c], a + 1), start[c + 1]):
                    dx, dy, dz = minimum_image(
                        sorted_s[b, 0] - sorted_s[a, 0],
                        sorted_s[b, 1] - sorted_s[a, 1],
                        sorted_s[b, 2] - sorted_s[a, 2],
                        grid_h,
                        periodic_z,
                    )
                    d2 = dx * dx + dy * dy + dz * dz
                    if d2 < r_max2:
                        shell = int(np.sqrt(d2) / width)
                        hist[chunk, ta, sorted_type[b], shell] += 1
                        hist[chunk, sorted_type[b], ta, shell] += 1
    return hist.sum(axis=0)


@dataclass(frozen=True)
class PairDistribution:
    r: np.ndarray  # bin centres
    edges: np.ndarray
    partial: np.ndarray  # (types, types, bins)
    total: np.ndarray  # (bins,)
    types: tuple[str, ...]

    def first_minimum(self) -> float:
        return first_minimum(self.r, self.total)


def pair_distribution(
    positions: np.ndarray, cells: list[Cell], typeid: np.ndarray, types: list[str], r_max: float, n_bins: int = 200
) -> PairDistribution:
    """g(r) averaged over frames. ``positions`` is (frames, N, dim) or (N, dim), one cell per frame."""
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim == 2:
        positions = positions[None]
    typeid = np.ascontiguousarray(typeid, dtype=np.int64)
    n_types = len(types)
    counts = np.zeros((n_types, n_types, n_bins), dtype=np.float64)
    volume = 0.0
    dimension = cells[0].dimension
    for frame, cell in zip(positions, cells):
        grid = CellGrid.for_cell(cell, r_max, max_bins=frame.shape[0], divisions=2)  # bins of r_max / 2
        r = np.zeros((frame.shape[0], 3))
        r[:, : frame.shape[1]] = frame
        counts += _partial_pair_histogram(
            r,
            typeid,
            n_types,
            grid.h,
            grid.h_inv,
            grid.lo,
            grid.n,
            grid.periodic_z,
            float(r_max),
            n_bins,
            numba.get_num_threads(),
        )
        volume += cell.volume
    n_frames = len(positions)
    volume /= n_frames
    edges = np.linspace(0.0, r_max, n_bins + 1)
    shell = (4.0 / 3.0 * np.pi * np.diff(edges**3)) if dimension == 3 else np.pi * np.diff(edges**2)
    n_of = np.bincount(typeid, minlength=n_types).astype(np.float64)
    pairs = np.outer(n_of, n_of) - np.diag(n_of)
    with np.errstate(invalid="ignore", divide="ignore"):
        partial = volume * counts / n_frames / (pairs[:, :, None] * shell)
    n = len(typeid)
    total = volume * counts.sum(axis=(0, 1)) / n_frames / (n * (n - 1) * shell)
    return PairDistribution(0.5 * (edges[1:] + edges[:-1]), edges, np.nan_to_num(partial), total, tuple(types))


def first_minimum(r: np.ndarray, g: np.ndarray, smooth: int = 3) -> float:
    """The first local minimum of g after its main peak (g smoothed by a ``smooth``-bin running mean)."""
    gs = np.convolve(g, np.ones(smooth) / smooth, mode="same") if smooth > 1 else np.asarray(g)
    peak = int(np.argmax(gs))
    for k in range(peak + 1, len(gs) - 1):
        if gs[k] <= gs[k - 1] and gs[k] < gs[k + 1]:
            return float(r[k])
    raise ValueError("g(r) has no minimum after its first peak within the range computed")
