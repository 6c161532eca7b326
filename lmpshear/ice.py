"""Isoconfigurational ensemble (ICE) of a convective cluster, for MD runs (``lmpshear ice``).

The paper averages σ_c(t) and γ_c(t) of a cluster over 50 replicas that share the configuration at a
time before t0 and differ in their velocities. A run keeps full-state snapshots (LAMMPS restart +
unwrapping state) every ``protocol.snapshot_every`` samples; a replica starts from the last snapshot
at or before the cluster's t0 (the trace start when the cluster has no yield), replaces every
velocity by a fresh Maxwell–Boltzmann peculiar velocity at the run's temperature (zero total
momentum; the streaming γ̇(y − y_lo) added back, as SLLOD expects) and continues the same shear to
the end of the cluster's trace. Its frames (same times as the run's) stay in memory; the cluster's
members at each frame are found exactly as for the run (carried forward to t_ref, looked up in the
region's grid), and σ_c(t) (eq. 4) and γ_c(t) (from the first frame at or after t0) are averaged.

Products: ``ice/cluster-K.json`` (per-replica curves, mean, standard error, the yield times of the
mean curve) and ``ice/cluster-K.png``. Replicas run one after another in this process (each with
LAMMPS's own threads); the seed of replica m is (seed, m).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from lmpshear import integrity
from lmpshear.engines.lammps import LammpsRunner
from lmpshear.errors import UserError
from lmpshear.kernels.convective import choose_cluster
from lmpshear.kernels.sieve import labels_at
from lmpshear.kernels.traceback import cumulative_strain, trace_region, yield_times
from lmpshear.rundir import Checkpoint, RunDir, atomic_write_json, working_directory


class ReplicaRunner(LammpsRunner):
    """A branch of a run from a snapshot with fresh velocities, to ``end_step``; frames kept in
    memory, nothing written to the run directory."""

    def __init__(
        self, rundir: RunDir, snapshot: Checkpoint, end_step: int, seed: tuple[int, int], fresh_velocities: bool = True
    ):
        super().__init__(rundir)
        self.snapshot, self.end_step, self.seed = snapshot, end_step, seed
        self.fresh_velocities = fresh_velocities  # False: continue the run itself (a check of the branching)
        self.records: list[tuple[float, np.ndarray, np.ndarray, object]] = []

    def branch(self) -> dict:
        from lmpshear import mpi

        lammps = mpi.require_lammps()
        rd = self.rundir
        self.scratch = rd.path / "ice" / f".scratch-{os.getpid()}"
        self.scratch.mkdir(parents=True, exist_ok=True)
        with working_directory(rd.path):
            self.lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
            try:
                self._restore(self.snapshot, branch=True)
                if self.fresh_velocities:
                    self._new_velocities()
                self._loop(self.snapshot.step)
            finally:
                self.lmp.close()
                shutil.rmtree(self.scratch, ignore_errors=True)
        return {
            "t": np.array([r[0] for r in self.records]),
            "unwrapped": np.array([r[1] for r in self.records]),
            "virial_xy": np.array([r[2] for r in self.records]),
            "cells": [r[3] for r in self.records],
        }

    def _new_velocities(self) -> None:
        s = self.spec.system
        rng = np.random.default_rng(list(self.seed))
        mass = np.array([sp.mass for sp in s.species])[self.typeid]
        v = rng.normal(size=(self.natoms, 3)) * np.sqrt(s.temperature / mass)[:, None]
        if s.dimension == 2:
            v[:, 2] = 0.0
        v -= (mass[:, None] * v).sum(axis=0) / mass.sum()  # no net momentum
        positions = self._gather("x", 3)
        v[:, 0] += self.rate * (positions[:, 1] - self._cell().lo[1])  # the streaming SLLOD carries
        self.lmp.scatter("v", 1, 3, (ctypes.c_double * v.size)(*v.ravel()))

    # the branch records frames and writes nothing
    def _record_frame(self, step: int, sample) -> None:
        self.frames += 1
        self.records.append((step * self.dt, self.unwrapper.unwrapped.copy(), sample.virial_xy.copy(), sample.cell))

    # At every set-up boundary the branch issues the run's LAMMPS commands (lmpshear.engines.lammps: a restart,
    # fix deform re-issued, a full set-up), with the restart in a scratch folder, and keeps nothing:
    # without new velocities the branch then repeats the run.
    def _segment_restart(self) -> Path:
        return self.scratch / "restart.lmp"

    def _checkpoint(self, step: int) -> None:
        pass

    def _snapshot(self, step: int) -> None:
        pass


def ice(
    rundir: str | Path,
    cluster: int | None = None,
    replicas: int = 50,
    seed: int = 1,
    echo: Callable[[str], None] = print,
) -> dict:
    from lmpshear import mpi
    from lmpshear.store import Trajectory

    if mpi.world_size() > 1:
        raise UserError("lmpshear ice runs its replicas one after another in one process: start it without mpiexec")
    rd = RunDir(rundir)
    if not rd.path.is_dir():
        raise UserError(f"no run directory at {rd.path}")
    if rd.source.is_file() or rd.spec().engine != "lammps":
        raise UserError(
            "the isoconfigurational ensemble needs an MD run made by lmpshear (engine 'lammps'): "
            "it branches new LAMMPS runs from the run's snapshots"
        )
    if replicas < 1:
        raise UserError("--replicas must be at least 1")
    result = rd.made("clusters")
    k = choose_cluster(result, cluster)
    row, series, grid = result["clusters"][k], result["series"][k], result["summary"]["grid"]
    spec = rd.spec()
    dt, rate = spec.protocol.timestep, spec.rate.rate
    t_start = row.get("t0", series["t"][0])
    t_end = series["t"][-1]
    snaps = [s for s in rd.snapshots() if s.step * dt <= t_start + 1e-9]
    if not snaps:
        raise UserError(
            f"no snapshot at or before t0 = {t_start:.4g} in {rd.path / 'snapshots'}: run with "
            "[protocol] snapshot_every = K (samples between snapshots) to keep them"
        )
    snap = snaps[-1]
    end_step = int(round(t_end / dt))
    integrity.require_intact(rd, reading="replayed")
    try:
        integrity.check_snapshot(snap)
    except integrity.Damaged as exc:
        raise UserError(
            f"the snapshot at step {snap.step} is damaged ({exc}): the ICE of this cluster cannot "
            "start from it; run the spec again (with the same snapshot_every) to remake it"
        ) from None
    with Trajectory(rd.store) as traj:
        dim = traj.dimension
        cell_ref = traj.cell(int(np.argmin(np.abs(traj.times - row["t_ref"]))))
    lookup = np.zeros((grid,) * dim, dtype=np.int32)
    lookup.flat[np.asarray(series["nodes"], dtype=np.int64)] = 1
    echo(
        f"ice: cluster {k} (window {row['window']}, V_c = {row['volume']:.4g}), {replicas} replicas from the "
        f"snapshot at t = {snap.step * dt:.4g} to t = {t_end:.4g} ({end_step - snap.step} steps each)"
    )

    sigma_runs: list[np.ndarray] = []
    strain_runs: list[np.ndarray] = []
    times = np.zeros(0)
    started = time.perf_counter()
    for m in range(replicas):
        rep = ReplicaRunner(rd, snap, end_step, (seed, m)).branch()
        times = rep["t"]
        frames = np.arange(len(times))
        inside = [
            np.flatnonzero(labels_at(rep["unwrapped"][f], times[f], rate, row["t_ref"], cell_ref, lookup) == 1)
            for f in frames
        ]
        traced = trace_region(
            inside, frames, times, rep["unwrapped"], rep["virial_xy"], rep["cells"], rate, row["volume"], dim, 5
        )
        start = int(np.searchsorted(times, t_start - 1e-9))
        gamma, _ = cumulative_strain(inside, frames, start, times, rep["unwrapped"], rep["cells"], rate, dim)
        sigma_runs.append(traced["sigma"])
        strain_runs.append(gamma)
        elapsed = time.perf_counter() - started
        echo(
            f"ice: replica {m + 1}/{replicas} done ({elapsed:.0f} s, about "
            f"{elapsed / (m + 1) * (replicas - m - 1):.0f} s left)"
        )
    sigma, strain = np.array(sigma_runs), np.array(strain_runs)
    mean_sigma, mean_strain = sigma.mean(axis=0), strain.mean(axis=0)
    error = sigma.std(axis=0, ddof=1) / np.sqrt(replicas) if replicas > 1 else np.full(len(times), np.nan)
    yt = yield_times(times, mean_sigma, 5)
    out = {
        "cluster": k,
        "row": row,
        "replicas": replicas,
        "seed": seed,
        "snapshot_time": snap.step * dt,
        "t": times.tolist(),
        "sigma_mean": mean_sigma.tolist(),
        "sigma_error": error.tolist(),
        "strain_mean": mean_strain.tolist(),
        "sigma": sigma.tolist(),
        "strain": strain.tolist(),
        "yield": None
        if yt is None
        else {
            "t0": yt.t0,
            "t1": yt.t1,
            "t2": yt.t2,
            "t3": yt.t3,
            "stress_at_yield": yt.stress_at_yield,
            "strain_at_yield": float(mean_strain[yt.indices[2]]),
        },
    }
    (rd.path / "ice").mkdir(exist_ok=True)
    target = rd.path / "ice" / f"cluster-{k}.json"
    atomic_write_json(target, out)
    png = _figure(out, series, rd.path / "ice" / f"cluster-{k}.png")
    summary = (
        "no yield in the mean curve"
        if yt is None
        else f"ICE yield: t0..t3 = {yt.t0:.4g}, {yt.t1:.4g}, {yt.t2:.4g}, {yt.t3:.4g}; "
        f"sigma_c,y = {yt.stress_at_yield:.4g}"
    )
    echo(f"ice: {summary} -> {target}, {png}")
    return out


def _figure(out: dict, series: dict, path: Path) -> Path:
    from lmpshear.drawing import legend_beside, plt, save_png

    t = np.array(out["t"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for s in out["sigma"]:
        axes[0].plot(t, s, color="0.8", lw=0.5)
    axes[0].plot(series["t"], series["sigma"], "k--", lw=0.8, label="the run")
    axes[0].plot(t, out["sigma_mean"], "C3", lw=1.5, label=f"ICE mean of {out['replicas']}")
    axes[0].set_ylabel(r"$\sigma_c$ (eq. 4)")
    for s in out["strain"]:
        axes[1].plot(t, s, color="0.8", lw=0.5)
    axes[1].plot(t, out["strain_mean"], "C0", lw=1.5, label="ICE mean")
    axes[1].set_ylabel(r"$\gamma_c$ from $t_0$")
    if out["yield"]:
        for a in axes:
            for name in ("t0", "t1", "t2", "t3"):
                a.axvline(out["yield"][name], color="0.5", ls="--", lw=0.7)
    for a in axes:
        a.set_xlabel("t")
        legend_beside(a, fontsize=8)
    fig.suptitle(f"isoconfigurational ensemble of cluster {out['cluster']} (window {out['row']['window']})")
    return save_png(fig, path)
