"""The pair correlation of cage jumps, g_jj(r), and its decay length ξ_jj: a length of the jumps' own
clustering that needs no sieve.

The jumps of a window [t_ref − W, t_ref) are carried by the affine flow to t_ref and placed in the
sheared cell at t_ref (:func:`lmpshear.kernels.cagejumps.carried_jumps`); every pair of jumps of two
different particles (a particle hopping back and forth is its own correlation, not the liquid's) is
counted at its Lees–Edwards minimum-image distance, and the counts are normalised by those of the
same number of pairs spread uniformly over the cell: g_jj(r) = counts / (pairs × shell volume / V).
Jumps sit on particles, so g_jj carries the liquid's own pair structure (no pair closer than a
diameter, the shells of g(r)). The same count is therefore made for the jumps placed by the
permuted-particles null (each jump moved to the position another particle has at the same frame),
g_null, and ξ_jj is fitted on the ratio g_jj/g_null: ratio − 1 = A e^{−r/ξ_jj} beyond the first
shells, weighted by the spread over windows; NaN where the fit finds no excess (the fitted excess
at the first fitted distance within two standard errors of zero) or a decay within one bin.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy.optimize import curve_fit

from lmpshear.neighbors import CellGrid, bin_of, binned, minimum_image


@numba.njit(parallel=True, cache=True)
def _jump_pair_histogram(r, particle, h, h_inv, lo, n, periodic_z, r_max, width, bins):
    """Each pair of jumps of different particles once, found through the cell list: r_max is below half
    the cell's narrowest width, so rounding the fractional separation is the minimum image. The jumps are
    walked in bin order, their coordinates copied into it: a bin's jumps lie side by side in memory, and
    "once" is the later of the two in that order."""
    s, order, start, table = binned(r, lo, h_inv, n)
    sorted_s = s[order]
    sorted_particle = particle[order]
    out = np.zeros((r.shape[0], bins), dtype=np.int64)  # per first jump, summed after: no write races
    r2max = r_max * r_max
    for a in numba.prange(r.shape[0]):
        here = bin_of(sorted_s[a, 0], sorted_s[a, 1], sorted_s[a, 2], n)
        # the cell-list walk (lmpshear.neighbors says why each kernel writes its own)
        for t in range(table.shape[1]):
            c = table[here, t]
            for b in range(max(start[c], a + 1), start[c + 1]):
                if sorted_particle[a] == sorted_particle[b]:
                    continue
                dx, dy, dz = minimum_image(
                    sorted_s[b, 0] - sorted_s[a, 0],
                    sorted_s[b, 1] - sorted_s[a, 1],
                    sorted_s[b, 2] - sorted_s[a, 2],
                    h,
                    periodic_z,
                )
                d2 = dx * dx + dy * dy + dz * dz
                if d2 < r2max:
                    k = int(math.sqrt(d2) / width)
                    if k < bins:
                        out[a, k] += 1
    return out.sum(axis=0)


def _shells(r_max: float, width: float) -> int:
    """The whole shells of ``width`` within r_max (the cell list allows no pair beyond it)."""
    return int(r_max / width + 1e-9)


def jump_pair_counts(
    events: np.ndarray, particles: np.ndarray, cell, r_max: float, width: float
) -> tuple[np.ndarray, float]:
    """Counts of jump pairs (different particles) in shells of ``width`` up to ``r_max`` (minimum image in
    ``cell``), and the number of such pairs."""
    r = np.zeros((len(events), 3))
    r[:, : events.shape[1]] = events
    bins = _shells(r_max, width)
    grid = CellGrid.for_cell(cell.reduced(), bins * width, max_bins=max(len(events), 1))
    particles = np.ascontiguousarray(particles, dtype=np.int64)
    counts = _jump_pair_histogram(
        r, particles, grid.h, grid.h_inv, grid.lo, grid.n, grid.periodic_z, bins * width, width, bins
    )
    _, per_particle = np.unique(particles, return_counts=True)
    pairs = len(particles) * (len(particles) - 1) / 2 - float((per_particle * (per_particle - 1) / 2).sum())
    return counts, pairs


def shell_volumes(edges: np.ndarray, dim: int) -> np.ndarray:
    return (edges[1:] ** dim - edges[:-1] ** dim) * (np.pi if dim == 2 else 4 * np.pi / 3)


@dataclass(frozen=True)
class JumpCorrelation:
    r: np.ndarray  # shell centres
    g: np.ndarray  # pooled over windows, over uniform pairs
    error: np.ndarray  # standard error over windows
    g_null: np.ndarray  # the same for the jumps placed on particles with permuted labels (the liquid's structure)
    ratio: np.ndarray  # g / g_null: the jumps' correlation beyond the liquid's own structure
    ratio_error: np.ndarray
    windows: int
    jumps: float  # mean jumps per window
    xi: float  # from the ratio
    xi_error: float
    amplitude: float
    reduced_chi2: float
    fit_range: tuple

    def as_dict(self) -> dict:
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.__dict__.items()}


def _pooled(windows: list, edges: np.ndarray, width: float, which: int) -> tuple[np.ndarray, np.ndarray]:
    """g pooled over windows (counts over uniform pairs) and its standard error over windows."""
    shells = shell_volumes(edges, windows[0][2].dimension)
    counts, expected, per_window = np.zeros(len(shells)), np.zeros(len(shells)), []
    for window in windows:
        events, particles, cell = window[which], window[1], window[2]
        c, pairs = jump_pair_counts(events, particles, cell, edges[-1], width)
        e = pairs * shells / cell.volume
        counts += c
        expected += e
        per_window.append(c / e)
    with np.errstate(invalid="ignore", divide="ignore"):
        error = (
            np.std(per_window, axis=0, ddof=1) / np.sqrt(len(per_window))
            if len(per_window) > 1
            else np.full(len(shells), np.nan)
        )
        return counts / expected, error


def jump_correlation(windows: list[tuple], r_max: float, width: float, fit_min: float) -> JumpCorrelation:
    """g_jj(r) pooled over windows, each (positions carried to its t_ref, particle ids, cell at t_ref,
    the same jumps placed by the permuted-particles null), its ratio to the null's (the liquid's own
    structure divided out), and ξ_jj from a weighted fit of ratio − 1 = A e^{−r/ξ} over fit_min ≤ r < r_max."""
    windows = [w for w in windows if len(w[0]) >= 2]
    edges = np.arange(0, _shells(r_max, width) + 1) * width
    r = 0.5 * (edges[1:] + edges[:-1])
    if not windows:
        empty = np.full(len(r), np.nan)
        return JumpCorrelation(r, empty, empty, empty, empty, empty, 0, 0.0, *(float("nan"),) * 4, (fit_min, r_max))
    g, error = _pooled(windows, edges, width, 0)
    g_null, null_error = _pooled(windows, edges, width, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = g / g_null
        ratio_error = np.abs(ratio) * np.sqrt((error / g) ** 2 + (null_error / g_null) ** 2)
    xi, xi_error, amplitude, chi2 = _fit_decay(r, ratio, ratio_error, fit_min)
    return JumpCorrelation(
        r,
        g,
        error,
        g_null,
        ratio,
        ratio_error,
        len(windows),
        float(np.mean([len(w[0]) for w in windows])),
        xi,
        xi_error,
        amplitude,
        chi2,
        (fit_min, float(edges[-1])),
    )


def _fit_decay(r, g, error, fit_min) -> tuple[float, float, float, float]:
    """ξ, its error, A and the reduced χ² of ratio − 1 = A e^{−r/ξ}, fitted as B e^{−(r−r0)/ξ} from the
    first fitted distance r0: B, the excess there, is what the data measure, where A, extrapolated
    to r = 0, carries ξ's error e^{r0/ξ}-fold and would call a clear excess insignificant."""
    ok = (r >= fit_min) & np.isfinite(g) & np.isfinite(error) & (error > 0)
    if ok.sum() < 4:
        return (float("nan"),) * 4
    x, y, e = r[ok], g[ok] - 1.0, error[ok]
    x0 = float(x[0])
    f = lambda x, b, xi: b * np.exp(-(x - x0) / xi)  # noqa: E731
    try:
        p, cov = curve_fit(
            f,
            x,
            y,
            p0=[max(float(y[0]), 1e-3), 1.0],
            sigma=e,
            absolute_sigma=True,
            bounds=([0.0, 1e-3], [np.inf, 1e3]),
            maxfev=20000,
        )
    except (RuntimeError, ValueError):
        return (float("nan"),) * 4
    chi2 = float((((f(x, *p) - y) / e) ** 2).sum() / (len(x) - 2))
    amplitude = float(p[0] * math.exp(min(x0 / p[1], 700.0)))
    if p[1] < r[1] - r[0] or p[0] < 2 * np.sqrt(cov[0, 0]):  # shorter than a bin, or no significant excess
        return float("nan"), float("nan"), amplitude, chi2
    return float(p[1]), float(np.sqrt(cov[1, 1]) * math.sqrt(max(chi2, 1.0))), amplitude, chi2
