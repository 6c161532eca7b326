"""The four-point structure factor under shear and its correlation length ξ_4 (Lačević, Starr, Schrøder
& Glotzer, J. Chem. Phys. 119, 7372 (2003); under steady shear: Mizuno & Yamamoto 2012).

For a time origin t0 and a lag t, each particle's mobility weight is the self overlap of its
non-affine displacement, w_i = θ(a − |r̃_i(t0 + t) − r̃_i(t0)|) (the w of χ4), and

    W(q, t) = Σ_i w_i exp(i q·r_i(t0)),      S4(q, t) = N⁻¹ [⟨|W(q, t)|²⟩ − |⟨W(q, t)⟩|²].

q runs over the reciprocal lattice of the sheared cell at t0 (q = 2π H⁻ᵀ n, n integer, H the cell's
lattice vectors as columns), so exp(i q·L) = 1 for every lattice vector L of that cell and any image
of r_i gives the same W; a box flip changes the basis, not the lattice, and so not the q-vectors.
With s_i the fractional coordinates of r_i, q·r_i = 2π n·s_i, and W is a product of powers of
exp(2πi s_ij), made per particle as it is summed (memory: the W arrays). For q ≠ 0, ⟨W(q)⟩ = 0 by translation
invariance, and each
origin has its own q-vectors (the tilt moves them), so the second term is taken as zero; the q → 0
limit is the self χ4's: N⁻¹ var(Σ w_i) = ρ k_BT χ4_self (the overlap stage's χ4_self = βV/N² var).
W(−q) = W(q)*: only half of the lattice is used.

|q| is binned in steps of Δq = 2π/L (L = V^{1/D}); a bin keeps at most ``per_bin`` vectors of each
origin (drawn with a fixed seed). Directional sets (the anisotropy shear brings) hold the vectors
within ``cone`` degrees of the flow (x), gradient (y) and vorticity (z) axes. Error bars: the spread
of the S4 of ``blocks`` runs of consecutive origins (standard error of their mean).

Fits over q ≤ ``fit_q_max``, weighted by the errors: Ornstein–Zernike S4(q) = S4(0)/(1 + (qξ)²), and
the same with a (qξ)⁴ term, S4(0)/(1 + (qξ)² + A (qξ)⁴) (the correction Flenner and Szamel use where
S4 falls faster than OZ); each reports ξ_4, S4(0), their errors from the covariance and the reduced χ².
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from scipy.optimize import curve_fit

#: directions of the anisotropic sets: flow, gradient, vorticity
AXES = {"flow": 0, "gradient": 1, "vorticity": 2}


def reciprocal_vectors(cell, q_max: float) -> tuple[np.ndarray, np.ndarray]:
    """The integer vectors n (half space: the first non-zero component positive) with 0 < |q| ≤ q_max,
    q = 2π H⁻ᵀ n in ``cell``; returns (n (M, D) int64, q (M, D))."""
    dim = cell.dimension
    h = cell.matrix()[:dim, :dim].T  # columns: the lattice vectors (the matrix's rows)
    b = 2 * np.pi * np.linalg.inv(h).T  # columns: the reciprocal vectors, a_i·b_j = 2π δ_ij
    reach = [int(np.floor(q_max * np.linalg.norm(h[:, j]) / (2 * np.pi))) for j in range(dim)]  # n_j = q·a_j/2π
    grids = np.meshgrid(*[np.arange(-r, r + 1) for r in reach], indexing="ij")
    n = np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)
    first = n[np.arange(len(n)), np.argmax(n != 0, axis=1)]  # each row's first non-zero entry (0 for n = 0)
    n = n[first > 0]
    q = n @ b.T
    keep = np.linalg.norm(q, axis=1) <= q_max
    return n[keep], q[keep]


#: particles per block of the parallel Fourier sums (each block keeps its own W: no write races)
_BLOCK = 2048


@numba.njit(parallel=True, cache=True)
def _fourier_sums(fractional, weights, n, reach):
    """W(n) = Σ_i w_i Π_j exp(2πi n_j s_ij) for every row of n. Each particle's powers of exp(2πi s_ij)
    are made on the fly (a few hundred numbers), so memory stays at the W arrays of the blocks."""
    m, dim = n.shape
    count = fractional.shape[0]
    blocks = (count + _BLOCK - 1) // _BLOCK
    partial = np.zeros((blocks, m), dtype=np.complex128)
    for b in numba.prange(blocks):
        powers = np.empty((dim, 2 * reach + 1), dtype=np.complex128)
        for i in range(b * _BLOCK, min(count, (b + 1) * _BLOCK)):
            if weights[i] == 0.0:
                continue
            for j in range(dim):
                z = np.exp(2j * np.pi * fractional[i, j])
                powers[j, reach] = 1.0
                for k in range(1, reach + 1):
                    powers[j, reach + k] = powers[j, reach + k - 1] * z
                    powers[j, reach - k] = np.conj(powers[j, reach + k])
            for k in range(m):
                term = weights[i] + 0.0j
                for j in range(dim):
                    term *= powers[j, n[k, j] + reach]
                partial[b, k] += term
    return partial.sum(axis=0)


def fourier_sums(fractional: np.ndarray, weights: np.ndarray, n: np.ndarray) -> np.ndarray:
    """W(n) = Σ_i w_i exp(2πi n·s_i) for fractional coordinates s (N, D) and integer vectors n (M, D)."""
    reach = int(np.abs(n).max()) if len(n) else 0
    return _fourier_sums(
        np.ascontiguousarray(fractional, dtype=np.float64),
        np.ascontiguousarray(weights, dtype=np.float64),
        np.ascontiguousarray(n, dtype=np.int64),
        reach,
    )


@dataclass(frozen=True)
class FourPoint:
    """S4(q) at one lag: per |q| bin (isotropic) and per direction set."""

    lag: int  # frames
    time: float
    q: np.ndarray  # mean |q| of each isotropic bin
    s4: np.ndarray
    error: np.ndarray
    vectors: np.ndarray  # q-vectors per bin, summed over origins
    directions: dict  # name -> {"q", "s4", "error", "vectors"}
    origins: int
    s4_zero: float  # N⁻¹ var(Σ w_i) over the origins: the q = 0 value (= ρ k_BT χ4_self)
    mobile_fraction: float  # 1 − ⟨w⟩

    def as_dict(self) -> dict:
        plain = lambda v: v.tolist() if isinstance(v, np.ndarray) else v  # noqa: E731
        return {
            "lag": self.lag,
            "time": self.time,
            "q": plain(self.q),
            "s4": plain(self.s4),
            "error": plain(self.error),
            "vectors": plain(self.vectors),
            "directions": {k: {kk: plain(vv) for kk, vv in d.items()} for k, d in self.directions.items()},
            "origins": self.origins,
            "s4_zero": self.s4_zero,
            "mobile_fraction": self.mobile_fraction,
        }


def four_point(
    positions: np.ndarray,
    nonaffine: np.ndarray,
    cells: list,
    origins: np.ndarray,
    lag: int,
    times: np.ndarray,
    a: float,
    *,
    q_max: float,
    per_bin: int,
    cone: float,
    blocks: int,
    seed: int = 0,
) -> FourPoint:
    """S4(q, t) at one frame lag over the given origin frames (arrays (frames, N, D); ``cells`` one per
    frame), with w_i the self overlap of r̃ over the lag. See the module's docstring."""
    weights = np.array([(((nonaffine[o + lag] - nonaffine[o]) ** 2).sum(axis=1) <= a * a) for o in origins])  # bool
    return structure_factor(
        weights,
        positions,
        [cells[o] for o in origins],
        q_max=q_max,
        per_bin=per_bin,
        cone=cone,
        blocks=blocks,
        seed=seed,
        lag=lag,
        time=float(times[lag] - times[0]),
        frames=origins,
    )


def structure_factor(
    weights: np.ndarray,
    positions: np.ndarray,
    cells: list,
    *,
    q_max: float,
    per_bin: int,
    cone: float,
    blocks: int,
    seed: int = 0,
    lag: int = 0,
    time: float = 0.0,
    frames=None,
) -> FourPoint:
    """N⁻¹⟨|Σ_i w_i exp(i q·r_i)|²⟩ binned in |q| and by direction, over samples (origins): ``weights``
    (samples, N), ``positions`` (samples, N, D) or, with ``frames``, (frames, N, D) read at those
    frames (no copy), and one cell per sample."""
    dim = cells[0].dimension
    n_samples, n_particles = weights.shape
    dq = 2 * np.pi / cells[0].volume ** (1.0 / dim)
    n_bins = int(np.floor(q_max / dq + 0.5))
    sets = {"iso": None} | {name: axis for name, axis in AXES.items() if axis < dim}
    cos_cone = math.cos(math.radians(cone))
    # per sample: Σ |W|², Σ |q| and the vector count in each (set, bin)
    sums = {k: np.zeros((n_samples, n_bins)) for k in sets}
    qsum = {k: np.zeros((n_samples, n_bins)) for k in sets}
    counts = {k: np.zeros((n_samples, n_bins)) for k in sets}
    rng = np.random.default_rng(seed)
    for o, cell in enumerate(cells):
        n, q = reciprocal_vectors(cell, q_max)
        size = np.linalg.norm(q, axis=1)
        bins = np.floor(size / dq + 0.5).astype(np.int64) - 1  # bin k holds |q| in [(k + 1/2)Δq, (k + 3/2)Δq)
        ok = (bins >= 0) & (bins < n_bins)
        chosen = {}
        for name, axis in sets.items():
            member = ok if axis is None else ok & (np.abs(q[:, axis]) >= cos_cone * size)
            picks: list[np.ndarray] = []
            for k in np.unique(bins[member]):
                here = np.flatnonzero(member & (bins == k))
                picks.append(here if len(here) <= per_bin else rng.choice(here, per_bin, replace=False))
            chosen[name] = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
        every = np.unique(np.concatenate(list(chosen.values())))
        power = np.zeros(len(n))
        r = np.zeros((n_particles, 3))
        r[:, :dim] = positions[o if frames is None else frames[o]][:, :dim]
        power[every] = np.abs(fourier_sums(cell.fractional(r)[:, :dim], weights[o], n[every])) ** 2 / n_particles
        for name, rows in chosen.items():
            np.add.at(sums[name][o], bins[rows], power[rows])
            np.add.at(qsum[name][o], bins[rows], size[rows])
            np.add.at(counts[name][o], bins[rows], 1)
    out = {}
    for name in sets:
        s4, error = _block_mean(sums[name], counts[name], blocks)
        with np.errstate(invalid="ignore", divide="ignore"):
            qmean = qsum[name].sum(axis=0) / counts[name].sum(axis=0)
        out[name] = {"q": qmean, "s4": s4, "error": error, "vectors": counts[name].sum(axis=0).astype(np.int64)}
    iso = out.pop("iso")
    totals = weights.sum(axis=1, dtype=np.float64)
    return FourPoint(
        int(lag),
        float(time),
        iso["q"],
        iso["s4"],
        iso["error"],
        iso["vectors"],
        out,
        n_samples,
        float(totals.var() / n_particles),
        float(1 - totals.mean() / n_particles),
    )


def _block_mean(sums: np.ndarray, counts: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean over every (origin, vector) of each bin, and its standard error from ``blocks`` runs of
    consecutive origins (consecutive origins are correlated)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums.sum(axis=0) / counts.sum(axis=0)
        b = min(blocks, len(sums))
        if b < 2:
            return mean, np.full(mean.shape, np.nan)
        edges = np.linspace(0, len(sums), b + 1).astype(int)
        per = np.array(
            [sums[edges[k] : edges[k + 1]].sum(axis=0) / counts[edges[k] : edges[k + 1]].sum(axis=0) for k in range(b)]
        )
        finite = np.isfinite(per).sum(axis=0)
        spread = np.array([np.std(col[np.isfinite(col)], ddof=1) if n > 1 else np.nan for col, n in zip(per.T, finite)])
        return mean, spread / np.sqrt(np.maximum(finite, 1))


@dataclass(frozen=True)
class LengthFit:
    form: str  # "oz" or "oz4"
    xi: float
    xi_error: float
    s4_zero: float
    s4_zero_error: float
    reduced_chi2: float
    points: int
    q_max: float
    extra: float = float("nan")  # A of the (qξ)⁴ term

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _oz(q, s0, xi):
    return s0 / (1 + (q * xi) ** 2)


def _oz4(q, s0, xi, a):
    return s0 / (1 + (q * xi) ** 2 + a * (q * xi) ** 4)


def fit_length(q: np.ndarray, s4: np.ndarray, error: np.ndarray, q_max: float, form: str = "oz") -> LengthFit:
    """ξ_4 and S4(0) from a weighted fit of S4(q) over 0 < q ≤ q_max (NaN where it cannot be fitted)."""
    ok = np.isfinite(q) & np.isfinite(s4) & (q <= q_max) & np.isfinite(error) & (error > 0)
    f, start = (_oz, [1.0, 1.0]) if form == "oz" else (_oz4, [1.0, 1.0, 0.0])
    nan = LengthFit(form, *[float("nan")] * 5, int(ok.sum()), q_max)  # type: ignore[call-arg, arg-type]
    if ok.sum() <= len(start):
        return nan
    x, y, e = q[ok], s4[ok], error[ok]
    start[0] = float(y[0]) * 1.5
    try:
        p, cov = curve_fit(
            f,
            x,
            y,
            p0=start,
            sigma=e,
            absolute_sigma=True,
            maxfev=20000,
            bounds=([0, 0] + ([-np.inf] if form == "oz4" else []), np.inf),
        )
    except (RuntimeError, ValueError):
        return nan
    chi2 = float((((f(x, *p) - y) / e) ** 2).sum() / (len(x) - len(p)))
    err = np.sqrt(np.diag(cov)) * math.sqrt(max(chi2, 1.0))  # scaled when the fit is worse than the errors
    return LengthFit(
        form,
        float(p[1]),
        float(err[1]),
        float(p[0]),
        float(err[0]),
        chi2,
        int(len(x)),
        q_max,
        float(p[2]) if form == "oz4" else float("nan"),
    )


def self_intermediate_scattering(nonaffine: np.ndarray, origins: np.ndarray, lags: np.ndarray, q: float) -> np.ndarray:
    """F_s(q, t) of the non-affine displacement, averaged over directions (3D: sin(qr)/qr, 2D: J0(qr))
    and origins, at each frame lag."""
    from scipy.special import j0

    dim = nonaffine.shape[2]
    out = []
    for lag in lags:
        use = origins[origins + lag < len(nonaffine)]
        total = 0.0
        for o in use:  # one origin at a time: memory of one frame
            r = np.linalg.norm(nonaffine[o + lag] - nonaffine[o], axis=1)
            total += float(j0(q * r).mean() if dim == 2 else np.sinc(q * r / np.pi).mean())
        out.append(total / len(use))
    return np.array(out)


def crossing(t: np.ndarray, y: np.ndarray, level: float) -> float:
    """First time y falls to ``level`` (interpolated in ln t); nan if it never does."""
    below = np.nonzero(y <= level)[0]
    if not len(below) or below[0] == 0:
        return float("nan")
    k = below[0]
    f = (y[k - 1] - level) / (y[k - 1] - y[k])
    return float(np.exp(np.log(t[k - 1]) + f * (np.log(t[k]) - np.log(t[k - 1]))))
