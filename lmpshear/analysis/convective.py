"""Convective clusters: a dynamic region traced back in time with the flow (the paper's Fig. 1c, 2, 3).

Traceback. A region found at t_ref (:mod:`lmpshear.analysis.regions`) is a set of points in the cell
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

from dataclasses import asdict, dataclass

import numpy as np

from lmpshear.analysis.regions import carry_to, demarcate, labels_at, region_lookup
from lmpshear.unwrap import Cell


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
    applied strain in between, which moves the sliding images)."""
    if len(members) <= dimension:
        return float("nan")
    before, after = carried_separations(unwrapped_before, unwrapped_after, members, cell_before, strain)
    return float(affine_fit(before, after, dimension)[0, 1])


def smooth(values: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` samples (odd), shrinking at the ends."""
    if width <= 1:
        return np.asarray(values, dtype=np.float64)
    kernel = np.ones(width)
    num = np.convolve(values, kernel, mode="same")
    den = np.convolve(np.ones(len(values)), kernel, mode="same")
    return num / den


def _two_segment_break(t: np.ndarray, y: np.ndarray) -> int:
    """Index of the breakpoint of the best continuous two-segment linear fit (least squares)."""
    best, where = np.inf, len(t) // 2
    for k in range(2, len(t) - 2):
        # basis: 1, t, (t − t_k)_+  (continuous at t_k)
        A = np.stack([np.ones_like(t), t, np.maximum(t - t[k], 0.0)], axis=1)
        coef, *_ = np.linalg.lstsq(A, y, rcond=None)
        err = ((A @ coef - y) ** 2).sum()
        if err < best:
            best, where = err, k
    return where


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


def convective_clusters(times: np.ndarray, cells: list[Cell], unwrapped: np.ndarray, virial_xy: np.ndarray,
                        jumps, rate: float, t_chi: float, *, coarse: int = 10,
                        fine: int | None = None, kernel_length: float | None = None, tolerance: float = 0.1,
                        stz_diameter: float = 3.0, min_stz: float = 2.0, trace_before: float = 2.0,
                        trace_after: float = 0.5, max_windows: int = 25, smoothing: int = 5) -> dict:
    """The whole analysis over frames ``times`` (a steady window; ``virial_xy`` the store's S_i, so that
    σ_c = Σ_{i∈F} S_i / V_F without the Ω_i, which cancel in eq. 4): windows of length t_χ tile it; the
    jumps of each (``jumps``: a DataFrame with time, frame, x, y[, z], dx, dy[, dz]) are carried to its
    end t_ref and demarcated with one ρ_th, the mean of every window's own threshold (the paper's
    average over t_ini); each region is traced over [t_ref − trace_before t_χ, t_ref + trace_after t_χ].
    P_c(t) counts the particles inside clusters alive at t (t0 ≤ t ≤ t3), over the times every window
    that can contribute was analysed: [first start + trace_before t_χ, last window's end].
    Returns the cluster table (list of dicts), per-cluster series and the system summary."""
    dim = cells[0].dimension
    axes = ["x", "y", "z"][:dim]
    starts = np.arange(times[0], times[-1] - t_chi + 1e-12, t_chi)[:max_windows]
    windows = []
    for t_start in starts:
        t_ref = t_start + t_chi
        k_ref = int(np.argmin(np.abs(times - t_ref)))
        sel = jumps[(jumps.time >= t_start) & (jumps.time < t_ref)]
        events = carry_to(sel[axes].to_numpy(), sel.time.to_numpy(), rate, times[k_ref], cells[k_ref])
        windows.append((times[k_ref], k_ref, sel, events))
    thresholds = [demarcate(ev, cells[k], coarse, fine, None, tolerance, kernel_length, stz_diameter, min_stz)[1]
                  ["threshold"] for _, k, _, ev in windows if len(ev)]
    rho_th = float(np.mean(thresholds)) if thresholds else float("nan")
    table, series, alive = [], [], []
    n_frames, n = unwrapped.shape[:2]
    for w, (t_ref, k_ref, sel, events) in enumerate(windows):
        if not len(events):
            continue
        regions, fields = demarcate(events, cells[k_ref], coarse, fine, rho_th, tolerance, kernel_length,
                                    stz_diameter, min_stz)
        lookup = region_lookup(regions, dim, fields["fine"])
        lo = int(np.searchsorted(times, t_ref - trace_before * t_chi - 1e-12))
        hi = int(np.searchsorted(times, t_ref + trace_after * t_chi + 1e-12))
        frames = np.arange(lo, min(hi, n_frames))
        member_labels = np.array([labels_at(unwrapped[k], times[k], rate, t_ref, cells[k_ref], lookup) for k in frames])
        jump_labels = labels_at(sel[axes].to_numpy(), sel.time.to_numpy(), rate, t_ref, cells[k_ref], lookup)
        jump_vectors = sel[["d" + a for a in axes]].to_numpy()
        for reg in regions:
            inside = member_labels == reg.label  # (frames, N)
            sigma = np.array([(virial_xy[k][inside[m]]).sum() / reg.volume for m, k in enumerate(frames)])
            increments = np.array([shear_strain(unwrapped[k], unwrapped[k + 1], np.flatnonzero(inside[m]), cells[k],
                                                rate * (times[k + 1] - times[k]), dim)
                                   if k + 1 < n_frames else np.nan for m, k in enumerate(frames)])
            mine = jump_labels == reg.label
            n_cj = np.array([(mine & (sel.frame.to_numpy() == k)).sum() for k in frames])
            yt = yield_times(times[frames], sigma, smoothing)
            row = {"window": w, "region": reg.label, "t_ref": float(t_ref), "volume": reg.volume, "xi": reg.radius,
                   "centre": reg.centre[:dim].tolist(), "jumps": int(mine.sum())}
            entry = {"t": times[frames].tolist(), "sigma": sigma.tolist(), "strain_increment": increments.tolist(),
                     "n_cj": n_cj.tolist()}
            if yt is not None:
                i0 = yt.indices[0]
                start_members = np.flatnonzero(inside[i0])
                cumulative = np.array([shear_strain(unwrapped[frames[i0]], unwrapped[k], start_members, cells[frames[i0]],
                                                    rate * (times[k] - times[frames[i0]]), dim) for k in frames])
                resident = np.array([inside[m][start_members].sum() for m in range(len(frames))])
                during = mine & (sel.time.to_numpy() >= yt.t0) & (sel.time.to_numpy() <= yt.t3)
                row.update({k: v for k, v in asdict(yt).items() if k != "indices"})
                row.update(strain_at_yield=float(cumulative[yt.indices[2]]), members_t0=int(len(start_members)),
                           p_ext=extensional_share(jump_vectors[during]))
                entry.update(strain=cumulative.tolist(),
                             exchange=(1.0 - resident / max(len(start_members), 1)).tolist())
                alive.append((yt.t0, yt.t3, w, reg.label, frames, inside))
            table.append(row)
            series.append(entry)
    # system level: the share of particles inside a cluster alive at t
    covered = np.zeros((n_frames, n), dtype=bool)
    for t0, t3, _w, _label, frames, inside in alive:
        for m, k in enumerate(frames):
            if t0 <= times[k] <= t3:
                covered[k] |= inside[m]
    p_c = covered.mean(axis=1)
    span = (times >= starts[0] + trace_before * t_chi) & (times <= starts[-1] + t_chi) if len(starts) else times < 0
    yielded = [r for r in table if "stress_at_yield" in r]
    sigma_y = float(np.mean([r["stress_at_yield"] for r in yielded])) if yielded else float("nan")
    p_bar = float(p_c[span].mean()) if span.any() else float("nan")
    summary = {"threshold": rho_th, "windows": len(windows), "clusters": len(table), "yielded": len(yielded),
               "P_c_mean": p_bar, "sigma_c_y": sigma_y,
               "eta_c": p_bar * sigma_y / (2 * rate) if rate > 0 else float("nan"),
               "xi_c": float(np.mean([r["xi"] for r in table])) if table else float("nan"),
               "t_y": float(np.mean([r["t2"] - r["t0"] for r in yielded])) if yielded else float("nan"),
               "t_chi": t_chi}
    return {"summary": summary, "clusters": table, "series": series,
            "P_c": {"t": times[span].tolist(), "P_c": p_c[span].tolist()}}
