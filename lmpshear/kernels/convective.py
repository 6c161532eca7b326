"""Convective clusters: a dynamic region traced back in time with the flow (the paper's Fig. 1c, 2, 3).

Traceback. A region found at t_ref (:mod:`lmpshear.kernels.regions`) is a set of points in the cell
at t_ref; at an earlier time t its boundary is that set carried backwards by the affine flow.
Instead of moving the boundary, each particle's position at t is carried *forward* to t_ref and
looked up in the region's grid: the members at t, in O(N) per frame.

Stress (eq. 2–4). Ω_α per eq. 3 (Ω_α ∝ d_α^D, Σ_α N_α Ω_α = V). The store's per-particle virial
shear stress × volume S_i splits each pair's virial equally between its two particles (eq. 2 as
printed counts each pair from both sides), so that σ_i = S_i/Ω_i and Σ_i σ_i Ω_i / V is exactly the
global virial stress. σ_c(t) = Σ_{i∈F(t)} σ_i Ω_i / V_F (eq. 4, V_F the region's volume).

Strain (eq. 5–7, Falk & Langer). Over the members F, relative to their centroid, the affine map that
best carries their separations from t − Δt/2 to t + Δt/2: F = X Y⁻¹ and the increment γ_c = F_xy.
The cumulative strain from t0 applies the same fit between t0 and t over the members at t0.
Separations are minimum images in the sheared cell, continued along each particle's unwrapped path
and with the sliding of the periodic image they were taken in, so a cluster straddling the sliding
boundary is handled.

Yield times (:func:`yield_times`): t2 is the maximum of the smoothed σ_c; t0, t1 and t3 are the
breaks of continuous two-segment linear fits before t2, on [t0, t2] and after t2.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numba
import numpy as np

from lmpshear.kernels.cagejumps import carried_jumps, null_jumps
from lmpshear.kernels.regions import (
    background_threshold,
    coarse_field,
    contrast_spheres,
    demarcate,
    dispersion_index,
    kernel_integral,
    labels_at,
    radius_of_volume,
    region_lookup,
    significance_threshold,
)
from lmpshear.cell import Cell
from lmpshear.errors import UserError


def atomic_volumes(typeid: np.ndarray, diameters: np.ndarray, volume: float, dimension: int) -> np.ndarray:
    """Ω_i by eq. 3: Ω_α ∝ d_α^D with Σ_i Ω_i = V."""
    weight = np.asarray(diameters, dtype=np.float64)[typeid] ** dimension
    return weight * (volume / weight.sum())


def atomic_shear_stress(virial_xy: np.ndarray, omega: np.ndarray) -> np.ndarray:
    """σ_i,xy = S_i / Ω_i (eq. 2 with each pair's virial split equally)."""
    return np.asarray(virial_xy) / omega


def cluster_stress(sigma: np.ndarray, omega: np.ndarray, members: np.ndarray, region_volume: float) -> float:
    """σ_c = Σ_{i∈F} σ_i Ω_i / V_F (eq. 4)."""
    return float((sigma[members] * omega[members]).sum() / region_volume)


def carried_separations(unwrapped_before: np.ndarray, unwrapped_after: np.ndarray, members: np.ndarray,
                        cell_before: Cell, strain: float) -> tuple[np.ndarray, np.ndarray]:
    """Member positions relative to the first member at two times, (M, 3) each. At the first time they
    are minimum images in ``cell_before``; each is carried to the second time by the two particles'
    unwrapped displacements plus the drift of its periodic image: an image n_y cells up slides by
    n_y·L_y·Δγ along x (``strain`` Δγ, the applied strain between the two times)."""
    dim = unwrapped_before.shape[1]
    raw = np.zeros((len(members), 3))
    raw[:, :dim] = unwrapped_before[members] - unwrapped_before[members[0]]
    before = cell_before.minimum_image(raw)
    n_y = np.rint((before[:, 1] - raw[:, 1]) / cell_before.ly)
    after = before.copy()
    after[:, :dim] += (unwrapped_after[members] - unwrapped_before[members]) - (
        unwrapped_after[members[0]] - unwrapped_before[members[0]])
    after[:, 0] += n_y * cell_before.ly * strain
    return before, after


def affine_fit(before: np.ndarray, after: np.ndarray, dimension: int) -> np.ndarray:
    """Falk–Langer deformation gradient F = X Y⁻¹ (eq. 5–7) from centroid-relative positions."""
    b = before[:, :dimension] - before[:, :dimension].mean(axis=0)
    a = after[:, :dimension] - after[:, :dimension].mean(axis=0)
    X = a.T @ b
    Y = b.T @ b
    return X @ np.linalg.inv(Y)


def shear_strain(unwrapped_before: np.ndarray, unwrapped_after: np.ndarray, members: np.ndarray, cell_before: Cell,
                 strain: float, dimension: int) -> float:
    """γ = F_xy of the best affine map of the members from one time to another (``strain``: the
    applied strain in between, which moves the sliding images): :func:`affine_fit` of
    :func:`carried_separations`, in one compiled pass (the traceback calls it for every frame of
    every cluster)."""
    if len(members) <= dimension:
        return float("nan")
    c = cell_before  # the frames as they are (a 2D run's are strided views of 3 columns): no copy of N rows
    return float(_shear_strain(np.asarray(unwrapped_before, dtype=np.float64),
                               np.asarray(unwrapped_after, dtype=np.float64),
                               np.asarray(members, dtype=np.int64), c.lx, c.ly, c.lz, c.xy, float(strain),
                               dimension, c.dimension == 3))


@numba.njit(cache=True)
def _shear_strain(before_all, after_all, members, lx, ly, lz, xy, strain, dim, periodic_z):
    # one pass: each member's separation from the first at both times (b, a), summed into the moments
    # X = Σ a bᵀ − m ā b̄ᵀ and Y = Σ b bᵀ − m b̄ b̄ᵀ (centroid-relative, as affine_fit); scalars
    # throughout, so that they stay in registers (small arrays indexed in the loop are 5x slower)
    m = len(members)
    first = members[0]
    f0, f1 = before_all[first, 0], before_all[first, 1]
    f2 = before_all[first, 2] if dim == 3 else 0.0
    g0 = after_all[first, 0] - f0  # the first member's own x displacement
    sb0 = sb1 = sb2 = sa0 = 0.0
    x00 = x01 = x02 = y00 = y01 = y02 = y11 = y12 = y22 = 0.0
    for i in range(m):
        p = members[i]
        b0, b1 = before_all[p, 0] - f0, before_all[p, 1] - f1
        b2 = before_all[p, 2] - f2 if dim == 3 else 0.0
        raw_y = b1
        if periodic_z and dim == 3:  # Cell.minimum_image: z, then y (sliding x with it), then x
            b2 -= np.rint(b2 / lz) * lz
        my = np.rint(b1 / ly)
        b0 -= my * xy
        b1 -= my * ly
        b0 -= np.rint(b0 / lx) * lx
        # only the x row of X enters F_xy; the image's slide moves a_x
        a0 = b0 + (after_all[p, 0] - before_all[p, 0]) - g0 + np.rint((b1 - raw_y) / ly) * ly * strain
        sb0 += b0
        sb1 += b1
        sb2 += b2
        sa0 += a0
        x00 += a0 * b0
        x01 += a0 * b1
        x02 += a0 * b2
        y00 += b0 * b0
        y01 += b0 * b1
        y02 += b0 * b2
        y11 += b1 * b1
        y12 += b1 * b2
        y22 += b2 * b2
    x00 -= sa0 * sb0 / m
    x01 -= sa0 * sb1 / m
    x02 -= sa0 * sb2 / m
    y00 -= sb0 * sb0 / m
    y01 -= sb0 * sb1 / m
    y02 -= sb0 * sb2 / m
    y11 -= sb1 * sb1 / m
    y12 -= sb1 * sb2 / m
    y22 -= sb2 * sb2 / m
    # F_xy = (X Y⁻¹)_01 = Σ_i X_0i (Y⁻¹)_i1: the second column of the symmetric Y's inverse, by cofactors
    if dim == 2:
        return (x01 * y00 - x00 * y01) / (y00 * y11 - y01 * y01)
    det = y00 * (y11 * y22 - y12 * y12) - y01 * (y01 * y22 - y12 * y02) + y02 * (y01 * y12 - y11 * y02)
    return (-x00 * (y01 * y22 - y02 * y12) + x01 * (y00 * y22 - y02 * y02) - x02 * (y00 * y12 - y01 * y02)) / det


def smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` samples (odd), shrinking at the ends."""
    if width <= 1:
        return np.asarray(values, dtype=np.float64)
    kernel = np.ones(width)
    num = np.convolve(values, kernel, mode="same")
    den = np.convolve(np.ones(len(values)), kernel, mode="same")
    return num / den


def _two_segment_break(t: np.ndarray, y: np.ndarray) -> int:
    """Index k (2 ≤ k ≤ n − 3) of the breakpoint of the best continuous two-segment linear fit (least
    squares on the basis 1, t, (t − t_k)_+), first k on ties. Every k at once: the normal equations'
    sums over i > k are suffix sums, so the scan costs O(n) rather than a least-squares fit per k."""
    n = len(t)
    if n < 5:
        return n // 2
    t = np.asarray(t, dtype=np.float64) - t[0]  # centred for conditioning: the fit is the same
    y = np.asarray(y, dtype=np.float64)
    y = y - y.mean()

    def after(v):  # Σ_{i>k} v_i for every k
        return np.concatenate([np.cumsum(v[::-1])[::-1][1:], [0.0]])

    k = np.arange(2, n - 2)
    tk, m = t[k], (n - 1 - k).astype(np.float64)
    s1, s2, sy, sty = after(t)[k], after(t * t)[k], after(y)[k], after(t * y)[k]
    gram = np.empty((len(k), 3, 3))
    gram[:, 0, 0], gram[:, 0, 1], gram[:, 1, 1] = n, t.sum(), (t * t).sum()
    gram[:, 0, 2] = s1 - m * tk  # Σ u,  u = (t − t_k)_+
    gram[:, 1, 2] = s2 - tk * s1  # Σ t u
    gram[:, 2, 2] = s2 - 2 * tk * s1 + m * tk * tk  # Σ u²
    gram[:, 1, 0], gram[:, 2, 0], gram[:, 2, 1] = gram[:, 0, 1], gram[:, 0, 2], gram[:, 1, 2]
    rhs = np.stack([np.full(len(k), y.sum()), np.full(len(k), (t * y).sum()), sty - tk * sy], axis=1)
    coef = np.linalg.solve(gram, rhs[..., None])[..., 0]
    residual = (y * y).sum() - (coef * rhs).sum(axis=1)  # least squares: |y|² − β·Aᵀy
    return int(k[np.argmin(residual)])


@dataclass(frozen=True)
class YieldTimes:
    t0: float
    t1: float
    t2: float
    t3: float
    stress_at_yield: float  # σ_c,y: the smoothed σ_c at t2
    indices: tuple[int, int, int, int]


def yield_times(t: np.ndarray, sigma: np.ndarray, smoothing: int = 5) -> YieldTimes | None:
    """t0 (start of the rise), t1 (end of the linear growth), t2 (yield: the maximum), t3 (end of the
    drop) of a cluster stress curve; None when there is no rise and drop to detect.

    t2 is the maximum of the smoothed curve; t0 the break of the best continuous two-segment linear
    fit before t1 (flat, then rising), t1 the same on [t0, t2] (each refined once from the other),
    t3 the same after t2 (drop, then flat)."""
    t = np.asarray(t, dtype=np.float64)
    if len(t) < 12:
        return None
    s = smooth(np.asarray(sigma, dtype=np.float64), smoothing | 1)
    i2 = int(np.argmax(s))
    if i2 < 5 or i2 > len(t) - 6:
        return None
    i0, i1 = _two_segment_break(t[: i2 + 1], s[: i2 + 1]), i2
    for _ in range(2):  # the first guess of t0 sees three segments; refine on [0, t1], then t1 again
        i1 = i0 + _two_segment_break(t[i0: i2 + 1], s[i0: i2 + 1]) if i2 - i0 >= 5 else (i0 + i2) // 2
        i0 = _two_segment_break(t[: i1 + 1], s[: i1 + 1]) if i1 >= 5 else i0
    i3 = i2 + _two_segment_break(t[i2:], s[i2:])
    return YieldTimes(float(t[i0]), float(t[i1]), float(t[i2]), float(t[i3]), float(s[i2]), (i0, i1, i2, i3))


def extensional_share(vectors: np.ndarray) -> float:
    """P_ext: the share of jump vectors whose shear-plane projection lies in quadrant 1 or 3."""
    if len(vectors) == 0:
        return float("nan")
    return float((vectors[:, 0] * vectors[:, 1] > 0).mean())


def _jumps_per_frame(jump_frames: np.ndarray, vectors: np.ndarray, frames: np.ndarray) -> dict:
    """n_cj (jumps) and P_ext (their extensional share; NaN without jumps) at each of the
    consecutive ``frames``, from the jumps' frames and vectors."""
    at = jump_frames - frames[0]
    ok = (at >= 0) & (at < len(frames))
    count = np.bincount(at[ok], minlength=len(frames))
    extensional = np.bincount(at[ok], weights=(vectors[ok, 0] * vectors[ok, 1] > 0), minlength=len(frames))
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(count > 0, extensional / count, np.nan)
    return {"n_cj": count.tolist(), "p_ext": share.tolist()}


def largest_rise(values: np.ndarray) -> float:
    """The largest increase of a curve from a point to a later one (its biggest run-up)."""
    v = np.asarray(values, dtype=np.float64)
    return float((v - np.minimum.accumulate(v)).max()) if len(v) else float("nan")


def trace_region(inside: np.ndarray, frames: np.ndarray, times: np.ndarray, unwrapped: np.ndarray, virial_xy: np.ndarray,
           cells: list[Cell], rate: float, volume: float, dim: int, smoothing: int) -> dict:
    """σ_c(t) (eq. 4), the strain increments over each Δt (eq. 5–7) and the cumulative strain of the
    members at the first traced frame, for a region whose members at each traced frame are ``inside``."""
    n_frames = len(unwrapped)
    sigma = np.array([virial_xy[k][inside[m]].sum() / volume for m, k in enumerate(frames)])
    increments = np.array([shear_strain(unwrapped[k], unwrapped[k + 1], np.flatnonzero(inside[m]), cells[k],
                                        rate * (times[k + 1] - times[k]), dim)
                           if k + 1 < n_frames else np.nan for m, k in enumerate(frames)])
    return {"t": times[frames], "sigma": sigma, "strain_increment": increments,
            "rise": largest_rise(smooth(sigma, smoothing | 1))}


def cumulative_strain(inside: np.ndarray, frames: np.ndarray, start: int, times: np.ndarray, unwrapped: np.ndarray,
                cells: list[Cell], rate: float, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """Strain from traced frame ``start`` over the members then, and R(t) = 1 − N_res(t)/N_res(t_start)."""
    members = np.flatnonzero(inside[start])
    k0 = frames[start]
    strain = np.array([shear_strain(unwrapped[k0], unwrapped[k], members, cells[k0], rate * (times[k] - times[k0]), dim)
                       for k in frames])
    resident = inside[:, members].sum(axis=1)
    return strain, 1.0 - resident / max(len(members), 1)


def _flat(region, fine: int) -> list[int]:
    """A region's fine-grid nodes as flat indices (for the figures, which draw its boundary)."""
    return np.ravel_multi_index(tuple(region.nodes.T), (fine,) * region.nodes.shape[1]).tolist()


#: draws of the particles null pooled for the significance rule's p-values
NULL_DRAWS = 8


def window_multiple(jumps: int, duration: float, cell, coarse: int, kernel: float | None, multiple: float,
                    min_per_block: float, t_chi: float) -> tuple[float, str]:
    """The window length in units of t_χ: ``multiple``, or the smallest whole multiple of t_χ above it at
    which the coarse sieve sees ``min_per_block`` jumps per block (per kernel volume ∫e^{−r/d}) on
    average, from the run's mean jump rate: the paper's iteration finds no background below that
    (spec.Analysis.min_jumps_per_block). It is never lengthened beyond a quarter of the steady
    window (P̄_c needs about four windows); the summary's warnings then say the counts are short."""
    dim = cell.dimension
    cells = cell.volume / kernel_integral(kernel, dim) if kernel else coarse**dim
    per_block = jumps / cells * t_chi / duration if duration > 0 else 0.0  # jumps per block in one t_χ
    if min_per_block <= 0 or per_block * multiple >= min_per_block:
        return float(multiple), f"cluster_window = {multiple:g} t_chi"
    if per_block <= 0:
        return float(multiple), f"cluster_window = {multiple:g} t_chi (no jumps to lengthen it by)"
    longer = float(np.ceil(min_per_block / per_block - 1e-9))
    room = max(float(multiple), float(np.floor(duration / (4 * t_chi))))
    if longer > room:
        return room, (f"{room:g} t_chi: {longer:g} would give >= {min_per_block:g} jumps per coarse block (one t_chi "
                      f"holds {per_block:.3g}) but a window is at most a quarter of the steady window: run longer")
    return longer, (f"{longer:g} t_chi: the smallest whole multiple with >= {min_per_block:g} jumps per coarse block "
                    f"(one t_chi holds {per_block:.3g}; min_jumps_per_block)")


def _life_mask(t: np.ndarray, start: float, end: float) -> np.ndarray:
    return (t >= start - 1e-12) & (t <= end + 1e-12)


class _Coverage:
    """Which particles some cluster covers, frame by frame, as the fraction P_c(t). A frame is held as a
    boolean row only while a later window's traceback can still reach it (the windows go forward in
    time), so memory stays with the traced span, not the run."""

    def __init__(self, n_frames: int, n: int):
        self.n = n
        self.open: dict[str, dict[int, np.ndarray]] = {"yielded": {}, "all": {}}
        self.counts = {kind: np.zeros(n_frames) for kind in self.open}

    def add(self, kind: str, frames: np.ndarray, inside: np.ndarray) -> None:
        rows = self.open[kind]
        for f, row in zip(frames.tolist(), inside):
            if f in rows:
                rows[f] |= row
            else:
                rows[f] = row.copy()

    def settle(self, before: int) -> None:
        """Count the frames before ``before``: no later window reaches them."""
        for kind, rows in self.open.items():
            for f in [f for f in rows if f < before]:
                self.counts[kind][f] = np.count_nonzero(rows.pop(f))

    def fractions(self) -> dict[str, np.ndarray]:
        self.settle(len(self.counts["all"]))
        return {kind: c / self.n for kind, c in self.counts.items()}


def convective_clusters(times: np.ndarray, cells: list[Cell], unwrapped: np.ndarray, virial_xy: np.ndarray,
                        jumps, rate: float, t_chi: float, *, coarse: int, window: float | None = None,
                        kernel_length: float | None = None, fine: int | None, tolerance: float,
                        stz_diameter: float, min_stz: float, prune_fine: bool, trace_before: float,
                        trace_after: float, max_windows: int, contrast: int, p_c_clusters: str,
                        atomic_stress: str, threshold_rule: str, fdr: float, min_jumps_per_block: float,
                        ice_yields: dict | None = None,
                        seed: int = 0, smoothing: int = 5, progress=None) -> dict:
    """The whole analysis over frames ``times`` (a steady window; ``virial_xy`` the store's S_i, so that
    σ_c = Σ_{i∈F} S_i / V_F without the Ω_i, which cancel in eq. 4).

    Windows of length W (``window``, default t_χ) tile the steady window; the jumps of each
    (``jumps``: a DataFrame with time, frame, x, y[, z], dx, dy[, dz]) are carried to its end t_ref
    and demarcated with one ρ_th, the mean of every window's own threshold (the paper's average over
    t_ini); each region is traced over [t_ref − trace_before W, t_ref + trace_after W]. Per window,
    ``contrast`` spheres of the window's mean cluster radius that touch no cluster and as many that
    hold parts of two or more are traced the same way (drawn with ``seed``).

    P_c(t) counts the particles inside clusters alive at t: a cluster with a detected yield lives over
    [t0, t3]; one without, over its window [t_ref − W, t_ref] (the span in which its jumps gathered;
    the paper finds t_y ≈ t_χ). ``p_c_clusters`` says which the summary's P̄_c and η_c use: "all"
    traced clusters (the paper's "particles included in convective clusters across the whole
    system") or only the "yielded" ones; both are reported. P̄_c averages P_c(t) only where every
    window whose trace could reach t was analysed: [first t_ref + trace_after W, last t_ref −
    trace_before W].

    σ_c,y is the mean of the yielded clusters' stress at t2. ``ice_yields`` maps (window, region) to the
    yield of that cluster's isoconfigurational mean curve (t0..t3, stress_at_yield), which replaces the
    one detected on the run's own curve (the paper's MD procedure);
    ``atomic_stress`` "virial" (each pair's virial split equally: Σ σ_i Ω_i = V σ) or "paper" (eq. 2
    as printed, each pair counted for both particles: twice the virial reading) selects the summary's
    σ_c,y and η_c, and both are reported. ξ_c = (3V̄_c/4π)^{1/3} (2D: (V̄_c/π)^{1/2}) with V̄_c the mean
    volume of the clusters that count for η_c (the yielded ones).
    Returns the cluster table (list of dicts), per-cluster series, contrast regions, per-window sieve
    diagnostics and the summary (with warnings where the sieve cannot mean much).

    ``threshold_rule`` "background" is the paper's ρ_th (above); "significance" keeps, in each window,
    the nodes whose density is significant against unclustered jumps at false-discovery rate ``fdr``
    (:func:`regions.significance_threshold`), so that a window of unclustered jumps yields no cluster.
    The null model (``summary["null"]``): the same sieve, with the same rule, on each window's jumps
    moved to uniform positions in the cell ("uniform") and to the positions of randomly drawn particles
    at the same times ("particles": the liquid's density kept, which particles jump forgotten).
    ``progress`` (a callable) gets a line after each sieve pass and every tenth of the traced windows."""
    started = time.perf_counter()

    def report(text):
        if progress is not None:
            progress(f"clusters: {text} ({time.perf_counter() - started:.0f} s)")

    dim = cells[0].dimension
    axes = ["x", "y", "z"][:dim]
    W = float(window or t_chi)
    ice_yields = ice_yields or {}
    # typed even when empty (a table of no jumps reads back with object columns)
    jumps = jumps.astype({c: np.float64 for c in ["time", *axes, *("d" + a for a in axes)]} | {"frame": np.int64})
    starts = np.arange(times[0], times[-1] - W + 1e-12, W)[:max_windows]
    windows = []
    for t_start in starts:
        t_ref = t_start + W
        k_ref = int(np.argmin(np.abs(times - t_ref)))
        events, rows = carried_jumps(jumps, t_start, t_ref, cells[k_ref], rate, times[k_ref])
        windows.append((times[k_ref], k_ref, events, rows))
    sieve_options = {"fine": fine, "tolerance": tolerance, "kernel_length": kernel_length,
                     "stz_diameter": stz_diameter, "min_stz": min_stz, "prune_fine": prune_fine}
    rng_null = np.random.default_rng(seed + 1)
    nulls = null_jumps(windows, cells, unwrapped, rate, rng_null)
    first_pass = [demarcate(ev, cells[k], coarse, threshold=None, **sieve_options)[1] if len(ev) else None
                  for _, k, ev, _ in windows]
    thresholds = [f["threshold"] for f in first_pass if f is not None]
    rho_th = float(np.mean(thresholds)) if thresholds else float("nan")
    # the particles null's fields, pooled over windows and draws: the significance rule's reference
    draws = [nulls["particles"]] + [null_jumps(windows, cells, unwrapped, rate, rng_null)["particles"]
                                    for _ in range(NULL_DRAWS - 1)]
    null_fields = np.concatenate([coarse_field(ev, cells[k], coarse, kernel_length).ravel() for events in draws
                                  for (_, k, _, _), ev in zip(windows, events) if len(ev)] or [np.zeros(0)])

    def threshold_of(events, k, field, background, rule=threshold_rule):
        """A window's ρ_th under ``rule`` (``field``: its coarse field where already made, or None)."""
        if rule == "background":
            return background
        if not len(events):
            return float("inf")
        field = field if field is not None else coarse_field(events, cells[k], coarse, kernel_length)
        return significance_threshold(field, null_fields, fdr)

    report(f"{len(windows)} windows of {W:.4g} sieved; the {NULL_DRAWS} draws of the particles null pooled")
    null_summary = _null_sieve(nulls, windows, cells, coarse, sieve_options, threshold_of, dim, rho_th)
    report("the uniform and particles nulls sieved")
    significant = _significance_sieve(windows, cells, coarse, sieve_options, first_pass,
                                      lambda ev, k, field: threshold_of(ev, k, field, rho_th, "significance"), dim, fdr)
    report("the significance rule's pass done; tracing the clusters")
    every = max(1, len(windows) // 10)
    table, series, contrasts, contrast_series, sieve = [], [], [], [], []
    n_frames, n = unwrapped.shape[:2]
    covered = _Coverage(n_frames, n)
    # reach[w]: the first frame that window w or a later one traces; the frames before it are settled
    starts = [int(np.searchsorted(times, t_ref - trace_before * W - 1e-12)) for t_ref, _, _, _ in windows]
    reach = np.minimum.accumulate((starts + [n_frames])[::-1])[::-1]
    rng = np.random.default_rng(seed)
    grid = None  # fine-grid nodes per edge (the same in every window: shear keeps the edges)
    window_thresholds = []
    for w, (t_ref, k_ref, events, _) in enumerate(windows):
        cell_ref = cells[k_ref]
        dispersion, z_score = dispersion_index(events, cell_ref, stz_diameter) if len(events) else (np.nan, np.nan)
        diag = {"window": w, "t_ref": float(t_ref), "jumps": len(events),
                "jumps_per_particle": len(events) / n,
                "own_threshold": first_pass[w]["threshold"] if first_pass[w] is not None else None,
                # jumps per coarse block, or per kernel volume ∫e^{−r/d} (kernel sieve)
                "mean_jumps_per_block": len(events) * (kernel_integral(kernel_length, dim) / cell_ref.volume
                                                       if kernel_length else 1.0 / coarse**dim),
                "kept_fraction": 0.0,
                "dispersion_index": dispersion, "dispersion_z": z_score}
        sieve.append(diag)
        if not len(events):
            continue
        window_threshold = threshold_of(events, k_ref, first_pass[w]["rho"] if first_pass[w] else None, rho_th)
        diag["threshold"] = window_threshold
        window_thresholds.append(window_threshold)
        regions, fields = demarcate(events, cell_ref, coarse, threshold=window_threshold, **sieve_options)
        diag["kept_fraction"] = fields["kept_fraction"]
        diag["regions"] = len(regions)
        grid = int(fields["fine"])
        lookup = region_lookup(regions, dim, grid)
        lo = int(np.searchsorted(times, t_ref - trace_before * W - 1e-12))
        hi = int(np.searchsorted(times, t_ref + trace_after * W + 1e-12))
        frames = np.arange(lo, min(hi, n_frames))

        def member_labels(table_of_labels):
            return np.array([labels_at(unwrapped[k], times[k], rate, t_ref, cell_ref, table_of_labels)
                             for k in frames])

        labels = member_labels(lookup)
        # every jump of the traced span, carried to t_ref like the members (not only the window's)
        carried, span_jumps = carried_jumps(jumps, times[frames[0]], times[frames[-1]], cell_ref, rate, t_ref)
        jump_times = span_jumps.time.to_numpy()
        jump_labels = labels_at(carried, t_ref, rate, t_ref, cell_ref, lookup)
        jump_vectors = span_jumps[["d" + a for a in axes]].to_numpy()
        jump_frames = span_jumps.frame.to_numpy()
        for reg in regions:
            inside = labels == reg.label  # (frames, N)
            traced = trace_region(inside, frames, times, unwrapped, virial_xy, cells, rate, reg.volume, dim, smoothing)
            mine = jump_labels == reg.label
            yt, source = yield_times(traced["t"], traced["sigma"], smoothing), "trace"
            if (w, reg.label) in ice_yields:
                yt, source = _yield_on(traced["t"], ice_yields[(w, reg.label)]), "ice"
            row = {"window": w, "region": reg.label, "t_ref": float(t_ref), "volume": reg.volume, "xi": reg.radius,
                   "centre": reg.centre[:dim].tolist(), "jumps": int((mine & (jump_times < t_ref)
                                                                         & (jump_times >= t_ref - W)).sum()),
                   "stress_rise": traced["rise"]}
            entry = {"t": traced["t"].tolist(), "sigma": traced["sigma"].tolist(),
                     "strain_increment": traced["strain_increment"].tolist(),
                     **_jumps_per_frame(jump_frames[mine], jump_vectors[mine], frames),
                     "nodes": _flat(reg, grid)}
            life = _life_mask(traced["t"], t_ref - W, t_ref)
            if yt is not None:
                strain, exchange = cumulative_strain(inside, frames, yt.indices[0], times, unwrapped, cells, rate, dim)
                during = mine & (jump_times >= yt.t0) & (jump_times <= yt.t3)
                row.update({k: v for k, v in asdict(yt).items() if k != "indices"})
                row.update(strain_at_yield=float(strain[yt.indices[2]]), members_t0=int(inside[yt.indices[0]].sum()),
                           p_ext=extensional_share(jump_vectors[during]), yield_from=source)
                entry.update(strain=strain.tolist(), exchange=exchange.tolist(),
                             members_t0=np.flatnonzero(inside[yt.indices[0]]).tolist(),
                             members_t1=np.flatnonzero(inside[yt.indices[1]]).tolist())
                life = _life_mask(traced["t"], yt.t0, yt.t3)
                covered.add("yielded", frames[life], inside[life])
            covered.add("all", frames[life], inside[life])
            table.append(row)
            series.append(entry)
        if contrast and regions:
            radius = float(np.mean([r.radius for r in regions]))
            quiet, straddling = contrast_spheres(regions, cell_ref, grid, radius, contrast, rng)
            for kind, spheres in (("quiet", quiet), ("straddling", straddling)):
                if not spheres:
                    continue
                labels = member_labels(region_lookup(spheres, dim, grid))
                for sph in spheres:
                    inside = labels == sph.label
                    traced = trace_region(inside, frames, times, unwrapped, virial_xy, cells, rate, sph.volume, dim,
                                    smoothing)
                    strain, exchange = cumulative_strain(inside, frames, 0, times, unwrapped, cells, rate, dim)
                    yt = yield_times(traced["t"], traced["sigma"], smoothing)
                    contrasts.append({"window": w, "kind": kind, "t_ref": float(t_ref), "volume": sph.volume,
                                      "radius": radius, "centre": sph.centre[:dim].tolist(),
                                      "stress_rise": traced["rise"], "yield_detected": yt is not None})
                    contrast_series.append({"t": traced["t"].tolist(), "sigma": traced["sigma"].tolist(),
                                            "strain": strain.tolist(), "exchange": exchange.tolist(),
                                            "nodes": _flat(sph, grid)})
        if (w + 1) % every == 0 or w + 1 == len(windows):
            report(f"window {w + 1} of {len(windows)} traced, {len(table)} clusters so far")
        covered.settle(before=int(reach[w + 1]))
    refs = [t_ref for t_ref, _, _, _ in windows]
    span = (_life_mask(times, refs[0] + trace_after * W, refs[-1] - trace_before * W) if refs
            else np.zeros(len(times), dtype=bool))
    p_c = covered.fractions()
    p_bar = {k: float(v[span].mean()) if span.any() else float("nan") for k, v in p_c.items()}
    yielded = [r for r in table if "stress_at_yield" in r]
    sigma_y = float(np.mean([r["stress_at_yield"] for r in yielded])) if yielded else float("nan")
    factor = {"virial": 1.0, "paper": 2.0}

    def eta_c(p, s):
        return p * s / (2 * rate) if rate > 0 else float("nan")

    def mean_rise(rows):
        return float(np.mean([r["stress_rise"] for r in rows])) if rows else float("nan")

    v_c = float(np.mean([r["volume"] for r in yielded])) if yielded else float("nan")
    v_all = float(np.mean([r["volume"] for r in table])) if table else float("nan")
    used = [d for d in sieve if d["jumps"]]
    warnings = _sieve_warnings(rho_th, used, span, len(windows), trace_before + trace_after, kernel_length,
                               min_jumps_per_block)
    finite = [t for t in window_thresholds if np.isfinite(t)]
    summary = {"threshold": rho_th if threshold_rule == "background" else float(np.mean(finite or [np.inf])),
               "threshold_rule": threshold_rule, "fdr": fdr if threshold_rule == "significance" else None,
               "null": null_summary, "significance": significant, "windows": len(windows), "window": W, "clusters": len(table),
               "clusters_per_window": len(table) / max(1, sum(1 for _, _, ev, _ in windows if len(ev))),
               "yielded": len(yielded), "yield_from_ice": sum(r.get("yield_from") == "ice" for r in yielded),
               "p_c_clusters": p_c_clusters, "P_c_mean": p_bar[p_c_clusters],
               "P_c_mean_all": p_bar["all"], "P_c_mean_yielded": p_bar["yielded"],
               "P_c_span": [float(times[span][0]), float(times[span][-1])] if span.any() else None,
               "atomic_stress": atomic_stress, "sigma_c_y": factor[atomic_stress] * sigma_y,
               "eta_c": eta_c(p_bar[p_c_clusters], factor[atomic_stress] * sigma_y),
               "by_convention": {c: {"sigma_c_y": f * sigma_y,
                                     **{f"eta_c_{k}": eta_c(p_bar[k], f * sigma_y) for k in p_bar}}
                                 for c, f in factor.items()},
               "V_c": v_c, "xi_c": float(radius_of_volume(v_c, dim)), "xi_c_all": float(radius_of_volume(v_all, dim)),
               "xi_c_mean_radius": float(np.mean([r["xi"] for r in table])) if table else float("nan"),
               "t_y": float(np.mean([r["t2"] - r["t0"] for r in yielded])) if yielded else float("nan"),
               "t_chi": t_chi, "grid": grid,
               "mean_jumps_per_block": float(np.mean([d["mean_jumps_per_block"] for d in used])) if used else 0.0,
               "jumps_per_particle_per_window": float(np.mean([d["jumps_per_particle"] for d in used])) if used else 0.0,
               "kept_fraction": float(np.mean([d["kept_fraction"] for d in used])) if used else 0.0,
               "dispersion_index": float(np.nanmean([d["dispersion_index"] for d in used])) if used else float("nan"),
               "dispersion_z": float(np.nanmean([d["dispersion_z"] for d in used])) if used else float("nan"),
               "warnings": warnings,
               "stress_rise": {"clusters": mean_rise(table),
                               **{kind: mean_rise([c for c in contrasts if c["kind"] == kind])
                                  for kind in ("quiet", "straddling")}}}
    return {"summary": summary, "clusters": table, "series": series, "sieve": sieve,
            "contrast": contrasts, "contrast_series": contrast_series,
            "P_c": {"t": times[span].tolist(), "P_c": p_c[p_c_clusters][span].tolist(),
                    "all": {"t": times.tolist(), "yielded": p_c["yielded"].tolist(), "all": p_c["all"].tolist()}}}


def _significance_sieve(windows: list, cells: list, coarse: int, options: dict, first_pass: list, threshold_of,
                        dim: int, fdr: float) -> dict:
    """The sieve on the real jumps under the significance rule, whatever rule the run's clusters use (no
    tracing): clusters per window, kept volume and ξ_c of the mean volume of every region (so that
    Table I carries ν_c under both rules; NaN where no window holds a significant region)."""
    kept, counts, volumes = [], [], []
    for (_, k, ev, _), first in zip(windows, first_pass):
        if not len(ev):
            continue
        regions, sieved = demarcate(ev, cells[k], coarse, threshold=threshold_of(ev, k, first["rho"]), **options)
        kept.append(sieved["kept_fraction"])
        counts.append(len(regions))
        volumes += [r.volume for r in regions]
    return {"fdr": fdr, "kept_fraction": float(np.mean(kept)) if kept else float("nan"),
            "clusters_per_window": float(np.mean(counts)) if counts else float("nan"), "clusters": len(volumes),
            "xi_c": float(radius_of_volume(np.mean(volumes), dim)) if volumes else float("nan"),
            "xi_c_error": (float(radius_of_volume(np.mean(volumes), dim) * np.std(volumes, ddof=1)
                                 / np.sqrt(len(volumes)) / (dim * np.mean(volumes)))
                           if len(volumes) > 1 else float("nan"))}


def _null_sieve(nulls: dict, windows: list, cells: list, coarse: int, options: dict, threshold_of, dim: int,
                background: float) -> dict:
    """What the sieve finds on each null: the kept volume fraction, clusters per window and ξ_c of the mean
    region volume (every region: nulls have no yields), at the real jumps' ρ_th (the same sieve: does the
    real field hold more above it than noise does?) and, as ``kept_fraction_own``, at the null's own ρ_th
    (the background iteration on noise scatters by ±10%, and the kept volume with it)."""
    out = {}
    for name, events_of in nulls.items():
        # the coarse fields alone give the null's own ρ_th (as demarcate's first pass would)
        fields = [coarse_field(ev, cells[k], coarse, options["kernel_length"]) if len(ev) else None
                  for (_, k, _, _), ev in zip(windows, events_of)]
        found = [background_threshold(f, options["tolerance"]) for f in fields if f is not None]
        own = float(np.mean(found)) if found else float("nan")
        kept, kept_own, counts, volumes = [], [], [], []
        for (_, k, _, _), ev, field in zip(windows, events_of, fields):
            if not len(ev):
                continue
            threshold, threshold_own = threshold_of(ev, k, field, background), threshold_of(ev, k, field, own)
            regions, sieved = demarcate(ev, cells[k], coarse, threshold=threshold, **options)
            kept.append(sieved["kept_fraction"])
            counts.append(len(regions))
            volumes += [r.volume for r in regions]
            kept_own.append(sieved["kept_fraction"] if threshold_own == threshold else
                            demarcate(ev, cells[k], coarse, threshold=threshold_own, **options)[1]["kept_fraction"])
        out[name] = {"kept_fraction": float(np.mean(kept)) if kept else float("nan"),
                     "clusters_per_window": float(np.mean(counts)) if counts else float("nan"),
                     "xi_c": float(radius_of_volume(np.mean(volumes), dim)) if volumes else float("nan"),
                     "threshold_own": own, "kept_fraction_own": float(np.mean(kept_own)) if kept_own else float("nan")}
    return out


def _yield_on(t: np.ndarray, found: dict) -> YieldTimes:
    """A yield found elsewhere (t0..t3, stress_at_yield) on the frames ``t`` of a trace."""
    times = [float(found[k]) for k in ("t0", "t1", "t2", "t3")]
    indices = tuple(int(min(np.searchsorted(t, x - 1e-9), len(t) - 1)) for x in times)
    return YieldTimes(*times, float(found["stress_at_yield"]), indices)


def _sieve_warnings(rho_th: float, used: list[dict], span: np.ndarray, n_windows: int, trace: float,
                    kernel: float | None, min_per_block: float) -> list[str]:
    """Where the coarse sieve cannot mean much, and which parameter to change."""
    out = []
    what = "cluster_window (a longer window)" + ("" if kernel else " or cluster_block (larger blocks)")
    if used and not rho_th > 0:
        out.append(f"the background threshold rho_th is {rho_th:.3g}: its iteration collapsed on sparse jump counts "
                   f"and every block with a jump is kept; raise {what}")
    if used:
        per_block = float(np.mean([d["mean_jumps_per_block"] for d in used]))
        if per_block < min_per_block:
            out.append(f"only {per_block:.3g} cage jumps per coarse block per window (fewer than "
                       f"{min_per_block:g}): Poisson noise dominates the density field; raise {what}")
    if not span.any():
        out.append(f"P_c has no fully covered span: {n_windows} windows, fewer than the {trace:g} window lengths "
                   "a trace reaches; run longer or raise max_windows")
    return out


def choose_cluster(result: dict, cluster: int | None) -> int:
    """Row ``cluster`` of a clusters result, checked; by default the yielded cluster with the most
    cage jumps in its window (the most prominent dynamic region)."""
    rows = result["clusters"]
    if not rows:
        raise UserError("the run has no convective clusters to draw (clusters.json lists none)")
    if cluster is not None:
        if not 0 <= cluster < len(rows):
            raise UserError(f"--cluster {cluster}: the cluster table has rows 0..{len(rows) - 1}")
        return cluster
    yielded = [k for k, row in enumerate(rows) if "t2" in row] or list(range(len(rows)))
    return max(yielded, key=lambda k: rows[k]["jumps"])
