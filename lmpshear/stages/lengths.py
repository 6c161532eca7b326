"""Lengths of dynamic heterogeneity that do not depend on the sieve: s4 (the four-point structure
factor S4(q, t) at t_χ and at τ_α, and ξ_4 from its small-q fits) and gjj (the cage jumps' pair
correlation g_jj(r) and ξ_jj; it reads the clusters' window W when there is one, so it runs after them:
the stages run in the order of their inputs)."""

from __future__ import annotations

import numpy as np

from lmpshear.errors import UserError
from lmpshear.stages.base import Context, Stage, needs_cage_size


def s4(ctx: Context) -> dict:
    from lmpshear.kernels import fourpoint as fp
    from lmpshear.kernels.overlap import JACKKNIFE_BLOCKS, log_lags, origins_in

    a = ctx.analysis
    window = ctx.steady
    dim = ctx.traj.dimension
    times = window.times
    dt = float(times[1] - times[0])
    structure = ctx.product("structure")
    r, g = np.asarray(structure["r"]), np.asarray(structure["g"])
    q1 = float(2 * np.pi / r[np.argmax(g)])  # the first peak of g(r)
    lags = log_lags(len(window) - 1, a.n_lags)
    fs = fp.self_intermediate_scattering(window.nonaffine, origins_in(0, len(window) - 2, a.max_origins), lags, q1)
    tau_alpha = fp.crossing(times[lags] - times[0], fs, np.exp(-1.0))
    out = {
        "q1": q1,
        "F_s": {"t": (times[lags] - times[0]).tolist(), "F_s": fs.tolist()},
        "tau_alpha": tau_alpha,
        "a": a.value("overlap_a", dim),
        "fit_q_max": a.s4_fit_q_max,
        "at": {},
    }
    smallest = 1.5 * 2 * np.pi / window.cells[0].volume ** (1.0 / dim)  # the upper edge of the first |q| bin
    if a.s4_q_max < smallest:
        raise UserError(
            f"s4_q_max = {a.s4_q_max:g} is below this box's first |q| bin (up to {smallest:.4g}): "
            "no q-vector to compute S4 at; raise it (--set s4_q_max=...)"
        )
    t_chi = ctx.product("overlap")["t_chi"]
    overlap = ctx.product("overlap")
    density = ctx.traj.n_particles / window.cells[0].volume
    for name, t in (("t_chi", t_chi), ("tau_alpha", tau_alpha)):
        lag = int(round(t / dt)) if np.isfinite(t) else 0
        if lag < 1 or lag > len(window) - 3:
            out["at"][name] = {"skipped": f"{name} = {t:.4g} is not within the steady window's lags"}
            continue
        origins = origins_in(0, len(window) - 1 - lag, a.max_origins)
        res = fp.four_point(
            window.unwrapped,
            window.nonaffine,
            window.cells,
            origins,
            lag,
            times,
            out["a"],
            q_max=a.s4_q_max,
            per_bin=a.s4_vectors,
            cone=a.s4_cone,
            blocks=JACKKNIFE_BLOCKS,
        )
        fits = {form: fp.fit_length(res.q, res.s4, res.error, a.s4_fit_q_max, form).as_dict() for form in ("oz", "oz4")}
        directional = {
            d: fp.fit_length(np.asarray(v["q"]), np.asarray(v["s4"]), np.asarray(v["error"]), a.s4_fit_q_max).as_dict()
            for d, v in res.directions.items()
        }
        k = int(np.argmin(np.abs(np.asarray(overlap["times"]) - res.time)))
        out["at"][name] = res.as_dict() | {
            "fits": fits,
            "direction_fits": directional,
            "chi4_self_as_s4": density * ctx.info.temperature * overlap["chi4_self"][k],
        }
    return out | {"summary": _summary(out)}


def _summary(out: dict) -> dict:
    """ξ_4 (OZ) and S4(0) at t_χ and τ_α, with the fit preferred where the quartic term fits better, and
    warnings where a length could not be had (and what to change)."""
    summary = {"tau_alpha": out["tau_alpha"], "q1": out["q1"], "warnings": []}
    short = []  # the times whose fit had too few |q| bins: one warning names them all
    for name, at in out["at"].items():
        if "skipped" in at:
            summary[f"xi4_{name}"] = float("nan")
            summary["warnings"].append(f"no S4 at {name}: {at['skipped']}")
            continue
        fit = at["fits"]["oz"]
        if fit["points"] <= 2:
            short.append((name, fit["points"], at["q"][0]))
        oz, oz4 = at["fits"]["oz"], at["fits"]["oz4"]
        summary |= {
            f"xi4_{name}": oz["xi"],
            f"xi4_{name}_error": oz["xi_error"],
            f"s4_zero_{name}": oz["s4_zero"],
            f"reduced_chi2_{name}": oz["reduced_chi2"],
            f"xi4_{name}_oz4": oz4["xi"],
            f"xi4_{name}_oz4_error": oz4["xi_error"],
            f"better_fit_{name}": "oz4" if oz4["reduced_chi2"] < oz["reduced_chi2"] else "oz",
            f"chi4_self_as_s4_{name}": at["chi4_self_as_s4"],
            f"s4_q0_{name}": at["s4_zero"],
        }
    if short:
        names = " and ".join(name for name, _, _ in short)
        _, points, smallest = short[0]
        summary["warnings"].append(
            f"no xi_4 at {names}: only {points} |q| bins at q <= {out['fit_q_max']:g} (the box's smallest q is "
            f"{smallest:.3g}): the box is too small for the fit; use more particles, or raise s4_fit_q_max "
            "(--set s4_fit_q_max=...) knowing that the fit then reaches q xi_4 > 1"
        )
    return summary


def _describe(r: dict) -> str:
    s = r["summary"]
    parts = [
        f"{name}: xi_4 = {s[f'xi4_{name}']:.3g} +/- {s.get(f'xi4_{name}_error', float('nan')):.2g} "
        f"(S4(0) = {s.get(f's4_zero_{name}', float('nan')):.3g}, "
        f"chi2 {s.get(f'reduced_chi2_{name}', float('nan')):.3g})"
        for name in ("t_chi", "tau_alpha")
    ]
    return f"tau_alpha = {r['tau_alpha']:.4g} (F_s at q1 = {r['q1']:.3g}); " + "; ".join(parts)


def gjj(ctx: Context) -> dict:
    """g_jj(r) and ξ_jj of the jumps of windows of t_χ, of the clusters' window W and (gjj_window) of a
    fixed time, tiling the steady window."""
    from lmpshear.cell import largest_cutoff
    from lmpshear.kernels.cagejumps import carried_jumps, null_jumps
    from lmpshear.kernels.jumppairs import jump_correlation

    a, window = ctx.analysis, ctx.steady
    times, cells = window.times, window.cells
    jumps = ctx.jumps().copy()
    jumps["frame"] = np.searchsorted(window.frames, jumps["frame"].to_numpy())  # position in the window
    c0 = cells[0]
    dim = c0.dimension
    # below half the narrowest face distance any frame's cell has (the pair count's cell list needs it;
    # a box that is not cubic, or an imported one, can be narrower than the cubic bound)
    narrowest = min(float(c.reduced().widths()[:dim].min()) for c in cells)
    r_max = min(
        a.gjj_r_max,
        largest_cutoff(min(c0.lx, c0.ly, c0.lz if c0.dimension == 3 else np.inf), sheared=True),
        0.5 * narrowest * (1 - 1e-9),
    )
    windows = {"t_chi": ctx.product("overlap")["t_chi"]}
    if ctx.rd.product("clusters").exists():
        windows["cluster_window"] = ctx.product("clusters")["summary"]["window"]
    if a.gjj_window is not None:  # the same W at every rate: ξ_jj's growth with the rate apart from W's
        windows["fixed_window"] = a.gjj_window
    if a.gjj_bin * 2 > r_max:
        raise UserError(
            f"gjj_bin = {a.gjj_bin:g} leaves fewer than two bins below r_max = {r_max:.4g} (gjj_r_max, "
            "within half the cell's narrowest width): lower it (--set gjj_bin=...)"
        )
    out = {"r_max": r_max, "at": {}}
    for name, W in windows.items():
        spans = []  # (time, frame, carried jumps, their rows) of each window of length W
        for t_start in np.arange(times[0], times[-1] - W + 1e-12, W)[: a.max_windows]:
            k = int(np.argmin(np.abs(times - (t_start + W))))
            carried, rows = carried_jumps(jumps, t_start, t_start + W, cells[k], ctx.info.rate, times[k])
            spans.append((times[k], k, carried, rows))
        null = null_jumps(spans, cells, window.unwrapped, ctx.info.rate, np.random.default_rng(0))["particles"]
        picked = [
            (ev[:, :dim], rows.particle.to_numpy(), cells[k], nu[:, :dim]) for (_, k, ev, rows), nu in zip(spans, null)
        ]
        out["at"][name] = jump_correlation(picked, r_max, a.gjj_bin, a.gjj_fit_min).as_dict() | {"window": W}
    out["summary"] = {f"xi_jj_{name}": at["xi"] for name, at in out["at"].items()} | {
        f"xi_jj_{name}_error": at["xi_error"] for name, at in out["at"].items()
    }
    return out


def _describe_gjj(r: dict) -> str:
    return "; ".join(
        f"W = {at['window']:.3g} ({name}, {at['windows']} windows of {at['jumps']:.0f} jumps): "
        f"xi_jj = {at['xi']:.3g} +/- {at['xi_error']:.2g}, g_jj(first shell) = {at['g'][0]:.3g}"
        for name, at in r["at"].items()
    )


STAGES = (
    Stage(
        name="s4",
        inputs=("store", "config", "overlap", "structure"),
        keys=("overlap_a", "max_origins", "n_lags", "s4_q_max", "s4_vectors", "s4_cone", "s4_fit_q_max"),
        compute=s4,
        describe=_describe,
        page="lengths.md",
        what="four-point structure factor S4(q) at t_chi and tau_alpha (iso and along flow/gradient/vorticity), xi_4",
    ),
    Stage(
        name="gjj",
        inputs=("store", "config", "cagejumps", "jumps", "overlap", "clusters"),
        keys=("max_windows", "gjj_bin", "gjj_r_max", "gjj_fit_min", "gjj_window"),
        compute=gjj,
        describe=_describe_gjj,
        needs=needs_cage_size,
        version=2,  # 2: the excess tested at the first fitted distance, not at r = 0
        page="lengths.md",
        what="g_jj(r) of the cage jumps of a window (W = t_chi, the clusters' W, gjj_window), xi_jj",
    ),
)
