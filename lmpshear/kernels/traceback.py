"""Tracing a dynamic region in time (the paper's Fig. 1c, 2 and 6): its members frame by frame, its
stress and strain, the jumps inside it and its yield.

Traceback. A region found at t_ref (:mod:`lmpshear.kernels.sieve`) is a set of points in the cell
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

from dataclasses import asdict, dataclass, field

import numba
import numpy as np

from lmpshear.cell import Cell
from lmpshear.kernels.cagejumps import carried_jumps
from lmpshear.kernels.sieve import contrast_spheres, labels_at, region_lookup


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


def carried_separations(
    unwrapped_before: np.ndarray, unwrapped_after: np.ndarray, members: np.ndarray, cell_before: Cell, strain: float
) -> tuple[np.ndarray, np.ndarray]:
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
        unwrapped_after[members[0]] - unwrapped_before[members[0]]
    )
    after[:, 0] += n_y * cell_before.ly * strain
    return before, after


def affine_fit(before: np.ndarray, after: np.ndarray, dimension: int) -> np.ndarray:
    """Falk–Langer deformation gradient F = X Y⁻¹ (eq. 5–7) from centroid-relative positions."""
    b = before[:, :dimension] - before[:, :dimension].mean(axis=0)
    a = after[:, :dimension] - after[:, :dimension].mean(axis=0)
    X = a.T @ b
    Y = b.T @ b
    return X @ np.linalg.inv(Y)


def shear_strain(
    unwrapped_before: np.ndarray,
    unwrapped_after: np.ndarray,
    members: np.ndarray,
    cell_before: Cell,
    strain: float,
    dimension: int,
) -> float:
    """γ = F_xy of the best affine map of the members from one time to another (``strain``: the
    applied strain in between, which moves the sliding images): :func:`affine_fit` of
    :func:`carried_separations`, in one compiled pass (the traceback calls it for every frame of
    every cluster)."""
    if len(members) <= dimension:
        return float("nan")
    c = cell_before  # the frames as they are (a 2D run's are strided views of 3 columns): no copy of N rows
    return float(
        _shear_strain(
            np.asarray(unwrapped_before, dtype=np.float64),
            np.asarray(unwrapped_after, dtype=np.float64),
            np.asarray(members, dtype=np.int64),
            c.lx,
            c.ly,
            c.lz,
            c.xy,
            float(strain),
            dimension,
            c.dimension == 3,
        )
    )


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
        i1 = i0 + _two_segment_break(t[i0 : i2 + 1], s[i0 : i2 + 1]) if i2 - i0 >= 5 else (i0 + i2) // 2
        i0 = _two_segment_break(t[: i1 + 1], s[: i1 + 1]) if i1 >= 5 else i0
    i3 = i2 + _two_segment_break(t[i2:], s[i2:])
    return YieldTimes(float(t[i0]), float(t[i1]), float(t[i2]), float(t[i3]), float(s[i2]), (i0, i1, i2, i3))


def yield_found_elsewhere(t: np.ndarray, found: dict) -> YieldTimes:
    """A yield found elsewhere (t0..t3, stress_at_yield) on the frames ``t`` of a trace."""
    times = [float(found[k]) for k in ("t0", "t1", "t2", "t3")]
    i0, i1, i2, i3 = (min(int(np.searchsorted(t, x - 1e-9)), len(t) - 1) for x in times)
    return YieldTimes(times[0], times[1], times[2], times[3], float(found["stress_at_yield"]), (i0, i1, i2, i3))


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


def trace_region(
    members: list[np.ndarray],
    frames: np.ndarray,
    times: np.ndarray,
    unwrapped: np.ndarray,
    virial_xy: np.ndarray,
    cells: list[Cell],
    rate: float,
    volume: float,
    dim: int,
    smoothing: int,
) -> dict:
    """σ_c(t) (eq. 4), the strain increments over each Δt (eq. 5–7) and the cumulative strain of the
    members at the first traced frame, for a region whose members at each traced frame are ``members``
    (ascending particle indices, one array per frame)."""
    n_frames = len(unwrapped)
    sigma = np.array([virial_xy[k][members[m]].sum() / volume for m, k in enumerate(frames)])
    increments = np.array(
        [
            shear_strain(
                unwrapped[k],
                unwrapped[k + 1],
                members[m],
                cells[k],
                rate * (times[k + 1] - times[k]),
                dim,
            )
            if k + 1 < n_frames
            else np.nan
            for m, k in enumerate(frames)
        ]
    )
    return {
        "t": times[frames],
        "sigma": sigma,
        "strain_increment": increments,
        "rise": largest_rise(smooth(sigma, smoothing | 1)),
    }


def cumulative_strain(
    members: list[np.ndarray],
    frames: np.ndarray,
    start: int,
    times: np.ndarray,
    unwrapped: np.ndarray,
    cells: list[Cell],
    rate: float,
    dim: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Strain from traced frame ``start`` over the members then, and R(t) = 1 − N_res(t)/N_res(t_start)."""
    first = members[start]
    k0 = frames[start]
    strain = np.array(
        [
            shear_strain(unwrapped[k0], unwrapped[k], first, cells[k0], rate * (times[k] - times[k0]), dim)
            for k in frames
        ]
    )
    resident = np.array([np.isin(first, now, assume_unique=True).sum() for now in members])
    return strain, 1.0 - resident / max(len(first), 1)


def members_by_label(labels: np.ndarray) -> dict[int, np.ndarray]:
    """The particles of each region label (0, none, left out) at one frame, ascending as
    ``np.flatnonzero(labels == label)`` gives them: one stable sort serves every region of a window, where
    a comparison per region would cost regions × N per frame (quadratic in N, as regions grow with the
    box)."""
    order = np.argsort(labels, kind="stable")
    ranked = labels[order]
    bounds = np.concatenate(([0], np.flatnonzero(np.diff(ranked)) + 1, [len(ranked)]))
    return {int(ranked[b]): order[b:e] for b, e in zip(bounds[:-1], bounds[1:]) if ranked[b] != 0}


def flat_nodes(region, fine: int) -> list[int]:
    """A region's fine-grid nodes as flat indices (for the figures, which draw its boundary)."""
    return np.ravel_multi_index(tuple(region.nodes.T), (fine,) * region.nodes.shape[1]).tolist()


def within(t: np.ndarray, start: float, end: float) -> np.ndarray:
    return (t >= start - 1e-12) & (t <= end + 1e-12)


class Coverage:
    """Which particles some cluster covers, frame by frame, as the fraction P_c(t). A frame is held as a
    boolean row only while a later window's traceback can still reach it (the windows go forward in
    time), so memory stays with the traced span, not the run."""

    def __init__(self, n_frames: int, n: int):
        self.n = n
        self.open: dict[str, dict[int, np.ndarray]] = {"yielded": {}, "all": {}}
        self.counts = {kind: np.zeros(n_frames) for kind in self.open}

    def add(self, kind: str, frames: np.ndarray, members: list[np.ndarray]) -> None:
        rows = self.open[kind]
        for f, particles in zip(frames.tolist(), members):
            if f not in rows:
                rows[f] = np.zeros(self.n, dtype=bool)
            rows[f][particles] = True

    def settle(self, before: int) -> None:
        """Count the frames before ``before``: no later window reaches them."""
        for kind, rows in self.open.items():
            for f in [f for f in rows if f < before]:
                self.counts[kind][f] = np.count_nonzero(rows.pop(f))

    def fractions(self) -> dict[str, np.ndarray]:
        self.settle(len(self.counts["all"]))
        return {kind: c / self.n for kind, c in self.counts.items()}


@dataclass
class Tracer:
    """Traces each window's regions, and its contrast spheres, over [t_ref − trace_before W, t_ref +
    trace_after W] of the run's frames: members frame by frame, σ_c(t), γ_c(t), the jumps inside and the
    yield (``ice_yields``: (window, region) -> a yield found on the isoconfigurational mean, which wins).
    Collects the cluster table and series, the contrast rows and series, and the particles covered for P_c
    (:class:`Coverage`)."""

    times: np.ndarray
    cells: list
    unwrapped: np.ndarray
    virial_xy: np.ndarray
    jumps: object  # DataFrame of the cage jumps (time, frame, positions, vectors)
    rate: float
    W: float
    trace_before: float
    trace_after: float
    contrast: int
    ice_yields: dict
    smoothing: int
    rng: np.random.Generator
    table: list = field(default_factory=list)
    series: list = field(default_factory=list)
    contrasts: list = field(default_factory=list)
    contrast_series: list = field(default_factory=list)

    def __post_init__(self):
        self.dim = self.cells[0].dimension
        self.axes = ["x", "y", "z"][: self.dim]
        self.covered = Coverage(*self.unwrapped.shape[:2])

    def first_frame(self, t_ref: float) -> int:
        """The first frame a trace of the window ending at t_ref reaches."""
        return int(np.searchsorted(self.times, t_ref - self.trace_before * self.W - 1e-12))

    def window(self, w: int, t_ref: float, cell_ref: Cell, regions: list, grid: int) -> None:
        """Trace window ``w``'s regions (on its fine grid of ``grid`` nodes per edge) and contrast spheres."""
        times, unwrapped, rate, dim, W = self.times, self.unwrapped, self.rate, self.dim, self.W
        lookup = region_lookup(regions, dim, grid)
        hi = int(np.searchsorted(times, t_ref + self.trace_after * W + 1e-12))
        frames = np.arange(self.first_frame(t_ref), min(hi, len(times)))

        empty = np.zeros(0, dtype=np.int64)

        def members_of(table_of_labels):
            """label -> its particles at each traced frame (empty where the region holds none)."""
            by_frame = [
                members_by_label(labels_at(unwrapped[k], times[k], rate, t_ref, cell_ref, table_of_labels))
                for k in frames
            ]
            return lambda label: [at.get(label, empty) for at in by_frame]

        def traced_in(members, volume):
            return trace_region(
                members, frames, times, unwrapped, self.virial_xy, self.cells, rate, volume, dim, self.smoothing
            )

        region_members = members_of(lookup)
        # every jump of the traced span, carried to t_ref like the members (not only the window's)
        carried, span_jumps = carried_jumps(self.jumps, times[frames[0]], times[frames[-1]], cell_ref, rate, t_ref)
        jump_times = span_jumps.time.to_numpy()
        jumps_of = members_by_label(labels_at(carried, t_ref, rate, t_ref, cell_ref, lookup))
        jump_vectors = span_jumps[["d" + a for a in self.axes]].to_numpy()
        jump_frames = span_jumps.frame.to_numpy()
        for reg in regions:
            inside = region_members(reg.label)  # its particles at each traced frame
            traced = traced_in(inside, reg.volume)
            mine = jumps_of.get(reg.label, empty)  # the span's jumps inside the region, in time order
            yt, source = yield_times(traced["t"], traced["sigma"], self.smoothing), "trace"
            if (w, reg.label) in self.ice_yields:
                yt, source = yield_found_elsewhere(traced["t"], self.ice_yields[(w, reg.label)]), "ice"
            row = {
                "window": w,
                "region": reg.label,
                "t_ref": float(t_ref),
                "volume": reg.volume,
                "xi": reg.radius,
                "centre": reg.centre[:dim].tolist(),
                "jumps": int(((jump_times[mine] < t_ref) & (jump_times[mine] >= t_ref - W)).sum()),
                "stress_rise": traced["rise"],
            }
            entry = {
                "t": traced["t"].tolist(),
                "sigma": traced["sigma"].tolist(),
                "strain_increment": traced["strain_increment"].tolist(),
                **_jumps_per_frame(jump_frames[mine], jump_vectors[mine], frames),
                "nodes": flat_nodes(reg, grid),
            }
            life = within(traced["t"], t_ref - W, t_ref)
            if yt is not None:
                strain, exchange = cumulative_strain(
                    inside, frames, yt.indices[0], times, unwrapped, self.cells, rate, dim
                )
                during = mine[(jump_times[mine] >= yt.t0) & (jump_times[mine] <= yt.t3)]
                row.update({k: v for k, v in asdict(yt).items() if k != "indices"})
                row.update(
                    strain_at_yield=float(strain[yt.indices[2]]),
                    members_t0=len(inside[yt.indices[0]]),
                    p_ext=extensional_share(jump_vectors[during]),
                    yield_from=source,
                )
                entry.update(
                    strain=strain.tolist(),
                    exchange=exchange.tolist(),
                    members_t0=inside[yt.indices[0]].tolist(),
                    members_t1=inside[yt.indices[1]].tolist(),
                )
                life = within(traced["t"], yt.t0, yt.t3)
                self.covered.add("yielded", frames[life], [inside[m] for m in np.flatnonzero(life)])
            self.covered.add("all", frames[life], [inside[m] for m in np.flatnonzero(life)])
            self.table.append(row)
            self.series.append(entry)
        if not (self.contrast and regions):
            return
        radius = float(np.mean([r.radius for r in regions]))
        quiet, straddling = contrast_spheres(regions, cell_ref, grid, radius, self.contrast, self.rng)
        for kind, spheres in (("quiet", quiet), ("straddling", straddling)):
            if not spheres:
                continue
            sphere_members = members_of(region_lookup(spheres, dim, grid))
            for sph in spheres:
                inside = sphere_members(sph.label)
                traced = traced_in(inside, sph.volume)
                strain, exchange = cumulative_strain(inside, frames, 0, times, unwrapped, self.cells, rate, dim)
                yt = yield_times(traced["t"], traced["sigma"], self.smoothing)
                self.contrasts.append(
                    {
                        "window": w,
                        "kind": kind,
                        "t_ref": float(t_ref),
                        "volume": sph.volume,
                        "radius": radius,
                        "centre": sph.centre[:dim].tolist(),
                        "stress_rise": traced["rise"],
                        "yield_detected": yt is not None,
                    }
                )
                self.contrast_series.append(
                    {
                        "t": traced["t"].tolist(),
                        "sigma": traced["sigma"].tolist(),
                        "strain": strain.tolist(),
                        "exchange": exchange.tolist(),
                        "nodes": flat_nodes(sph, grid),
                    }
                )
