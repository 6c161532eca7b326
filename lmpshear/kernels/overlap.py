"""Overlap Q(t) and the four-point dynamic susceptibility χ4(t) (the paper's eq. 14).

Collective overlap between a time origin t0 and t0 + t, with the paper's shear correction on j::

    Q(t) = Σ_i Σ_j w(|r_i(t0+t) − r_j(t0) − γ̇ ∫ (y_j − y_lo) dt' e_x|),   w(r) = 1 if r ≤ a

r_j(t0) + γ̇∫(y_j − y_lo)dt' e_x = r_j(t0+t) − [r̃_j(t0+t) − r̃_j(t0)]: j's origin carried by the
flow along its own path, which is a point of the current (sheared) cell. The double sum is a pair
search with cell lists in that cell, O(N) per (origin, lag). The self overlap keeps i = j only:
Q_s(t) = Σ_i w(|r̃_i(t0+t) − r̃_i(t0)|).

χ4(t) = βV/N² (⟨Q²⟩ − ⟨Q⟩²), averaged over time origins in the steady state.

t_χ, the time of the χ4 peak, is the vertex of a parabola fitted to ln χ4 against ln t over the
contiguous lags around the maximum where χ4 ≥ ``fraction`` × its maximum (:func:`chi4_peak`). The
argmax alone is quantised to the log grid of lags and, on a broad peak with ~10-20 % noise per lag,
jumps between neighbouring lags from one run of a state to the next; the fit uses every lag of the
peak. Fewer than 3 such lags, a parabola that opens upward or a vertex outside them: the argmax.

Error bars: a delete-one-block jackknife over ``JACKKNIFE_BLOCKS`` runs of consecutive origins
(consecutive origins are correlated, so single-origin resampling would understate the error), for
χ4 at each lag and for t_χ (the fitted vertex of each jackknife sample's curve, over the same lags;
for the argmax fallback the spread of its argmax, which is a lower bound: the jackknife is not
consistent for an argmax).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numba
import numpy as np

from lmpshear.cell import Cell
from lmpshear.neighbors import CellGrid, bin_particles, fractional, minimum_image


@numba.njit(cache=True, inline="always")
def _bins_within(s, reach, n):
    """The first and last bin (unwrapped: may lie outside 0..n-1) holding fractional coordinates within
    ``reach`` of s; the whole axis, each bin once, where that span covers it."""
    if n == 1:
        return 0, 0
    first = int(np.floor((s - reach) * n))
    last = int(np.floor((s + reach) * n))
    if last - first + 1 >= n:
        return 0, n - 1
    return first, last


@numba.njit(cache=True, inline="always")
def _wrapped(b, n):
    """Bin b of an axis of n bins, b within one axis length of 0..n-1 (a modulo without the division)."""
    if b < 0:
        return b + n
    if b >= n:
        return b - n
    return b


@numba.njit(cache=True)
def _binned_frame(position, lo, h_inv, n):
    """A frame's positions as the overlap reads them: fractional coordinates sorted by bin, the bins'
    starts, and the bin order of the particles (the order the references are walked in)."""
    N, dim = position.shape
    padded = np.zeros((N, 3))
    padded[:, :dim] = position
    sq = fractional(padded, lo, h_inv)
    order, start = bin_particles(sq, n)
    return sq[order], start, order


@numba.njit(parallel=True, cache=True)
def _overlaps(sq, start, walk, position_t, nonaffine_t, nonaffine_0, h, h_inv, lo, n, periodic_z, a, reach):
    """(Q, Q_self) for one origin and lag, arrays (N, dim). Q counts the (i, j) with |r_i(t) − r_j^adv| ≤ a
    (minimum image), r_j^adv = r_j(t) − [r̃_j(t) − r̃_j(0)]; ``sq``, ``start`` and ``walk`` are the
    frame at t binned once (:func:`_binned_frame`) for every origin that reaches it. A point within a
    of reference j has each fractional coordinate within ``reach`` = a / (the cell's plane spacing) of
    j's, so only the bins overlapping that box are read: one or two per axis when bins are at least 2a
    thick. The references are walked in the frame's bin order (r_j^adv lies near r_j(t)), so
    neighbouring ones read the same few cache lines, and nothing is sorted per call."""
    N, dim = position_t.shape
    ref = np.zeros((N, 3))
    a2 = a * a
    n_self = 0
    for i in numba.prange(N):
        moved = 0.0
        for k in range(dim):
            d = nonaffine_t[i, k] - nonaffine_0[i, k]
            moved += d * d
            ref[i, k] = position_t[i, k] - d
        if moved <= a2:
            n_self += 1
    s = fractional(ref, lo, h_inv)
    total = 0
    for w in numba.prange(N):
        j = walk[w]
        f0, l0 = _bins_within(s[j, 0], reach[0], n[0])
        f1, l1 = _bins_within(s[j, 1], reach[1], n[1])
        f2, l2 = _bins_within(s[j, 2], reach[2], n[2])
        count = 0
        # the cell-list walk (lmpshear.neighbors says why each kernel writes its own), here over the bins
        # within a of the point rather than a fixed neighbour table
        for b0 in range(f0, l0 + 1):
            c0 = _wrapped(b0, n[0])
            for b1 in range(f1, l1 + 1):
                c1 = c0 * n[1] + _wrapped(b1, n[1])
                for b2 in range(f2, l2 + 1):
                    c = c1 * n[2] + _wrapped(b2, n[2])
                    for m in range(start[c], start[c + 1]):
                        dx, dy, dz = minimum_image(
                            s[j, 0] - sq[m, 0], s[j, 1] - sq[m, 1], s[j, 2] - sq[m, 2], h, periodic_z
                        )
                        if dx * dx + dy * dy + dz * dz <= a2:
                            count += 1
        total += count
    return total, n_self


class FrameOverlaps:
    """The frame at t0 + t binned once (its cell's grid for the radius a); :meth:`overlaps` then gives
    (Q, Q_self) against any origin's r̃. The stage visits each frame once and counts every origin that
    reaches it there, instead of binning both point sets for each (origin, lag)."""

    def __init__(self, position_t: np.ndarray, nonaffine_t: np.ndarray, cell_t: Cell, a: float):
        self.position = np.ascontiguousarray(position_t, dtype=np.float64)
        self.nonaffine = np.ascontiguousarray(nonaffine_t, dtype=np.float64)
        self.grid = CellGrid.for_cell(cell_t, a, max_bins=len(position_t))
        self.reach = a / cell_t.widths()
        if cell_t.dimension == 2:
            self.reach[2] = 0.0
        self.a = float(a)
        self.sq, self.start, self.walk = _binned_frame(self.position, self.grid.lo, self.grid.h_inv, self.grid.n)

    def overlaps(self, nonaffine_0: np.ndarray) -> tuple[int, int]:
        g = self.grid
        q, q_self = _overlaps(
            self.sq,
            self.start,
            self.walk,
            self.position,
            self.nonaffine,
            np.ascontiguousarray(nonaffine_0, dtype=np.float64),
            g.h,
            g.h_inv,
            g.lo,
            g.n,
            g.periodic_z,
            self.a,
            self.reach,
        )
        return int(q), int(q_self)


def overlaps(
    position_t: np.ndarray, nonaffine_t: np.ndarray, nonaffine_0: np.ndarray, cell_t: Cell, a: float
) -> tuple[int, int]:
    """(Q, Q_self) for one origin and lag: positions at t0+t (any image), r̃ at t0+t and at t0."""
    return FrameOverlaps(position_t, nonaffine_t, cell_t, a).overlaps(nonaffine_0)


def collective_overlap(
    position_t: np.ndarray, nonaffine_t: np.ndarray, nonaffine_0: np.ndarray, cell_t: Cell, a: float
) -> int:
    """Q for one origin and lag (:func:`overlaps`)."""
    return overlaps(position_t, nonaffine_t, nonaffine_0, cell_t, a)[0]


def self_overlap(nonaffine_t: np.ndarray, nonaffine_0: np.ndarray, a: float) -> int:
    return int(np.count_nonzero(((nonaffine_t - nonaffine_0) ** 2).sum(axis=1) <= a * a))


@dataclass(frozen=True)
class Susceptibility:
    lags: np.ndarray  # frames
    times: np.ndarray
    q: np.ndarray  # ⟨Q⟩/N, collective
    chi4: np.ndarray
    q_self: np.ndarray
    chi4_self: np.ndarray
    n_origins: np.ndarray  # origins averaged at each lag
    a: float
    t_chi: float  # the fitted peak (chi4_peak)
    t_chi_self: float
    chi4_error: np.ndarray  # jackknife standard errors
    chi4_self_error: np.ndarray
    t_chi_error: float
    t_chi_argmax: float  # the lag of the largest χ4
    t_chi_method: str  # "fit" or "argmax" (the fit's fallback)
    t_chi_lags: tuple[float, float]  # the lag times the fit used
    t_chi_fraction: float

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}


def log_lags(max_lag: int, n: int) -> np.ndarray:
    """About ``n`` distinct frame lags from 1 to ``max_lag``, evenly spaced in log."""
    if max_lag < 1:
        raise ValueError("need at least two frames")
    return np.unique(np.round(np.geomspace(1, max_lag, n)).astype(np.int64))


def origins_in(first: int, last: int, max_origins: int) -> np.ndarray:
    """Up to ``max_origins`` evenly spread frames in [first, last]."""
    count = min(max_origins, last - first + 1)
    return np.unique(np.round(np.linspace(first, last, count)).astype(np.int64))


#: runs of consecutive origins in the jackknife
JACKKNIFE_BLOCKS = 10


def jackknife_variance(values: np.ndarray, blocks: int = JACKKNIFE_BLOCKS) -> tuple[np.ndarray, float]:
    """The variances of ``values`` with each of ``blocks`` contiguous runs left out, and the jackknife
    standard error of the variance (nan with fewer than 2 blocks of 2 values)."""
    n = len(values)
    b = min(blocks, n // 2)
    if b < 2:
        return np.full(1, values.var()), float("nan")
    edges = np.linspace(0, n, b + 1).astype(int)
    keep = [np.concatenate([values[: edges[k]], values[edges[k + 1] :]]) for k in range(b)]
    partial = np.array([v.var() for v in keep])
    return partial, float(np.sqrt((b - 1) / b * ((partial - partial.mean()) ** 2).sum()))


def susceptibility(
    positions: np.ndarray,
    nonaffine: np.ndarray,
    cells: list[Cell],
    times: np.ndarray,
    temperature: float,
    a: float,
    origins: np.ndarray,
    lags: np.ndarray,
    fraction: float = 0.7,
) -> Susceptibility:
    """χ4 and ⟨Q⟩/N over the given origin frames and frame lags (arrays are (frames, N, dim)), and t_χ
    fitted over the peak's lags with χ4 ≥ ``fraction`` × its maximum.

    A lag is kept when at least two origins fit before the last frame; βV/N² uses each frame's volume.
    """
    n_frames, N = positions.shape[:2]
    used = {int(lag): origins[origins + lag < n_frames] for lag in lags}
    used = {lag: use for lag, use in used.items() if len(use) >= 2}
    # each frame t0 + t is binned once and counted there against every origin that reaches it
    both = {lag: np.zeros((len(use), 2)) for lag, use in used.items()}
    slot = {lag: {int(o): k for k, o in enumerate(use)} for lag, use in used.items()}
    for f in sorted({int(o) + lag for lag, use in used.items() for o in use}):
        frame = FrameOverlaps(positions[f], nonaffine[f], cells[f], a)
        for lag in used:
            k = slot[lag].get(f - lag)
            if k is not None:
                both[lag][k] = frame.overlaps(nonaffine[f - lag])
    kept, q, chi, qs, chis, counts, errors, errors_self, partials = [], [], [], [], [], [], [], [], []
    for lag, use in used.items():
        Q, Qs = np.ascontiguousarray(both[lag][:, 0]), np.ascontiguousarray(both[lag][:, 1])
        volume = np.mean([cells[o + lag].volume for o in use])
        factor = volume / (temperature * N * N)
        kept.append(lag)
        q.append(Q.mean() / N)
        chi.append(factor * Q.var())
        qs.append(Qs.mean() / N)
        chis.append(factor * Qs.var())
        counts.append(len(use))
        partial, error = jackknife_variance(Q)
        errors.append(factor * error)
        errors_self.append(factor * jackknife_variance(Qs)[1])
        partials.append(factor * partial)
    if not kept:
        raise ValueError("not enough frames after the first origin for any lag")
    lags_kept = np.array(kept)
    lag_times = times[lags_kept] - times[0]
    chi4, chi4_self = np.array(chi), np.array(chis)
    t_chi, fitted, method = chi4_peak(lag_times, chi4, fraction)
    error = _peak_error(lag_times, partials, fitted if method == "fit" else None)
    return Susceptibility(
        lags_kept,
        lag_times,
        np.array(q),
        chi4,
        np.array(qs),
        chi4_self,
        np.array(counts),
        float(a),
        t_chi,
        chi4_peak(lag_times, chi4_self, fraction)[0],
        np.array(errors),
        np.array(errors_self),
        error,
        float(lag_times[np.argmax(chi4)]),
        method,
        (float(lag_times[fitted][0]), float(lag_times[fitted][-1])),
        float(fraction),
    )


def chi4_peak(times: np.ndarray, chi: np.ndarray, fraction: float) -> tuple[float, slice, str]:
    """The time of the χ4 peak, the lags it was found from and how ("fit" or "argmax"; module doc)."""
    top = int(np.argmax(chi))
    lo = hi = top
    while lo > 0 and chi[lo - 1] >= fraction * chi[top]:
        lo -= 1
    while hi < len(chi) - 1 and chi[hi + 1] >= fraction * chi[top]:
        hi += 1
    lags = slice(lo, hi + 1)
    vertex = _vertex(times[lags], chi[lags])
    if vertex is None:
        return float(times[top]), slice(top, top + 1), "argmax"
    return vertex, lags, "fit"


def _vertex(times: np.ndarray, chi: np.ndarray) -> float | None:
    """exp of the vertex of the least-squares parabola of ln χ4 in ln t, if it has one within ``times``."""
    if len(times) < 3 or np.any(chi <= 0):
        return None
    c2, c1, _ = np.polyfit(np.log(times), np.log(chi), 2)
    if not c2 < 0:
        return None
    vertex = float(np.exp(-c1 / (2 * c2)))
    return vertex if times[0] <= vertex <= times[-1] else None


def _peak_error(lag_times: np.ndarray, partials: list[np.ndarray], fitted: slice | None) -> float:
    """Jackknife standard error of t_χ (samples: the same block left out at every lag). ``fitted``: the
    lags of the fit, refitted on each sample (a sample without a vertex there takes its argmax over them);
    None: the argmax over the lags with the most blocks."""
    b = max(len(p) for p in partials)
    if b < 2:
        return float("nan")
    if fitted is None:
        usable = [k for k, p in enumerate(partials) if len(p) == b]
        peaks = np.array([lag_times[usable][np.argmax([partials[k][j] for k in usable])] for j in range(b)])
    else:
        if any(len(p) != b for p in partials[fitted]):
            return float("nan")
        t = lag_times[fitted]
        samples = np.array([[p[j] for p in partials[fitted]] for j in range(b)])
        peaks = np.array([_vertex(t, s) or float(t[np.argmax(s)]) for s in samples])
    return float(np.sqrt((b - 1) / b * ((peaks - peaks.mean()) ** 2).sum()))
