"""The dynamics stages: viscosity (eq. 1), structure (g(r)), msd (and the cage size l_c²), overlap
(Q, χ4 of eq. 14, t_χ) and cagejumps (Candelier, eq. 11)."""

from __future__ import annotations

import numpy as np

from lmpshear.errors import UserError
from lmpshear.stages.base import Context, Stage, needs_cage_size, needs_thermo_and_shear


def viscosity(ctx: Context) -> dict:
    from lmpshear.kernels.viscosity import viscosity as eta
    from lmpshear.store import read_thermo

    result = eta(read_thermo(ctx.input("thermo")), ctx.info.rate, ctx.info.steady_strain, ctx.analysis.blocks)
    return result.as_dict() | {"summary": result.summary()}


def structure(ctx: Context) -> dict:
    from lmpshear.kernels.structure import pair_distribution

    traj = ctx.traj
    window = ctx.steady.frames
    picks = np.unique(np.round(np.linspace(window[0], window[-1], ctx.analysis.structure_frames)).astype(int))
    cells = [traj.cell(int(k)) for k in picks]
    spacing = (cells[0].volume / traj.n_particles) ** (1.0 / traj.dimension)
    narrowest = min(c.widths()[: traj.dimension].min() for c in cells)  # the tilt changes between frames
    r_max = min(5.0 * spacing, 0.45 * narrowest)
    g = pair_distribution(traj.unwrapped(list(picks)), cells, traj.typeid, traj.types, r_max, 250)
    try:
        first_min = g.first_minimum()
    except ValueError:
        first_min = None
    return {
        "r": g.r.tolist(),
        "g": g.total.tolist(),
        "partial": g.partial.tolist(),
        "types": list(g.types),
        "first_minimum": first_min,
        "frames": picks.tolist(),
    }


def _describe_structure(r: dict) -> str:
    first = f"{r['first_minimum']:.4g}" if r["first_minimum"] is not None else "none (beyond the range)"
    return f"g(r) to r = {r['r'][-1]:.3g}, first minimum at {first}"


def msd(ctx: Context) -> dict:
    from lmpshear.kernels.msd import cage_size, mean_square_displacement
    from lmpshear.kernels.overlap import log_lags, origins_in

    a = ctx.analysis
    traj, window = ctx.traj, ctx.steady
    origins = origins_in(0, len(window) - 2, a.max_origins)
    lags = log_lags(len(window) - 1, a.n_lags)
    cr = a.value("cage_relative", traj.dimension)
    kwargs = {}
    if cr:
        r_nn = ctx.product("structure")["first_minimum"]
        if r_nn is None:
            raise UserError("g(r) has no first minimum within its range; cannot pick cage neighbours")
        kwargs = {"positions": window.unwrapped, "cells": window.cells, "neighbour_cutoff": r_nn}
    m = mean_square_displacement(window.nonaffine, window.times, traj.typeid, traj.types, origins, lags, **kwargs)
    result = m.as_dict()
    curve = m.msd_cage_relative if cr and m.msd_cage_relative is not None else m.msd
    result["cage_size_from"] = "cage-relative MSD" if cr else "MSD"
    try:  # always measured, and reported beside a given value
        c = cage_size(m.times, curve, a.crossover_fraction)
        result |= {"cage_size_measured": c.value, "cage_size_time": c.time, "cage_size_criterion": c.criterion}
    except UserError as exc:
        result |= {"cage_size_measured": None, "cage_size_time": None, "cage_size_criterion": str(exc)}
    if a.cage_size is not None:
        result |= {"cage_size": a.cage_size, "cage_size_used": "given ([analysis] cage_size)"}
    else:
        result |= {"cage_size": result["cage_size_measured"], "cage_size_used": "measured"}
    return result


def _describe_msd(r: dict) -> str:
    measured = (
        f"measured {r['cage_size_measured']:.4g} from the {r['cage_size_from']}"
        if r["cage_size_measured"]
        else f"none measured: {r['cage_size_criterion']}"
    )
    lc = (
        f"l_c^2 = {r['cage_size']:.4g} ({r['cage_size_used']}; {measured})"
        if r["cage_size"]
        else f"no cage size: {r['cage_size_criterion']}"
    )
    return f"MSD over {len(r['lags'])} lags up to t = {r['times'][-1]:.4g}, final {r['msd'][-1]:.4g}; {lc}"


def overlap(ctx: Context) -> dict:
    from lmpshear.kernels.overlap import log_lags, origins_in, susceptibility

    a = ctx.analysis
    window = ctx.steady
    radius = a.value("overlap_a", ctx.traj.dimension)
    s = susceptibility(
        window.unwrapped,
        window.nonaffine,
        window.cells,
        window.times,
        ctx.info.temperature,
        radius,
        origins_in(0, len(window) - 2, a.chi4_origins),
        log_lags(len(window) - 1, a.n_lags),
        a.t_chi_fraction,
    )
    return s.as_dict()


def _describe_overlap(r: dict) -> str:
    peak = int(np.argmax(r["chi4"]))
    how = (
        f"fitted over t = {r['t_chi_lags'][0]:.3g}..{r['t_chi_lags'][1]:.3g}"
        if r.get("t_chi_method") == "fit"
        else "the argmax"
    )
    return (
        f"a = {r['a']:g}: t_chi = {r['t_chi']:.4g} +/- {r['t_chi_error']:.2g} ({how}), "
        f"chi4 max = {r['chi4'][peak]:.4g} "
        f"+/- {r['chi4_error'][peak]:.2g} over {r['n_origins'][peak]} origins (self: t_chi = {r['t_chi_self']:.4g})"
    )


def cagejumps(ctx: Context) -> dict:
    from lmpshear.kernels.cagejumps import cage_jumps

    threshold = ctx.cage_size()
    if threshold is None:
        raise UserError("no cage size l_c^2: the MSD stage found no plateau; set [analysis] cage_size (or --cage-size)")
    traj, window = ctx.traj, ctx.steady
    jumps = cage_jumps(
        window.nonaffine,
        window.unwrapped,
        window.times,
        threshold,
        ctx.analysis.min_segment,
        particles_per_block=window.particle_block(),
    )
    table = jumps.to_frame()
    table["frame"] = window.frames[table["frame"].to_numpy()]  # the store's frame index
    path = ctx.rd.file("jumps")
    tmp = path.with_name("." + path.name + ".tmp")
    table.to_csv(tmp, index=False, compression="gzip", float_format="%.10g")
    tmp.replace(path)
    duration = float(window.times[-1] - window.times[0])
    lengths = np.sqrt((jumps.vector**2).sum(axis=1))
    return {
        "threshold": threshold,
        "jumps": len(jumps),
        "table": path.name,
        "frames": [int(window.frames[0]), int(window.frames[-1])],
        "duration": duration,
        "jumps_per_particle_per_time": len(jumps) / traj.n_particles / duration if duration > 0 else None,
        "mean_jump_length": float(lengths.mean()) if len(jumps) else None,
        "particles_with_jumps": int(len(np.unique(jumps.particle))),
    }


STAGES = (
    Stage(
        name="viscosity",
        inputs=("thermo", "config"),
        keys=("blocks",),
        compute=viscosity,
        describe=lambda r: r["summary"],
        needs=needs_thermo_and_shear,
        what="eta = -<P_xy^vir>/rate (eq. 1) and eta_total, block error bars",
    ),
    Stage(
        name="structure",
        inputs=("store", "config"),
        keys=("structure_frames",),
        compute=structure,
        describe=_describe_structure,
        what="partial and total g(r) in the steady window; its first minimum",
    ),
    Stage(
        name="msd",
        inputs=("store", "config", "structure"),
        keys=("cage_size", "crossover_fraction", "cage_relative", "max_origins", "n_lags"),
        compute=msd,
        describe=_describe_msd,
        version=2,  # 2: cage_size_measured beside the value used
        what="MSD of the non-affine path per species, cage-relative MSD (eq. 12-13), cage size l_c^2",
    ),
    Stage(
        name="overlap",
        inputs=("store", "config"),
        keys=("overlap_a", "chi4_origins", "n_lags", "t_chi_fraction"),
        compute=overlap,
        describe=_describe_overlap,
        version=3,  # 2: jackknife errors; 3: t_chi fitted
        what="Q(t), chi4(t) collective (eq. 14) and self, t_chi",
    ),
    Stage(
        name="cagejumps",
        inputs=("store", "config", "msd"),
        keys=("cage_size", "min_segment"),
        compute=cagejumps,
        describe=lambda r: (
            f"{r['jumps']} cage jumps (l_c^2 = {r['threshold']:.4g}) in {r['particles_with_jumps']} "
            f"particles -> {r['table']}"
        ),
        needs=needs_cage_size,
        what="Candelier cage jumps (eq. 11): one row per jump in cagejumps.csv.gz",
    ),
)
