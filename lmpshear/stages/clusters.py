"""The clusters stage: dynamic regions (coarse and undersize sieves) and convective clusters traced
back (σ_c, γ_c, n_cj, R, t0..t3; P̄_c, σ_c,y, η_c of eq. 8, ξ_c, t_y), with the yields that
``lmpshear ice`` averaged and the checks of the sampling against the paper's resolution."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmpshear.errors import UserError
from lmpshear.rundir import read_json
from lmpshear.stages.base import Context, Stage, needs_jumps_stress_and_shear

#: the paper traces every Δt ≈ 0.01 t_χ; below this many frames per t_χ the curves are too coarse
MIN_FRAMES_PER_T_CHI = 50
#: windows of t_χ the steady window should hold
MIN_WINDOWS = 20
#: time origins χ4 should average at t_χ
MIN_ORIGINS_AT_T_CHI = 10


def convective_options(a) -> dict:
    """The convective-cluster kernel's options from the [analysis] parameters (plain values)."""
    return {
        "fine": a.cluster_fine,
        "tolerance": a.threshold_tolerance,
        "stz_diameter": a.stz_diameter,
        "min_stz": a.min_stz,
        "prune_fine": a.prune_fine,
        "trace_before": a.trace_before,
        "trace_after": a.trace_after,
        "max_windows": a.max_windows,
        "contrast": a.contrast,
        "p_c_clusters": a.p_c_clusters,
        "atomic_stress": a.atomic_stress,
        "threshold_rule": a.cluster_threshold,
        "fdr": a.cluster_fdr,
        "min_jumps_per_block": a.min_jumps_per_block,
    }


def coarse_grain(ctx: Context, lx: float) -> tuple[int, float | None]:
    """The coarse sieve's nodes per edge and its kernel length (None for blocks): the kernel's nodes are
    d/2 apart (d the first minimum of g(r)); blocks are ``cluster_block`` long, else L/``cluster_blocks``."""
    a = ctx.analysis
    if a.cluster_sieve == "kernel":
        first_minimum = ctx.product("structure")["first_minimum"]
        if first_minimum is None:
            raise UserError("the kernel sieve needs the first minimum of g(r), which the structure stage did not find")
        kernel = a.kernel_scale * first_minimum
        return int(np.ceil(2 * lx / kernel)), kernel
    if a.cluster_block:  # a length; 0 or unset: cluster_blocks per edge
        return max(2, int(round(lx / a.cluster_block))), None
    return a.cluster_blocks, None


def clusters(ctx: Context) -> dict:
    from lmpshear.kernels.convective import convective_clusters
    from lmpshear.kernels.sieve import window_multiple

    a = ctx.analysis
    window = ctx.steady
    jumps = ctx.jumps().copy()
    jumps["frame"] = np.searchsorted(window.frames, jumps["frame"].to_numpy())  # position in the window
    t_chi = ctx.product("overlap")["t_chi"]
    lx = window.cells[0].lx
    coarse, kernel = coarse_grain(ctx, lx)
    times = window.times
    multiple, why = window_multiple(
        len(jumps),
        float(times[-1] - times[0]),
        window.cells[0],
        coarse,
        kernel,
        a.cluster_window,
        a.min_jumps_per_block,
        t_chi,
    )
    result = convective_clusters(
        times,
        window.cells,
        window.unwrapped,
        window.virial_xy,
        jumps,
        ctx.info.rate,
        t_chi,
        window=multiple * t_chi,
        coarse=coarse,
        kernel_length=kernel,
        ice_yields=ice_yields(ctx.input("ice")) if ctx.rd.file("ice").is_dir() else {},
        progress=ctx.progress,
        **convective_options(a),
    )
    s = result["summary"]
    s["coarse_block"], s["kernel_length"] = lx / coarse, kernel
    s["window_multiple"], s["window_rule"] = multiple, why
    s["warnings"] += resolution_warnings(times, ctx.product("overlap"), t_chi)
    return result


def ice_yields(folder: Path) -> dict:
    """The yields (t0..t3, σ_c,y) of the mean curves of the clusters that ``lmpshear ice`` averaged, by
    (window, region) (the paper's MD procedure)."""
    found = {}
    for path in sorted(folder.glob("cluster-*.json")):
        out = read_json(path)
        if out.get("yield"):
            found[(int(out["row"]["window"]), int(out["row"]["region"]))] = out["yield"]
    return found


def resolution_warnings(times: np.ndarray, overlap: dict, t_chi: float) -> list[str]:
    """Checks of the sampling against the paper's resolution (Δt ≈ 0.01 t_χ, many windows)."""
    dt, span = float(times[1] - times[0]), float(times[-1] - times[0])
    out = []
    if t_chi < MIN_FRAMES_PER_T_CHI * dt:
        out.append(
            f"t_chi = {t_chi:.4g} is only {t_chi / dt:.3g} frames (the paper traces every ~0.01 t_chi; "
            f"fewer than {MIN_FRAMES_PER_T_CHI}): sample more often (a shorter sample_interval) or check t_chi"
        )
    if span < MIN_WINDOWS * t_chi:
        out.append(
            f"the steady window ({span:.4g}) holds {span / t_chi:.3g} windows of t_chi, fewer than "
            f"{MIN_WINDOWS}: run a longer production"
        )
    lags = np.asarray(overlap["times"])
    at = int(np.argmin(np.abs(lags - t_chi)))
    if overlap["n_origins"][at] < MIN_ORIGINS_AT_T_CHI:
        out.append(
            f"chi4 averages only {overlap['n_origins'][at]} time origins at t_chi (fewer than "
            f"{MIN_ORIGINS_AT_T_CHI}): raise chi4_origins or run longer"
        )
    return out


def _describe(r: dict) -> str:
    """The headline numbers; the sieve's threshold, dispersion, stress run-ups and the nulls' ξ_c are in
    clusters.json's summary."""
    s = r["summary"]
    kept, null = s["kept_fraction"], s["null"]["uniform"]["kept_fraction"]
    return (
        f"{s['clusters']} clusters in {s['windows']} windows of W = {s['window']:.4g} "
        f"({s['window'] / s['t_chi']:.3g} t_chi), {s['yielded']} yielded"
        + (f" ({s['yield_from_ice']} from the ICE)" if s["yield_from_ice"] else "")
        + f": P_c = {s['P_c_mean']:.3g}, eta_c = {s['eta_c']:.4g}, xi_c = {s['xi_c']:.3g}, t_y = {s['t_y']:.3g}; "
        f"the sieve keeps {kept:.2f} of the box (uniform null {null:.2f}); "
        f"significance rule: xi_c = {s['significance']['xi_c']:.3g}"
    )


STAGES = (
    Stage(
        name="clusters",
        inputs=("store", "config", "cagejumps", "jumps", "overlap", "structure", "ice"),
        keys=(
            "cluster_sieve",
            "kernel_scale",
            "cluster_blocks",
            "cluster_block",
            "cluster_window",
            "min_jumps_per_block",
            "cluster_fine",
            "threshold_tolerance",
            "stz_diameter",
            "min_stz",
            "prune_fine",
            "trace_before",
            "trace_after",
            "max_windows",
            "contrast",
            "p_c_clusters",
            "atomic_stress",
            "cluster_threshold",
            "cluster_fdr",
        ),
        compute=clusters,
        describe=_describe,
        needs=needs_jumps_stress_and_shear,
        # 2: the fidelity pass (windows, spans, diagnostics, conventions); 3: members at t0, t1; 4: the null model;
        # 5: the significance rule's sieve beside the paper's
        version=5,
        page="clusters.md",
        what="dynamic regions, convective clusters traced back; P_c, eta_c (eq. 8), xi_c, t_y",
    ),
)
