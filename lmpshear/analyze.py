"""``lmpshear analyze``: the analysis stages of one run directory.

Each stage reads run files (and earlier stages' products), writes one JSON product atomically
(plus, for cage jumps, a table), and is skipped when its product is newer than its inputs and was
made with the same parameters; ``force`` redoes it. Stages that cannot apply (no thermo table in an
imported trajectory) are reported and skipped unless asked for by name.

==========  ====================  =================================================================
stage       product               what
==========  ====================  =================================================================
viscosity   viscosity.json        η = −⟨P_xy^vir⟩/γ̇ (eq. 1) and η_total, block error bars
structure   structure.json        partial and total g(r) in the steady window; its first minimum
msd         msd.json              MSD of r̃ per species, cage-relative MSD (eq. 12–13), cage size l_c²
overlap     overlap.json          Q(t), χ4(t) collective (eq. 14) and self, t_χ
cagejumps   cagejumps.json/.csv   Candelier cage jumps (eq. 11): one row per jump
clusters    clusters.json         dynamic regions (coarse + undersize sieves), convective clusters traced
                                  back: σ_c, γ_c, n_cj, R, t0..t3; P̄_c, σ_c,y, η_c (eq. 8), ξ_c, t_y
phm         phm.json              PHMs of yielded clusters at t0 (exterior frozen), their cores matched
                                  with the cage-jump spots of [t0, t1] against a null model
facilitation facilitation.json    g_cj(r), α(r) of the jumps following the clusters' yield (eq. 10), ξ_α
==========  ====================  =================================================================

All trajectory stages use the steady window (:class:`SteadyWindow`): frames at t ≥ the spec's steady
start, read from the store once per `analyze`. Products name frames by their index in the store.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from lmpshear.errors import UserError
from lmpshear.rundir import Product, RunDir, RunInfo, atomic_write_json


class SteadyWindow:
    """The frames of the steady state (t ≥ the steady start) and what the stages read of them, each read
    from the store once: their times, cells and per-particle arrays (frame, particle[, axis])."""

    def __init__(self, traj, steady_time: float, where: Path):
        times = traj.times
        self.traj = traj
        self.frames = np.nonzero(times >= steady_time - 1e-9 * max(1.0, times[-1]))[0]  # indices in the store
        if len(self.frames) < 3:
            raise UserError(f"{where}: only {len(self.frames)} frames in the steady window "
                            f"(t >= {steady_time:g}); the run is too short for this analysis")
        self.times = times[self.frames]

    def __len__(self) -> int:
        return len(self.frames)

    @cached_property
    def cells(self) -> list:
        return [self.traj.cell(int(k)) for k in self.frames]

    @cached_property
    def unwrapped(self) -> np.ndarray:
        return self.traj.unwrapped(list(self.frames))

    @cached_property
    def nonaffine(self) -> np.ndarray:
        return self.traj.nonaffine(list(self.frames))

    @cached_property
    def virial_xy(self) -> np.ndarray:
        return self.traj.virial_xy(list(self.frames))


@dataclass
class Context:
    rd: RunDir
    info: RunInfo
    params: dict
    _traj: object = field(default=None, repr=False)
    _jumps: object = field(default=None, repr=False)  # the cage-jump table, read once
    _steady: SteadyWindow | None = field(default=None, repr=False)
    stage: "Stage | None" = None  # the stage being computed: it may read only the inputs it declares

    @property
    def traj(self):
        if self._traj is None:
            from lmpshear.store import Trajectory

            self._traj = Trajectory(self.rd.store)
        return self._traj

    @property
    def steady(self) -> SteadyWindow:
        if self._steady is None:
            self._steady = SteadyWindow(self.traj, self.info.steady_time, self.rd.path)
        return self._steady

    def input(self, name: str) -> Path:
        """A file of the run directory that the current stage declares as an input (so that its
        product is made again when the file changes); existing."""
        if self.stage is not None and name not in self.stage.inputs:
            raise RuntimeError(f"internal: stage {self.stage.name} reads {name} without declaring it")
        path = self.rd.product(name)
        if not path.exists():
            raise UserError(f"{path.name} is missing: run its stage first")
        return path

    def product(self, name: str) -> dict:
        return Product.read(self.input(name)).result

    def cage_size(self) -> float | None:
        """l_c², one rule: what the msd stage decided ([analysis] cage_size if given, else measured)."""
        return self.product("msd.json")["cage_size"]

    def close(self) -> None:
        if self._traj is not None:
            self._traj.close()


@dataclass(frozen=True)
class Stage:
    name: str
    product: str
    inputs: tuple[str, ...]
    keys: tuple[str, ...]  # the [analysis] parameters it depends on
    compute: Callable[[Context], dict]
    describe: Callable[[dict], str]
    needs: Callable[[Context], str | None] = lambda ctx: None  # why it cannot run, or None
    version: int = 1  # of the product's contents: a product of an older version is made again


# ---------------------------------------------------------------------------------------------
# Stages


def _viscosity(ctx: Context) -> dict:
    from lmpshear.analysis.viscosity import viscosity
    from lmpshear.store import read_thermo

    result = viscosity(read_thermo(ctx.rd.thermo), ctx.info.rate, ctx.info.steady_strain, ctx.params["blocks"])
    return result.as_dict() | {"summary": result.summary()}


def _structure(ctx: Context) -> dict:
    from lmpshear.analysis.structure import pair_distribution

    traj = ctx.traj
    window = ctx.steady.frames
    picks = np.unique(np.round(np.linspace(window[0], window[-1], ctx.params["structure_frames"])).astype(int))
    cells = [traj.cell(int(k)) for k in picks]
    c0 = cells[0]
    volume = c0.volume
    spacing = (volume / traj.n_particles) ** (1.0 / traj.dimension)
    narrowest = min(c.widths()[: traj.dimension].min() for c in cells)  # the tilt changes between frames
    r_max = min(5.0 * spacing, 0.45 * narrowest)
    g = pair_distribution(traj.unwrapped(list(picks)), cells, traj.typeid, traj.types, r_max, 250)
    try:
        first_min = g.first_minimum()
    except ValueError:
        first_min = None
    return {"r": g.r.tolist(), "g": g.total.tolist(), "partial": g.partial.tolist(), "types": list(g.types),
            "first_minimum": first_min, "frames": picks.tolist()}


def _msd(ctx: Context) -> dict:
    from lmpshear.analysis.msd import cage_size, mean_square_displacement
    from lmpshear.analysis.overlap import log_lags, origins_in

    a = ctx.info.analysis
    traj, window = ctx.traj, ctx.steady
    origins = origins_in(0, len(window) - 2, a.max_origins)
    lags = log_lags(len(window) - 1, a.n_lags)
    cr = a.use_cage_relative(traj.dimension)
    kwargs = {}
    if cr:
        r_nn = ctx.product("structure.json")["first_minimum"]
        if r_nn is None:
            raise UserError("g(r) has no first minimum within its range; cannot pick cage neighbours")
        kwargs = {"positions": window.unwrapped, "cells": window.cells, "neighbour_cutoff": r_nn}
    m = mean_square_displacement(window.nonaffine, window.times, traj.typeid, traj.types, origins, lags, **kwargs)
    result = m.as_dict()
    curve = m.msd_cage_relative if cr else m.msd
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
    measured = (f"measured {r['cage_size_measured']:.4g} from the {r['cage_size_from']}" if r["cage_size_measured"]
                else f"none measured: {r['cage_size_criterion']}")
    lc = f"l_c^2 = {r['cage_size']:.4g} ({r['cage_size_used']}; {measured})" if r["cage_size"] else \
        f"no cage size: {r['cage_size_criterion']}"
    return f"MSD over {len(r['lags'])} lags up to t = {r['times'][-1]:.4g}, final {r['msd'][-1]:.4g}; {lc}"


def _overlap(ctx: Context) -> dict:
    from lmpshear.analysis.overlap import log_lags, origins_in, susceptibility

    a = ctx.info.analysis
    window = ctx.steady
    radius = a.overlap_radius(ctx.traj.dimension)
    s = susceptibility(window.unwrapped, window.nonaffine, window.cells, window.times, ctx.info.temperature, radius,
                       origins_in(0, len(window) - 2, a.max_origins), log_lags(len(window) - 1, a.n_lags))
    return s.as_dict()


def _cagejumps(ctx: Context) -> dict:
    from lmpshear.analysis.cagejumps import cage_jumps

    a = ctx.info.analysis
    threshold = ctx.cage_size()
    if threshold is None:
        raise UserError("no cage size l_c^2: the MSD stage found no plateau; set [analysis] cage_size "
                        "(or --cage-size)")
    traj, window = ctx.traj, ctx.steady
    jumps = cage_jumps(window.nonaffine, window.unwrapped, window.times, threshold, a.min_segment)
    table = jumps.to_frame()
    table["frame"] = window.frames[table["frame"].to_numpy()]  # the store's frame index
    tmp = ctx.rd.product(".cagejumps.csv.gz.tmp")
    table.to_csv(tmp, index=False, compression="gzip", float_format="%.10g")
    tmp.replace(ctx.rd.product("cagejumps.csv.gz"))
    duration = float(window.times[-1] - window.times[0])
    lengths = np.sqrt((jumps.vector**2).sum(axis=1))
    return {"threshold": threshold, "jumps": len(jumps), "table": "cagejumps.csv.gz",
            "frames": [int(window.frames[0]), int(window.frames[-1])], "duration": duration,
            "jumps_per_particle_per_time": len(jumps) / traj.n_particles / duration if duration > 0 else None,
            "mean_jump_length": float(lengths.mean()) if len(jumps) else None,
            "particles_with_jumps": int(len(np.unique(jumps.particle)))}


def _clusters(ctx: Context) -> dict:
    import pandas as pd

    from lmpshear.analysis.convective import convective_clusters, window_multiple

    a = ctx.info.analysis
    window = ctx.steady
    jumps = pd.read_csv(ctx.input("cagejumps.csv.gz"))
    jumps["frame"] = np.searchsorted(window.frames, jumps["frame"].to_numpy())  # position in the window
    t_chi = ctx.product("overlap.json")["t_chi"]
    lx = window.cells[0].lx
    kernel, coarse = None, a.cluster_blocks
    if a.cluster_sieve == "kernel":
        kernel = ctx.product("structure.json")["first_minimum"]
        if kernel is None:
            raise UserError("the kernel sieve needs the first minimum of g(r), which the structure stage did not find")
        coarse = int(np.ceil(2 * lx / kernel))  # field nodes d/2 apart
    elif a.cluster_block:  # a length; 0 or unset: cluster_blocks per edge
        coarse = max(2, int(round(lx / a.cluster_block)))
    times = window.times
    multiple, why = window_multiple(len(jumps), float(times[-1] - times[0]), window.cells[0], coarse,
                                    kernel, a.cluster_window, a.min_jumps_per_block, t_chi)
    result = convective_clusters(
        times, window.cells, window.unwrapped, window.virial_xy, jumps, ctx.info.rate, t_chi,
        window=multiple * t_chi, coarse=coarse,
        kernel_length=kernel, params=a, ice_yields=_ice_yields(ctx.rd.path / "ice"))
    s = result["summary"]
    s["coarse_block"] = lx / coarse
    s["window_multiple"], s["window_rule"] = multiple, why
    s["warnings"] += _resolution_warnings(ctx, t_chi)
    return result


def _ice_yields(folder: Path) -> dict:
    """The yields (t0..t3, σ_c,y) of the mean curves of the clusters that ``lmpshear ice`` averaged, by
    (window, region) (the paper's MD procedure)."""
    found = {}
    for path in sorted(folder.glob("cluster-*.json")) if folder.is_dir() else []:
        out = json.loads(path.read_text())
        if out.get("yield"):
            found[(int(out["row"]["window"]), int(out["row"]["region"]))] = out["yield"]
    return found


#: the paper traces every Δt ≈ 0.01 t_χ; below this many frames per t_χ the curves are too coarse
MIN_FRAMES_PER_T_CHI = 50
#: windows of t_χ the steady window should hold
MIN_WINDOWS = 20
#: time origins χ4 should average at t_χ
MIN_ORIGINS_AT_T_CHI = 10


def _resolution_warnings(ctx: Context, t_chi: float) -> list[str]:
    """Checks of the sampling against the paper's resolution (Δt ≈ 0.01 t_χ, many windows)."""
    times = ctx.steady.times
    dt, span = float(times[1] - times[0]), float(times[-1] - times[0])
    overlap = ctx.product("overlap.json")
    out = []
    if t_chi < MIN_FRAMES_PER_T_CHI * dt:
        out.append(f"t_chi = {t_chi:.4g} is only {t_chi / dt:.3g} frames (the paper traces every ~0.01 t_chi; "
                   f"fewer than {MIN_FRAMES_PER_T_CHI}): sample more often (a shorter sample_interval) or check t_chi")
    if span < MIN_WINDOWS * t_chi:
        out.append(f"the steady window ({span:.4g}) holds {span / t_chi:.3g} windows of t_chi, fewer than "
                   f"{MIN_WINDOWS}: run a longer production")
    lags = np.asarray(overlap["times"])
    at = int(np.argmin(np.abs(lags - t_chi)))
    if overlap["n_origins"][at] < MIN_ORIGINS_AT_T_CHI:
        out.append(f"chi4 averages only {overlap['n_origins'][at]} time origins at t_chi (fewer than "
                   f"{MIN_ORIGINS_AT_T_CHI}): raise max_origins or run longer")
    return out


def _describe_clusters(r: dict) -> str:
    s = r["summary"]
    rise = s["stress_rise"]
    text = (f"{s['clusters']} clusters in {s['windows']} windows of {s['window']:.4g} = {s.get('window_rule', '')} "
            f"({s['yielded']} with a yield"
            f"{', %d from the ICE' % s['yield_from_ice'] if s['yield_from_ice'] else ''}): "
            f"P_c = {s['P_c_mean']:.3g} ({s['p_c_clusters']}; all {s['P_c_mean_all']:.3g}, yielded "
            f"{s['P_c_mean_yielded']:.3g}), sigma_c,y = {s['sigma_c_y']:.4g} ({s['atomic_stress']}), "
            f"eta_c = {s['eta_c']:.4g}, xi_c = {s['xi_c']:.3g}, t_y = {s['t_y']:.3g} (t_chi = {s['t_chi']:.3g}); "
            f"sieve: rho_th = {s['threshold']:.3g}, {s['mean_jumps_per_block']:.3g} jumps per block, "
            f"{s['jumps_per_particle_per_window']:.3g} per particle per window, kept volume {s['kept_fraction']:.2f}, "
            f"dispersion index {s['dispersion_index']:.3g} (Poisson 1; z = {s['dispersion_z']:.3g}); largest stress "
            f"run-up: clusters {rise['clusters']:.3g}, contrast spheres outside {rise['quiet']:.3g}, straddling "
            f"{rise['straddling']:.3g}")
    return text


def _yielded(ctx: Context) -> list[tuple[dict, dict]]:
    """(row, series entry) of every yielded cluster that carries its members (clusters version 3)."""
    result = ctx.product("clusters.json")
    return [(row, entry) for row, entry in zip(result["clusters"], result["series"])
            if "t0" in row and "members_t0" in entry]


def _frame_at(ctx: Context, t: float) -> int:
    return int(np.argmin(np.abs(ctx.traj.times - t)))


def _jumps_in(ctx: Context, start: float, end: float, particles=None):
    import pandas as pd

    if ctx._jumps is None:
        ctx._jumps = pd.read_csv(ctx.input("cagejumps.csv.gz"))
    j = ctx._jumps
    sel = j[(j.time >= start - 1e-12) & (j.time <= end + 1e-12)]
    if particles is not None:
        sel = sel[sel.particle.isin(particles)]
    axes = ["x", "y", "z"][: ctx.traj.dimension]
    return sel[axes].to_numpy(), sel.time.to_numpy()


def _phm(ctx: Context) -> dict:
    from lmpshear import config
    from lmpshear.analysis.hessian import PairPotential

    a = ctx.info.analysis
    potential = PairPotential.of(config.load(ctx.input("config.toml")).system)
    yielded = _yielded(ctx)
    if not yielded:
        raise UserError("no yielded cluster with its members in clusters.json: run the clusters stage again "
                        "(lmpshear analyze RUNDIR --only clusters --force)")
    picks = np.unique(np.round(np.linspace(0, len(yielded) - 1, min(a.phm_clusters, len(yielded)))).astype(int))
    radii = np.arange(0.5, 4.01, 0.5)
    pooled = {f"{name}{key}": (0 if name == "spots" else np.zeros(len(radii)))
              for name in ("spots", "spots_matched", "chance") for key in ("", "_all")}
    rows = []
    for n, k in enumerate(picks):
        row, entry = yielded[k]
        out = _phm_of_cluster(ctx, potential, row, np.asarray(entry["members_t0"]), radii, seed=int(k))
        for key in ("", "_all"):
            if "match" + key in out:
                m = out["match" + key]
                pooled["spots" + key] += m["n_spots"]
                pooled["spots_matched" + key] += np.array(m["spots_matched"]) * m["n_spots"]
                pooled["chance" + key] += np.array(m["chance"]) * m["n_spots"]
        rows.append(out)
        what = (f"skipped: {out['skipped']}" if "skipped" in out else
                f"({out['members']} particles, {len(out['modes'])} modes, {len(out['spots'])} spots) in "
                f"{out['seconds']:.1f} s")
        print(f"[lmpshear] phm: cluster {n + 1} of {len(picks)} {what}", file=sys.stderr, flush=True)
    return _phm_summary(rows, pooled, radii, a.phm_cores)


def _phm_of_cluster(ctx: Context, potential, row: dict, members: np.ndarray, radii: np.ndarray, seed: int) -> dict:
    """One yielded cluster: its PHMs at t0 (the exterior frozen), the cage-jump spots of [t0, t1]
    carried to t0, and how the cores match the spots (the softest phm_cores, and every core)."""
    from lmpshear.analysis import matching, phm

    a, traj = ctx.info.analysis, ctx.traj
    started = time.perf_counter()
    frame = _frame_at(ctx, row["t0"])
    cell = traj.cell(frame)
    try:
        found = phm.cluster_modes(traj.unwrapped([frame])[0], traj.typeid, cell, potential, members,
                                  starts=a.phm_starts, core_radius=a.core_radius, shell=a.phm_shell)
    except phm.NotAMinimum as exc:
        return {"window": row["window"], "region": row["region"], "members": len(members), "skipped": str(exc)}
    in_cluster = np.isin(found.free, members)  # the rows of a mode that are members (the rest: the shell)
    member_rows = np.searchsorted(found.free, members)  # found.free is sorted: each member's row, in order
    jumps, times = _jumps_in(ctx, row["t0"], row["t1"], members)
    carried = cell.carry(jumps, times, ctx.info.rate, row["t0"])[:, : traj.dimension]
    spots = np.array(matching.spots(carried, cell, a.spot_link, a.spot_min_jumps)).reshape(-1, traj.dimension)
    # the members side by side (unwrapped paths of neighbours can be whole cells apart), for Fig. 4a
    first = found.relaxed.positions[members[0]]
    shown = first + cell.minimum_image(found.relaxed.positions[members] - first)
    every = np.array([c.position for c in found.cores]).reshape(-1, traj.dimension)
    cores = every[: a.phm_cores]
    out = {"window": row["window"], "region": row["region"], "t0": row["t0"], "t1": row["t1"],
           "members": len(members), "relax_force": found.relaxed.largest_force,
           "relax_displacement": found.relaxed.displacement, "overlaps": found.relaxed.overlaps,
           "free": len(found.free),
           "modes": [{"stiffness": m.stiffness, "participation": m.participation,
                      "shell_weight": float((m.pi[~in_cluster] ** 2).sum() / (m.pi ** 2).sum())} | c.as_dict()
                     for m, c in zip(found.modes, found.cores)],
           "spots": spots.tolist(),
           # for Fig. 4a: the members (relaxed, at t0), the softest modes and the jumps of [t0, t1]
           "members_list": members.tolist(), "positions": shown.tolist(),
           "soft_modes": [m.pi[member_rows].tolist() for m in found.modes[: a.phm_cores]],
           "jumps": (shown.mean(axis=0) + cell.minimum_image(carried - shown.mean(axis=0))).tolist()}
    if len(spots) and len(cores) and len(members) > len(every):
        for key, chosen in (("", cores), ("_all", every)):
            out["match" + key] = matching.match(chosen, spots, found.relaxed.positions[members], cell, radii,
                                                trials=200, seed=seed).as_dict()
    out["seconds"] = time.perf_counter() - started
    return out


def _phm_summary(rows: list[dict], pooled: dict, radii: np.ndarray, n_cores: int) -> dict:
    """The matching ratios pooled over clusters (weighted by their spots) and the cores' statistics."""
    spots = max(pooled["spots"], 1)
    angles = [m["extension_angle"] for r in rows for m in r.get("modes", [])[:n_cores]]
    at = int(np.argmin(np.abs(radii - 1.5)))
    return {"clusters": rows, "radii": radii.tolist(),  # skipped clusters carry "skipped": why
            "matched": (pooled["spots_matched"] / spots).tolist(), "chance": (pooled["chance"] / spots).tolist(),
            "matched_all": (pooled["spots_matched_all"] / spots).tolist(),
            "chance_all": (pooled["chance_all"] / spots).tolist(),
            "spots": pooled["spots"], "core_angles": angles,
            "summary": {"clusters": len(rows), "spots": pooled["spots"],
                        "matched_at_1.5": float(pooled["spots_matched"][at] / spots),
                        "chance_at_1.5": float(pooled["chance"][at] / spots),
                        "matched_all_at_1.5": float(pooled["spots_matched_all"][at] / spots),
                        "chance_all_at_1.5": float(pooled["chance_all"][at] / spots),
                        # with the sign fixed by ε_xy ≥ 0 the axis lies in [0°, 90°]: chance is 1/2
                        "cores_within_22.5_of_45": float(np.mean([abs(x - 45) < 22.5 for x in angles]))
                        if angles else None,
                        "modes_touching_frozen": float(np.mean([m["touches_frozen"] for r in rows
                                                                for m in r.get("modes", [])]))
                        if any(r.get("modes") for r in rows) else None,
                        "shell_weight": float(np.mean([m["shell_weight"] for r in rows for m in r.get("modes", [])]))
                        if any(r.get("modes") for r in rows) else None,
                        "skipped": sum("skipped" in r for r in rows)}}


def _describe_phm(r: dict) -> str:
    s = r["summary"]
    return (f"{s['clusters']} clusters, {s['spots']} cage-jump spots: {100 * s['matched_at_1.5']:.0f}% within 1.5 d0 "
            f"of one of the softest cores (chance {100 * s['chance_at_1.5']:.0f}%), "
            f"{100 * s['matched_all_at_1.5']:.0f}% of any PHM core (chance {100 * s['chance_all_at_1.5']:.0f}%)")


def _facilitation(ctx: Context) -> dict:
    from lmpshear.analysis import facilitation as fc

    a = ctx.info.analysis
    traj = ctx.traj
    dim = traj.dimension
    bins = a.orientation_bins or (16 if dim == 2 else 32)
    if dim == 3 and round((bins / 2) ** 0.5) ** 2 * 2 != bins:
        raise UserError(f"[analysis] orientation_bins = {bins}: in 3D it must be 2 n^2 (8, 18, 32, 50, ...)")
    yielded = _yielded(ctx)
    if not yielded:
        raise UserError("no yielded cluster with its members in clusters.json: run the clusters stage again "
                        "(lmpshear analyze RUNDIR --only clusters --force)")
    from lmpshear.cell import largest_cutoff

    cell0 = ctx.steady.cells[0]
    r_max = largest_cutoff(min(cell0.lx, cell0.ly, cell0.lz if dim == 3 else np.inf), sheared=True)
    edges = np.arange(a.shell_width, r_max + 1e-9, a.shell_width)
    counts = np.zeros((len(edges) - 1, bins), dtype=np.int64)
    weight, sources_total, used = 0.0, 0, 0
    half = 0.5 * float(traj.times[1] - traj.times[0])
    for row, entry in yielded:
        frame = _frame_at(ctx, row["t1"])
        cell = traj.cell(frame)
        t1 = float(traj.times[frame])
        src, src_t = _jumps_in(ctx, t1 - half, t1 + half, entry["members_t1"])
        tgt, tgt_t = _jumps_in(ctx, t1, row["t2"])
        if not len(src) or not len(tgt):
            continue
        sources = cell.carry(src, src_t, ctx.info.rate, t1)[:, :dim]
        targets = cell.carry(tgt, tgt_t, ctx.info.rate, t1)[:, :dim]
        counts += fc.pair_counts(sources, targets, cell, edges, bins)
        weight += len(sources) * len(targets) / cell.volume
        sources_total += len(sources)
        used += 1
    result = fc.anisotropy(counts, edges, 1, weight, dim)  # g normalised by Σ n_src ρ_tgt
    xi_alpha = fc.breakpoint(result.r, result.alpha, result.error)
    xi_c = ctx.product("clusters.json")["summary"]["xi_c"]
    return result.as_dict() | {"bins": bins, "xi_alpha": xi_alpha, "clusters": used, "sources": sources_total,
                               "summary": {"xi_alpha": xi_alpha, "xi_c": xi_c,
                                           "ratio": xi_alpha / xi_c if xi_c else None, "clusters": used}}


def _needs_yielded_clusters(ctx: Context) -> str | None:
    reason = _needs_jumps_stress_and_shear(ctx)
    if reason is None and ctx.rd.product("clusters.json").exists() and not _yielded(ctx):
        reason = "no convective cluster with a detected yield (t0..t3) in clusters.json"
    return reason


def _needs_pair_potential(ctx: Context) -> str | None:
    if ctx.info.imported:
        return "no pair potential known for an imported trajectory"
    return _needs_yielded_clusters(ctx)


def _needs_jumps_stress_and_shear(ctx: Context) -> str | None:
    if ctx.info.imported:
        return "no per-particle stress (an imported trajectory)"
    if ctx.info.rate == 0:
        return "no shear (rate 0)"
    return _needs_cage_size(ctx)


def _needs_thermo_and_shear(ctx: Context) -> str | None:
    if not ctx.rd.thermo.exists():
        return "no thermo table (an imported trajectory)"
    return None if ctx.info.rate > 0 else "no shear (rate 0): no viscosity"


def _needs_cage_size(ctx: Context) -> str | None:
    if ctx.rd.product("msd.json").exists() and ctx.cage_size() is None:
        return "no cage size l_c^2 (the MSD has no plateau); give one with --cage-size or [analysis] cage_size"
    return None


STAGES = {s.name: s for s in (
    Stage("viscosity", "viscosity.json", ("thermo.csv", "config.toml"), (), _viscosity, lambda r: r["summary"],
          _needs_thermo_and_shear),
    Stage("structure", "structure.json", ("traj.gsd", "config.toml"), ("structure_frames",), _structure,
          lambda r: f"g(r) to r = {r['r'][-1]:.3g}, first minimum at "
                    + (f"{r['first_minimum']:.4g}" if r["first_minimum"] is not None else "none (beyond the range)")),
    Stage("msd", "msd.json", ("traj.gsd", "config.toml", "structure.json"),
          ("cage_size", "crossover_fraction", "cage_relative", "max_origins", "n_lags"), _msd, _describe_msd,
          version=2),  # 2: cage_size_measured beside the value used
    Stage("overlap", "overlap.json", ("traj.gsd", "config.toml"), ("overlap_a", "max_origins", "n_lags"), _overlap,
          lambda r: f"a = {r['a']:g}: t_chi = {r['t_chi']:.4g} +/- {r['t_chi_error']:.2g}, chi4 max = "
                    f"{max(r['chi4']):.4g} +/- {r['chi4_error'][int(np.argmax(r['chi4']))]:.2g} over "
                    f"{r['n_origins'][int(np.argmax(r['chi4']))]} origins (self: t_chi = {r['t_chi_self']:.4g})",
          version=2),  # 2: jackknife errors
    Stage("cagejumps", "cagejumps.json", ("traj.gsd", "config.toml", "msd.json"), ("cage_size", "min_segment"), _cagejumps,
          lambda r: f"{r['jumps']} cage jumps (l_c^2 = {r['threshold']:.4g}) in {r['particles_with_jumps']} "
                    f"particles -> {r['table']}", _needs_cage_size),
    Stage("clusters", "clusters.json", ("traj.gsd", "config.toml", "cagejumps.json", "cagejumps.csv.gz", "overlap.json",
                                         "structure.json", "ice"),
          ("cluster_sieve", "cluster_blocks", "cluster_block", "cluster_window", "min_jumps_per_block", "cluster_fine",
           "threshold_tolerance",
           "stz_diameter", "min_stz", "prune_fine", "trace_before", "trace_after", "max_windows", "contrast",
           "p_c_clusters", "atomic_stress"), _clusters, _describe_clusters, _needs_jumps_stress_and_shear,
          version=3),  # 2: the fidelity pass (windows, spans, diagnostics, conventions); 3: members at t0, t1
    Stage("phm", "phm.json", ("traj.gsd", "config.toml", "clusters.json", "cagejumps.csv.gz"),
          ("phm_clusters", "phm_starts", "phm_cores", "core_radius", "phm_shell", "spot_link", "spot_min_jumps"), _phm,
          _describe_phm,
          _needs_pair_potential),
    Stage("facilitation", "facilitation.json", ("traj.gsd", "config.toml", "clusters.json", "cagejumps.csv.gz"),
          ("orientation_bins", "shell_width"), _facilitation,
          lambda r: f"alpha(r) over {r['clusters']} clusters ({r['sources']} source jumps): xi_alpha = "
                    f"{r['xi_alpha']:.3g} (xi_c = {r['summary']['xi_c']:.3g})", _needs_yielded_clusters),
)}


# ---------------------------------------------------------------------------------------------


def _up_to_date(rd: RunDir, stage: Stage, params: dict) -> Product | None:
    path = rd.product(stage.product)
    if not path.exists():
        return None
    stored = Product.read(path)
    if stored.params != params:
        return None
    mtime = path.stat().st_mtime
    if any(rd.product(f).stat().st_mtime > mtime for f in stage.inputs if rd.product(f).exists()):
        return None
    return stored


def analyze(rundir: str | Path, only: list[str] | None = None, force: bool = False, blocks: int = 10,
            overrides: dict | None = None, echo: Callable[[str], None] = print,
            warn: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> dict[str, dict]:
    """Run the stages (all, or ``only``); ``overrides`` replace [analysis] parameters of the spec."""
    from dataclasses import replace

    rd = RunDir(rundir)
    if overrides:  # bad options first: the same checks as the [analysis] table
        from lmpshear import config

        checker = config.Checker("command-line options")
        config.load_analysis(checker, overrides)
        checker.finish()
    if not rd.path.is_dir():
        raise UserError(f"no run directory at {rd.path}")
    if not rd.source.is_file():
        rd.require_prepared()
    if rd.status().get("state") != "complete":
        raise UserError(f"{rd.path} has not finished running (state: {rd.status().get('state')}); "
                        "run it first with: lmpshear run RUNDIR")
    names = only or list(STAGES)
    unknown = [n for n in names if n not in STAGES]
    if unknown:
        raise UserError(f"unknown stage(s) {', '.join(unknown)}; available: {', '.join(STAGES)}")
    info = rd.info()
    if overrides:
        info = replace(info, analysis=replace(info.analysis, **overrides))
    ctx = Context(rd, info, {"blocks": blocks} | asdict(info.analysis))
    results, outcome = {}, {}
    try:
        for name in names:
            stage = STAGES[name]
            reason = stage.needs(ctx)
            if reason:
                if only:
                    raise UserError(f"stage {name} is not available for {rd.path}: {reason}")
                echo(f"{name}: skipped, {reason}")
                outcome[name] = f"skipped: {reason}"
                continue
            params = {k: ctx.params[k] for k in stage.keys} | ({"blocks": blocks} if name == "viscosity" else {})
            if stage.version > 1:
                params["version"] = stage.version
            stored = None if force else _up_to_date(rd, stage, params)
            if stored is not None:
                echo(f"{name}: up to date ({stage.product}); {stage.describe(stored.result)}")
                results[name] = stored.result
                outcome[name] = "done"
                continue
            echo(f"{name}: computing ...")
            started = time.perf_counter()
            ctx.stage = stage
            result = stage.compute(ctx)
            ctx.stage = None
            Product(name, params, result).write(rd.product(stage.product))
            echo(f"{name}: {stage.describe(result)} -> {stage.product} ({time.perf_counter() - started:.1f} s)")
            for warning in result.get("summary", {}).get("warnings", []) if isinstance(result.get("summary"), dict) else []:
                warn(f"{name}: warning: {warning}")
            results[name] = result
            outcome[name] = "done"
    finally:
        ctx.close()
    if only is None:  # the record that this run is analysed (campaign status reads it)
        atomic_write_json(rd.product(ANALYSED), {"stages": outcome, "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return results


#: written after every stage has run (or said why it cannot): a run directory holding it is analysed
ANALYSED = "analysis.json"


def analysed(rundir: str | Path) -> bool:
    """Whether a full ``analyze`` finished after the run's data was last written."""
    rd = RunDir(rundir)
    record = rd.product(ANALYSED)
    return record.exists() and all(record.stat().st_mtime >= f.stat().st_mtime
                                   for f in (rd.store, rd.thermo) if f.exists())
