"""Convective clusters (the paper's Fig. 1c, 2, 3 and eq. 8): the windows' dynamic regions found by the
sieve (:mod:`lmpshear.kernels.sieve`), each traced back in time with the flow
(:mod:`lmpshear.kernels.traceback`), and the system's summary: P_c, σ_c,y, η_c, ξ_c, t_y.
"""

from __future__ import annotations

import time

import numpy as np

from lmpshear.cell import Cell
from lmpshear.errors import UserError
from lmpshear.kernels.cagejumps import carried_jumps
from lmpshear.kernels.sieve import NULL_DRAWS, Sieve, radius_of_volume, sieve_warnings
from lmpshear.kernels.traceback import Tracer, within


def convective_clusters(
    times: np.ndarray,
    cells: list[Cell],
    unwrapped: np.ndarray,
    virial_xy: np.ndarray,
    jumps,
    rate: float,
    t_chi: float,
    *,
    coarse: int,
    window: float | None = None,
    kernel_length: float | None = None,
    fine: int | None,
    tolerance: float,
    stz_diameter: float,
    min_stz: float,
    prune_fine: bool,
    trace_before: float,
    trace_after: float,
    max_windows: int,
    contrast: int,
    p_c_clusters: str,
    atomic_stress: str,
    threshold_rule: str,
    fdr: float,
    min_jumps_per_block: float,
    ice_yields: dict | None = None,
    seed: int = 0,
    smoothing: int = 5,
    progress=None,
) -> dict:
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
    # typed even when empty (a table of no jumps reads back with object columns)
    jumps = jumps.astype({c: np.float64 for c in ["time", *axes, *("d" + a for a in axes)]} | {"frame": np.int64})
    windows = []  # (t_ref, its frame, the window's jumps carried to t_ref, their rows)
    for t_start in np.arange(times[0], times[-1] - W + 1e-12, W)[:max_windows]:
        k_ref = int(np.argmin(np.abs(times - (t_start + W))))
        windows.append(
            (times[k_ref], k_ref, *carried_jumps(jumps, t_start, t_start + W, cells[k_ref], rate, times[k_ref]))
        )
    sieve = Sieve(
        windows,
        cells,
        unwrapped,
        rate,
        coarse,
        rule=threshold_rule,
        fdr=fdr,
        rng=np.random.default_rng(seed + 1),
        options={
            "fine": fine,
            "tolerance": tolerance,
            "kernel_length": kernel_length,
            "stz_diameter": stz_diameter,
            "min_stz": min_stz,
            "prune_fine": prune_fine,
        },
    )
    report(f"{len(windows)} windows of {W:.4g} sieved; the {NULL_DRAWS} draws of the particles null pooled")
    nulls = sieve.null_pass()
    report("the uniform and particles nulls sieved")
    significant = sieve.significance_pass()
    report("the significance rule's pass done; tracing the clusters")
    tracer = Tracer(
        times,
        cells,
        unwrapped,
        virial_xy,
        jumps,
        rate,
        W,
        trace_before,
        trace_after,
        contrast,
        ice_yields or {},
        smoothing,
        np.random.default_rng(seed),
    )
    # reach[w]: the first frame that window w or a later one traces; the frames before it are settled
    reach = np.minimum.accumulate(([tracer.first_frame(t_ref) for t_ref, *_ in windows] + [len(times)])[::-1])[::-1]
    diagnostics, grid, every = [], None, max(1, len(windows) // 10)
    for w, (t_ref, k_ref, events, _) in enumerate(windows):
        diagnostics.append(diag := sieve.diagnostics(w, unwrapped.shape[1]))
        if len(events):
            regions, fields = sieve.window(w)
            grid = int(fields["fine"])  # the same in every window: shear keeps the edges
            diag.update(threshold=sieve.thresholds[-1], kept_fraction=fields["kept_fraction"], regions=len(regions))
            tracer.window(w, t_ref, cells[k_ref], regions, grid)
        if (w + 1) % every == 0 or w + 1 == len(windows):
            report(f"window {w + 1} of {len(windows)} traced, {len(tracer.table)} clusters so far")
        tracer.covered.settle(before=int(reach[w + 1]))
    return _result(
        tracer,
        sieve,
        diagnostics,
        nulls,
        significant,
        times,
        windows,
        grid,
        rate,
        t_chi,
        W,
        dim,
        p_c_clusters=p_c_clusters,
        atomic_stress=atomic_stress,
        threshold_rule=threshold_rule,
        fdr=fdr,
        span_trace=(trace_before, trace_after),
        kernel_length=kernel_length,
        min_jumps_per_block=min_jumps_per_block,
    )


def _result(
    tracer: Tracer,
    sieve: Sieve,
    diagnostics: list,
    nulls: dict,
    significant: dict,
    times: np.ndarray,
    windows: list,
    grid: int | None,
    rate: float,
    t_chi: float,
    W: float,
    dim: int,
    *,
    p_c_clusters: str,
    atomic_stress: str,
    threshold_rule: str,
    fdr: float,
    span_trace: tuple[float, float],
    kernel_length: float | None,
    min_jumps_per_block: float,
) -> dict:
    """The tables and series the tracer collected, P_c(t) and the summary (see convective_clusters)."""
    table, contrasts = tracer.table, tracer.contrasts
    trace_before, trace_after = span_trace
    refs = [t_ref for t_ref, _, _, _ in windows]
    span = (
        within(times, refs[0] + trace_after * W, refs[-1] - trace_before * W)
        if refs
        else np.zeros(len(times), dtype=bool)
    )
    p_c = tracer.covered.fractions()
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
    used = [d for d in diagnostics if d["jumps"]]
    warnings = sieve_warnings(
        sieve.background, used, span, len(windows), trace_before + trace_after, kernel_length, min_jumps_per_block
    )
    finite = [t for t in sieve.thresholds if np.isfinite(t)]
    summary = {
        "threshold": sieve.background if threshold_rule == "background" else float(np.mean(finite or [np.inf])),
        "threshold_rule": threshold_rule,
        "fdr": fdr if threshold_rule == "significance" else None,
        "null": nulls,
        "significance": significant,
        "windows": len(windows),
        "window": W,
        "clusters": len(table),
        "clusters_per_window": len(table) / max(1, sum(1 for _, _, ev, _ in windows if len(ev))),
        "yielded": len(yielded),
        "yield_from_ice": sum(r.get("yield_from") == "ice" for r in yielded),
        "p_c_clusters": p_c_clusters,
        "P_c_mean": p_bar[p_c_clusters],
        "P_c_mean_all": p_bar["all"],
        "P_c_mean_yielded": p_bar["yielded"],
        "P_c_span": [float(times[span][0]), float(times[span][-1])] if span.any() else None,
        "atomic_stress": atomic_stress,
        "sigma_c_y": factor[atomic_stress] * sigma_y,
        "eta_c": eta_c(p_bar[p_c_clusters], factor[atomic_stress] * sigma_y),
        "by_convention": {
            c: {"sigma_c_y": f * sigma_y, **{f"eta_c_{k}": eta_c(p_bar[k], f * sigma_y) for k in p_bar}}
            for c, f in factor.items()
        },
        "V_c": v_c,
        "xi_c": float(radius_of_volume(v_c, dim)),
        "xi_c_all": float(radius_of_volume(v_all, dim)),
        "xi_c_mean_radius": float(np.mean([r["xi"] for r in table])) if table else float("nan"),
        "t_y": float(np.mean([r["t2"] - r["t0"] for r in yielded])) if yielded else float("nan"),
        "t_chi": t_chi,
        "grid": grid,
        "mean_jumps_per_block": float(np.mean([d["mean_jumps_per_block"] for d in used])) if used else 0.0,
        "jumps_per_particle_per_window": float(np.mean([d["jumps_per_particle"] for d in used])) if used else 0.0,
        "kept_fraction": float(np.mean([d["kept_fraction"] for d in used])) if used else 0.0,
        "dispersion_index": float(np.nanmean([d["dispersion_index"] for d in used])) if used else float("nan"),
        "dispersion_z": float(np.nanmean([d["dispersion_z"] for d in used])) if used else float("nan"),
        "warnings": warnings,
        "stress_rise": {
            "clusters": mean_rise(table),
            **{kind: mean_rise([c for c in contrasts if c["kind"] == kind]) for kind in ("quiet", "straddling")},
        },
    }
    return {
        "summary": summary,
        "clusters": table,
        "series": tracer.series,
        "sieve": diagnostics,
        "contrast": contrasts,
        "contrast_series": tracer.contrast_series,
        "P_c": {
            "t": times[span].tolist(),
            "P_c": p_c[p_c_clusters][span].tolist(),
            "all": {"t": times.tolist(), "yielded": p_c["yielded"].tolist(), "all": p_c["all"].tolist()},
        },
    }


def choose_cluster(result: dict, cluster: int | None) -> int:
    """Row ``cluster`` of a clusters result, checked; by default a typical one: the yielded cluster of the
    median volume (the lower of the two middle ones), first in the table among equals. The largest would
    show the sieve's worst case, a region that may span the box, as if it were the rule."""
    rows = result["clusters"]
    if not rows:
        raise UserError("the run has no convective clusters to draw (clusters.json lists none)")
    if cluster is not None:
        if not 0 <= cluster < len(rows):
            raise UserError(f"--cluster {cluster}: the cluster table has rows 0..{len(rows) - 1}")
        return cluster
    yielded = [k for k, row in enumerate(rows) if "t2" in row] or list(range(len(rows)))
    by_volume = sorted(yielded, key=lambda k: (rows[k]["volume"], k))
    return by_volume[(len(by_volume) - 1) // 2]
