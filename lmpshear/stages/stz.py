"""The STZ stages: phm (pseudo-harmonic modes of yielded clusters at t0, their cores matched with the
cage-jump spots of [t0, t1) against a null model) and facilitation (g_cj(r), α(r) of the jumps that
follow the clusters' yield, eq. 10, and ξ_α)."""

from __future__ import annotations

import time

import numpy as np

from lmpshear.errors import UserError
from lmpshear.stages.base import Context, Stage, needs_jumps_stress_and_shear

#: radii (d0) at which the PHM cores are matched with the cage-jump spots
MATCH_RADII = np.arange(0.5, 4.01, 0.5)


def _with_members(result: dict) -> list[tuple[dict, dict]]:
    """(row, series entry) of every yielded cluster that carries its members (clusters version 3)."""
    return [
        (row, entry)
        for row, entry in zip(result["clusters"], result["series"])
        if "t0" in row and "members_t0" in entry
    ]


def yielded(ctx: Context) -> list[tuple[dict, dict]]:
    found = _with_members(ctx.product("clusters"))
    if not found:
        raise UserError(
            "no yielded cluster with its members in clusters.json: run the clusters stage again "
            "(lmpshear analyze RUNDIR --only clusters --force)"
        )
    return found


def phm(ctx: Context) -> dict:
    from lmpshear import config
    from lmpshear.kernels import matching
    from lmpshear.kernels.hessian import PairPotential

    a = ctx.analysis
    widths = ctx.steady.cells[0].widths()
    if 2 * a.phm_shell >= min(widths[: ctx.traj.dimension]):
        raise UserError(
            f"phm_shell = {a.phm_shell:g} reaches across the cell (its narrowest width is "
            f"{min(widths[: ctx.traj.dimension]):.4g}): it frees the whole cell, whose translations are "
            "zero modes; lower phm_shell"
        )
    potential = PairPotential.of(config.load(ctx.input("config")).system)
    clusters = yielded(ctx)
    picks = np.unique(np.round(np.linspace(0, len(clusters) - 1, min(a.phm_clusters, len(clusters)))).astype(int))
    rows = []
    for n, k in enumerate(picks):
        row, entry = clusters[k]
        out = _phm_of_cluster(ctx, potential, row, np.asarray(entry["members_t0"]), seed=int(k))
        rows.append(out)
        what = (
            f"skipped: {out['skipped']}"
            if "skipped" in out
            else f"({out['members']} particles, {len(out['modes'])} modes, {len(out['spots'])} spots) in "
            f"{out['seconds']:.1f} s"
        )
        ctx.progress(f"phm: cluster {n + 1} of {len(picks)} {what}")
    return matching.pooled(rows, MATCH_RADII, a.phm_cores)


def _phm_of_cluster(ctx: Context, potential, row: dict, members: np.ndarray, seed: int) -> dict:
    """One yielded cluster: its PHMs at t0 (the exterior frozen), the cage-jump spots of [t0, t1)
    carried to t0, and how the cores match the spots (the softest phm_cores, and every core)."""
    from lmpshear.kernels import matching, phm
    from lmpshear.kernels.cagejumps import carried_jumps

    a, traj = ctx.analysis, ctx.traj
    started = time.perf_counter()
    frame = ctx.frame_at(row["t0"])
    cell = traj.cell(frame)
    try:
        found = phm.cluster_modes(
            traj.unwrapped([frame])[0],
            traj.typeid,
            cell,
            potential,
            members,
            starts=a.phm_starts,
            core_radius=a.core_radius,
            shell=a.phm_shell,
        )
    except phm.NotAMinimum as exc:
        return {"window": row["window"], "region": row["region"], "members": len(members), "skipped": str(exc)}
    except np.linalg.LinAlgError:
        raise UserError(
            f"phm: the restricted Hessian of cluster {row['region']} (window {row['window']}) is singular: "
            f"phm_shell = {a.phm_shell:g} frees the whole cell (its translations are zero modes); "
            "lower phm_shell"
        ) from None
    in_cluster = np.isin(found.free, members)  # the rows of a mode that are members (the rest: the shell)
    member_rows = np.searchsorted(found.free, members)  # found.free is sorted: each member's row, in order
    carried = carried_jumps(ctx.jumps(), row["t0"], row["t1"], cell, ctx.info.rate, row["t0"], members)[0][
        :, : traj.dimension
    ]
    spots = np.array(matching.spots(carried, cell, a.spot_link, a.spot_min_jumps)).reshape(-1, traj.dimension)
    # the members side by side about their centre on the torus (unwrapped paths of neighbours can be whole
    # cells apart, and a cluster may cross a face: about one member, it would be drawn in two lobes), for Fig. 4a
    placed = found.relaxed.positions[members]
    centre = cell.centroid(placed)
    shown = centre + cell.minimum_image(placed - centre)
    middle = shown.mean(axis=0)  # the jumps of [t0, t1) drawn beside the members
    every = np.array([c.position for c in found.cores]).reshape(-1, traj.dimension)
    cores = every[: a.phm_cores]
    out = {
        "window": row["window"],
        "region": row["region"],
        "t0": row["t0"],
        "t1": row["t1"],
        "members": len(members),
        "relax_force": found.relaxed.largest_force,
        "relax_displacement": found.relaxed.displacement,
        "overlaps": found.relaxed.overlaps,
        "free": len(found.free),
        "modes": [
            {
                "stiffness": m.stiffness,
                "participation": m.participation,
                "shell_weight": float((m.pi[~in_cluster] ** 2).sum() / (m.pi**2).sum()),
            }
            | c.as_dict()
            for m, c in zip(found.modes, found.cores)
        ],
        "spots": spots.tolist(),
        # for Fig. 4a: the members (relaxed, at t0), the softest modes and the jumps of [t0, t1)
        "members_list": members.tolist(),
        "positions": shown.tolist(),
        "soft_modes": [m.pi[member_rows].tolist() for m in found.modes[: a.phm_cores]],
        "jumps": (middle + cell.minimum_image(carried - middle)).tolist(),
    }
    if len(spots) and len(cores) and len(members) > len(every):
        for key, chosen in (("", cores), ("_all", every)):
            out["match" + key] = matching.match(
                chosen, spots, found.relaxed.positions[members], cell, MATCH_RADII, trials=200, seed=seed
            ).as_dict()
    out["seconds"] = time.perf_counter() - started
    return out


def _describe_phm(r: dict) -> str:
    s = r["summary"]
    return (
        f"{s['clusters']} clusters, {s['spots']} cage-jump spots: {100 * s['matched_at_1.5']:.0f}% within 1.5 d0 "
        f"of one of the softest cores (chance {100 * s['chance_at_1.5']:.0f}%), "
        f"{100 * s['matched_all_at_1.5']:.0f}% of any PHM core (chance {100 * s['chance_all_at_1.5']:.0f}%)"
    )


def facilitation(ctx: Context) -> dict:
    from lmpshear.cell import largest_cutoff
    from lmpshear.kernels import facilitation as fc
    from lmpshear.kernels.cagejumps import carried_jumps

    traj = ctx.traj
    dim = traj.dimension
    try:
        bins = fc.checked_bins(ctx.analysis.value("orientation_bins", dim), dim)
    except ValueError as exc:
        raise UserError(f"[analysis] {exc}") from None
    cell0 = ctx.steady.cells[0]
    r_max = largest_cutoff(min(cell0.lx, cell0.ly, cell0.lz if dim == 3 else np.inf), sheared=True)
    if 2 * ctx.analysis.shell_width > r_max:
        raise UserError(
            f"shell_width = {ctx.analysis.shell_width:g} leaves fewer than two shells below r_max = "
            f"{r_max:.4g} (half the cell's narrowest width): lower it (--set shell_width=...)"
        )
    edges = np.arange(ctx.analysis.shell_width, r_max + 1e-9, ctx.analysis.shell_width)
    counts = np.zeros((len(edges) - 1, bins), dtype=np.int64)
    weight, sources_total, used = 0.0, 0, 0
    dt = float(ctx.times[1] - ctx.times[0])
    rate = ctx.info.rate
    # the jumps in time order, so that each cluster's spans are found by bisection rather than by a
    # mask over the whole table (pair counts do not depend on the rows' order)
    jumps = ctx.jumps().sort_values("time", kind="stable")
    jump_times = jumps["time"].to_numpy()

    def during(start, end):  # the rows carried_jumps keeps (start ≤ time < end), and no others
        return jumps.iloc[np.searchsorted(jump_times, start) : np.searchsorted(jump_times, end)]

    for row, entry in yielded(ctx):
        frame = ctx.frame_at(row["t1"])
        cell = traj.cell(frame)
        t1 = float(ctx.times[frame])
        # sources: the members' jumps next to t1 (those between the frames before and after it)
        sources = carried_jumps(during(t1 - dt, t1 + dt), t1 - dt, t1 + dt, cell, rate, t1, entry["members_t1"])[0][
            :, :dim
        ]
        targets = carried_jumps(during(t1, row["t2"]), t1, row["t2"], cell, rate, t1)[0][:, :dim]
        if not len(sources) or not len(targets):
            continue
        counts += fc.shell_orientation_counts(sources, targets, cell, edges, bins)
        weight += len(sources) * len(targets) / cell.volume
        sources_total += len(sources)
        used += 1
    result = fc.anisotropy(counts, edges, 1, weight, dim)  # g normalised by Σ n_src ρ_tgt
    xi_alpha = fc.breakpoint(result.r, result.alpha, result.error)
    xi_c = ctx.product("clusters")["summary"]["xi_c"]
    return result.as_dict() | {
        "bins": bins,
        "xi_alpha": xi_alpha,
        "clusters": used,
        "sources": sources_total,
        "summary": {"xi_alpha": xi_alpha, "xi_c": xi_c, "ratio": xi_alpha / xi_c if xi_c else None, "clusters": used},
    }


def _describe_facilitation(r: dict) -> str:
    line = f"alpha(r) over {r['clusters']} clusters ({r['sources']} source jumps): xi_alpha = {r['xi_alpha']:.3g}"
    if not np.isfinite(r["xi_alpha"]):  # why: the rule of fc.breakpoint
        line += " (alpha is not 3 sigma above zero in two neighbouring shells: no range within the noise)"
    return f"{line} (xi_c = {r['summary']['xi_c']:.3g})"


def needs_yielded_clusters(ctx: Context) -> str | None:
    reason = needs_jumps_stress_and_shear(ctx)
    if reason is None and ctx.rd.product("clusters").exists() and not _with_members(ctx.rd.made("clusters")):
        reason = "no convective cluster with a detected yield (t0..t3) in clusters.json"
    return reason


def needs_pair_potential(ctx: Context) -> str | None:
    if ctx.info.imported:
        return "no pair potential known for an imported trajectory"
    return needs_yielded_clusters(ctx)


STAGES = (
    Stage(
        name="phm",
        inputs=("store", "config", "clusters", "jumps"),
        keys=("phm_clusters", "phm_starts", "phm_cores", "core_radius", "phm_shell", "spot_link", "spot_min_jumps"),
        compute=phm,
        describe=_describe_phm,
        needs=needs_pair_potential,
        version=2,  # 2: the members drawn about their centre on the torus (Fig. 4a)
        page="stz.md",
        what="PHMs of yielded clusters at t0, their cores matched with the cage-jump spots against a null model",
    ),
    Stage(
        name="facilitation",
        inputs=("store", "config", "clusters", "jumps"),
        keys=("orientation_bins", "shell_width"),
        compute=facilitation,
        describe=_describe_facilitation,
        needs=needs_yielded_clusters,
        page="stz.md",
        what="g_cj(r), alpha(r) of the jumps following the clusters' yield (eq. 10), xi_alpha",
    ),
)
