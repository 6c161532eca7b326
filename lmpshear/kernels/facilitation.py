"""Facilitation (the paper's eq. 10, Fig. 7b/d): the pair correlation g_cj(**r**) between the cage
jumps of a cluster as it yields and the jumps that follow in the whole system, its orientation
average g_cj(r), the anisotropy α(r) = ⟨[g_cj(**r**)/g_cj(r) − 1]²⟩_Ω and its range ξ_α.

Geometry only: the events come in already placed in one sheared cell (the cell at t1, later jumps
carried there by the affine flow: Cell.carry). Orientations are binned in K bins of equal solid
angle (2D: K sectors of θ; 3D: n bands of equal cos ϑ about the z axis × 2n sectors of φ), so that
g_cj(**r**)/g_cj(r) is a bin's count over the mean count of its shell.

Finite counts: for isotropic events a shell with C pairs in K bins gives E[α] = (1 − 1/K)·K/C (the
multinomial variance), which by itself decays like a power of r as C grows ∝ r^{D−1}; that bias is
subtracted, and shells with fewer than ``min_pairs`` pairs are not reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def orientation_bins(d: np.ndarray, bins: int) -> np.ndarray:
    """The equal-solid-angle bin of each separation (n, D). 2D: ``bins`` sectors of θ = atan2(y, x);
    3D: ``bins`` = 2n², n bands of cos ϑ (ϑ from the z axis, the vorticity) × 2n sectors of φ in xy."""
    if d.shape[1] == 2:
        theta = np.arctan2(d[:, 1], d[:, 0]) % (2 * np.pi)
        return np.minimum((theta / (2 * np.pi) * bins).astype(np.int64), bins - 1)
    n = int(round((bins / 2) ** 0.5))
    if 2 * n * n != bins:
        raise ValueError(f"3D orientation bins must be 2 n^2 (8, 18, 32, 50, ...); got {bins}")
    cos_t = d[:, 2] / np.maximum(np.linalg.norm(d, axis=1), 1e-300)
    band = np.minimum(((cos_t + 1) / 2 * n).astype(np.int64), n - 1)
    phi = np.arctan2(d[:, 1], d[:, 0]) % (2 * np.pi)
    sector = np.minimum((phi / (2 * np.pi) * 2 * n).astype(np.int64), 2 * n - 1)
    return band * 2 * n + sector


def checked_bins(bins: int, dim: int) -> int:
    """The orientation bins, which in 3D must be 2 n² (ValueError otherwise)."""
    if dim == 3 and 2 * round((bins / 2) ** 0.5) ** 2 != bins:
        raise ValueError(f"orientation_bins = {bins}: in 3D it must be 2 n^2 (8, 18, 32, 50, ...)")
    return bins


def shell_orientation_counts(
    sources: np.ndarray, targets: np.ndarray, cell, r_edges: np.ndarray, bins: int, chunk: int = 2_000_000
) -> np.ndarray:
    """Counts (shells, bins) of the separations target − source (minimum image in ``cell``) with
    r_edges[0] ≤ r < r_edges[-1]. Sources and targets (n, D) are event positions in one cell."""
    dim = sources.shape[1]
    counts = np.zeros((len(r_edges) - 1, bins), dtype=np.int64)
    per = max(1, chunk // max(1, len(targets)))
    for start in range(0, len(sources), per):
        s = sources[start : start + per]
        d = (targets[None, :, :] - s[:, None, :]).reshape(-1, dim)
        d = cell.minimum_image(d)
        r = np.linalg.norm(d, axis=1)
        ok = (r >= r_edges[0]) & (r < r_edges[-1]) & (r > 0)
        shell = np.searchsorted(r_edges, r[ok], side="right") - 1
        np.add.at(counts, (shell, orientation_bins(d[ok], bins)), 1)
    return counts


@dataclass(frozen=True)
class Anisotropy:
    r: np.ndarray  # shell centres
    g: np.ndarray  # g_cj(r), orientation-averaged (normalised by the target density)
    alpha_raw: np.ndarray  # ⟨(c_Ω/c̄ − 1)²⟩_Ω per shell
    alpha: np.ndarray  # minus the finite-count bias; NaN where a shell has too few pairs
    error: np.ndarray  # α's standard deviation for isotropic events: √(2(K−1)) / (K c̄)
    pairs: np.ndarray  # pairs per shell

    def as_dict(self) -> dict:
        return {k: np.asarray(v).tolist() for k, v in self.__dict__.items()}


def anisotropy(
    counts: np.ndarray, r_edges: np.ndarray, n_sources: int, target_density: float, dim: int, min_pairs: int = 50
) -> Anisotropy:
    """g_cj(r) and α(r) from pair counts (shells, bins)."""
    total = counts.sum(axis=1).astype(float)
    k = counts.shape[1]
    mean = total / k
    with np.errstate(invalid="ignore", divide="ignore"):
        raw = ((counts / mean[:, None] - 1.0) ** 2).mean(axis=1)
        alpha = raw - (1.0 - 1.0 / k) / mean
        error = np.sqrt(2 * (k - 1)) / (k * mean)  # Σ_Ω (c − c̄)²/c̄ is χ² with K − 1 degrees of freedom
        shell = (r_edges[1:] ** dim - r_edges[:-1] ** dim) * (np.pi if dim == 2 else 4 * np.pi / 3)
        norm = n_sources * target_density * shell
        g = np.where(norm > 0, total / np.where(norm > 0, norm, 1.0), np.nan)
    alpha[total < min_pairs] = np.nan
    return Anisotropy(0.5 * (r_edges[1:] + r_edges[:-1]), g, raw, alpha, error, total.astype(np.int64))


def breakpoint(r: np.ndarray, alpha: np.ndarray, error: np.ndarray | None = None, significance: float = 3.0) -> float:
    """ξ_α: where log α against log r is best fitted by two separate lines (least squares over every
    split with at least two shells on each side), at the midpoint between the split's shells. Shells
    where α is not ``significance`` × ``error`` above zero are noise: α is floored there at that
    level (the median over them), and without two neighbouring significant shells there is no range
    (NaN: a lone shell above 3 σ is expected among tens); nor when those shells lie beyond the
    split (a range must hold its anisotropy). Two free lines rather than a joined hinge: a sharp drop
    would otherwise pull the joint before it."""
    ok = np.isfinite(alpha)
    r, alpha = np.asarray(r)[ok], np.asarray(alpha)[ok]
    noise = significance * (np.asarray(error)[ok] if error is not None else np.zeros(len(r)))
    above = alpha > noise
    if len(r) < 4 or not (above[1:] & above[:-1]).any():  # a lone significant shell is a fluctuation
        return float("nan")
    floor = max(float(np.median(noise[alpha <= noise])) if (alpha <= noise).any() else 0.0, 1e-3 * float(alpha.max()))
    x, y = np.log(r), np.log(np.maximum(alpha, floor))

    def sse(xs, ys):
        coef = np.polyfit(xs, ys, 1)
        return float(((np.polyval(coef, xs) - ys) ** 2).sum())

    splits = range(2, len(x) - 1)
    best = min(splits, key=lambda k: sse(x[:k], y[:k]) + sse(x[k:], y[k:]))
    inner = above[:best]
    if not (inner[1:] & inner[:-1]).any():  # the range must hold the anisotropy, not noise beyond it
        return float("nan")
    return float(0.5 * (r[best - 1] + r[best]))
