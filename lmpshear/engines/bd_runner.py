"""Run a prepared directory (``engine = "bd"``) with lmpshear's Brownian-dynamics engine.

Same products as the LAMMPS runner: ``traj.gsd`` (frame 0 at the start of shear, then one frame
every sample interval: unwrapped path, r̃, per-particle Yukawa virial shear stress), ``thermo.csv``
(:data:`lmpshear.store.BD_THERMO_COLUMNS`), ``status.json`` and checkpoints.

Preparation: random insertion in the cubic cell, the hard-core step to remove the overlaps (also
when the spec runs without a hard core: soft Yukawa cannot start from overlaps), then
``equilibration_time`` at rest. Shear then starts at t = 0.

Checkpoints every ``checkpoint_every`` samples and at t = 0 hold the engine's full state (positions,
unwrapped path, r̃, particle order, clock and the random generator's state). Taking a state rebuilds
the engine's lists, at the same moments in a resumed run as in an uninterrupted one, so a killed and
resumed run gives the same frames, bit for bit. Threads: ``NUMBA_NUM_THREADS`` (default: all cores);
results do not depend on the thread count.
"""

from __future__ import annotations

import json
import shutil
import sys
import time

import numpy as np

from lmpshear import mpi
from lmpshear.engines.bd import BrownianDynamics, Yukawa
from lmpshear.engines.driver import RunDriver
from lmpshear.errors import RunError, UserError
from lmpshear.rundir import RunDir
from lmpshear.store import BD_THERMO_COLUMNS


class BrownianRunner(RunDriver):
    thermo_columns = BD_THERMO_COLUMNS

    def __init__(self, rundir: RunDir, reporter=None):
        if mpi.world_size() > 1:
            raise UserError("engine 'bd' runs in one process with threads (NUMBA_NUM_THREADS), not under mpiexec")
        super().__init__(rundir, reporter)
        s = self.spec
        counts = s.system.counts()
        self.typeid = np.repeat(np.arange(len(counts)), counts)
        species = s.system.species
        self.diameter = np.array([species[t].diameter for t in self.typeid])
        self.diffusion = np.array(s.system.diffusion())[self.typeid]
        self.particles = len(self.diameter)

    # -- phases ---------------------------------------------------------------------------------------
    def _engine(self, positions: np.ndarray, rate: float) -> BrownianDynamics:
        s = self.spec
        pot, L = s.system.yukawa, s.system.box_length
        yukawa = Yukawa(pot.K, pot.z, pot.cutoff, pot.precision)
        return BrownianDynamics(
            positions,
            self.diameter,
            self.diffusion,
            (L, L, L),
            s.system.dimension,
            rate=rate,
            dt=self.dt,
            seed=s.protocol.seed,
            yukawa=yukawa,
            hard_core=pot.hard_core,
            overlap_tol=pot.overlap_tol,
            skin=s.protocol.neighbor_skin,
            outer_skin=s.protocol.outer_skin,
            temperature=s.system.temperature,
        )

    def _start(self) -> int:
        rd, s = self.rundir, self.spec
        rd.set_status(state="running", phase="equilibration")
        n_eq = s.steps(s.protocol.equilibration_time)
        saved = self._equilibration_dir() / "state.npz"
        if saved.is_file():  # stopped or killed while equilibrating: continue from the last state written
            self.bd, first = self._load_state(saved, 0.0)
            print(f"[lmpshear] equilibration resumed at step {first} of {n_eq}", file=sys.stderr, flush=True)
        else:
            self.reporter.update(0, "inserting particles")
            L, n = s.system.box_length, len(self.diameter)
            positions = np.random.default_rng([s.protocol.seed, 1]).random((n, 3)) * L  # not the noise stream
            insert = BrownianDynamics(
                positions,
                self.diameter,
                self.diffusion,
                (L, L, L),
                s.system.dimension,
                rate=0.0,
                dt=self.dt,
                seed=s.protocol.seed,
                yukawa=None,
                hard_core=True,
                overlap_tol=s.system.yukawa.overlap_tol,
            )
            insert.step()  # the hard-core step removes the overlaps of random insertion
            self.bd, first = self._engine(insert.r, 0.0), 0
        every, said = max(1, n_eq // 10), time.monotonic()
        for k in range(first, n_eq):
            stopping = self.stop.requested()
            if stopping or (k > first and k % every == 0):  # a stop saves first: it resumes here
                self._save_state(self._equilibration_dir(), k, frames=0)
            if stopping:
                self.equilibrating = f"step {k} of {n_eq}, t = {self.bd.time:.4g} of {s.protocol.equilibration_time:g}"
                self.stop.check(self._where, rd.path)
            self.bd.step()
            now = time.monotonic()
            if k + 1 == n_eq or (k + 1 - first) % every == 0 or now - said >= 30.0:  # 10% steps, or 30 s at 10^6
                said = now
                self.reporter.update(
                    0,
                    f"equilibrating at rest: {k + 1} of {n_eq} steps, t = {self.bd.time:.3g} of "
                    f"{s.protocol.equilibration_time:g}",
                )
        self._check_finite()
        self.bd.start_shear(self.rate)
        self._open_outputs(self.typeid)
        self._reset_interval()
        measurement = self.bd.measure()
        self._record_thermo(0, measurement)
        self._record_frame(0, measurement)
        self._checkpoint(0)
        return 0

    def _resume(self, ckpt) -> int:
        self.bd, _ = self._load_state(ckpt.state, self.rate)
        self._reopen_outputs(ckpt, self.typeid)
        self._reset_interval()
        return ckpt.step

    def _loop(self, begin: int) -> int:
        s = self.spec
        self.reporter.start(s.n_samples, self.frames - 1, f"{s.system.name} (BD) at rate {self.rate:g}")
        step = begin
        self.stop.check(self._where, self.rundir.path)
        while step < self.end_step:
            self.bd.step()
            step += 1
            self._accumulate()
            if step % self.thermo_steps:
                continue
            measurement = self.bd.measure()
            self._record_thermo(step, measurement)
            if step % self.sample_steps:
                continue
            self._check_finite()
            self._record_frame(step, measurement)
            stopping = self.stop.requested()
            if ((self.frames - 1) % s.protocol.checkpoint_every == 0 or stopping) and step < self.end_step:
                self._checkpoint(step)
            self.reporter.update(self.frames - 1, f"strain {self.rate * step * self.dt:.3f}")
            if stopping and step < self.end_step:
                self.stop.check(self._where, self.rundir.path)
        return step - begin

    # -- pieces ---------------------------------------------------------------------------------------
    def _reset_interval(self) -> None:
        self._collision = np.zeros(2)  # Σ over the steps since the last thermo row: virial_xy, trace
        self._hard_core = np.zeros(2)  # overlapping pairs pushed, sweeps
        self._steps = 0

    def _accumulate(self) -> None:
        bd = self.bd
        self._collision += (bd.collision_virial, bd.collision_trace)
        self._hard_core += (bd.pushed, bd.sweeps)
        self._steps += 1

    def _check_finite(self) -> None:
        if not np.isfinite(self.bd._r).all():
            raise RunError("non-finite positions: the simulation blew up (time step too large?)")

    def _record_thermo(self, step: int, m) -> None:
        bd, s = self.bd, self.spec
        V, n, dim = bd.volume, len(self.diameter), s.system.dimension
        per_step = max(self._steps, 1)
        collision_xy, collision_trace = self._collision / per_step
        pxy_virial = -m.virial_xy.sum() / V
        pxy_collision = collision_xy / V
        cell = bd.cell
        row = {
            "step": step,
            "time": step * self.dt,
            "strain": self.rate * step * self.dt,
            "temp": s.system.temperature,
            "pe": m.energy / n,
            "press": (n * s.system.temperature + (m.virial_trace + collision_trace) / dim) / V,
            "pxy": pxy_virial + pxy_collision,
            "pxy_virial": pxy_virial,
            "pxy_collision": pxy_collision,
            "overlaps": self._hard_core[0] / per_step,
            "sweeps": self._hard_core[1] / per_step,
            "lx": cell.lx,
            "ly": cell.ly,
            "lz": cell.lz,
            "xy": cell.xy,
        }
        if not all(np.isfinite(v) for v in row.values()):
            raise RunError(f"non-finite thermo output at step {step}: the simulation blew up")
        self.writers()[1].append(row)
        self._reset_interval()

    def _record_frame(self, step: int, m) -> None:
        self.frames += 1
        t = step * self.dt
        bd = self.bd
        self.writers()[0].append(step, t, self.rate * t, bd.cell, bd.unwrapped, bd.nonaffine, m.virial_xy)

    def _checkpoint(self, step: int) -> None:
        self._save_state(self.rundir.new_checkpoint_dir(step), step, self.frames)
        self._commit_checkpoint(step)
        if step == 0:  # the shear's checkpoints take over from the equilibration's
            shutil.rmtree(self._equilibration_dir(), ignore_errors=True)

    def _save_state(self, directory, step: int, frames: int) -> None:
        """The engine's full state (positions, path, r̃, order, clock, random generator) in directory/state.npz."""
        directory.mkdir(parents=True, exist_ok=True)
        state = self.bd.state()
        tmp = directory / "state.tmp.npz"
        lists = {
            f"{stage}_{key}": np.asarray(value)
            for stage in ("built", "pruned")
            for key, value in zip(("positions", "time", "nonaffine"), state[stage])
        }
        extra = {"force": state["force"]} if "force" in state else {}
        arrays = {
            "positions": state["positions"],
            "unwrapped": state["unwrapped"],
            "nonaffine": state["nonaffine"],
            "order": state["order"],
            "time": np.float64(state["time"]),
            "rng": json.dumps(state["rng"]),
            "step": np.int64(step),
            "frames": np.int64(frames),
            **lists,
            **extra,
        }
        np.savez(tmp, **arrays)
        tmp.replace(directory / "state.npz")

    def _load_state(self, path, rate: float) -> tuple[BrownianDynamics, int]:
        """An engine at ``rate`` in the saved state, and the state's step."""
        with np.load(path) as state:
            bd = self._engine(state["positions"][np.argsort(state["order"])], rate)
            saved = {
                "time": float(state["time"]),
                "rng": json.loads(str(state["rng"])),
                "order": state["order"],
                "positions": state["positions"],
                "unwrapped": state["unwrapped"],
                "nonaffine": state["nonaffine"],
            }
            for stage in ("built", "pruned"):
                if f"{stage}_positions" in state:  # (older checkpoints: taken right after a rebuild)
                    saved[stage] = tuple(state[f"{stage}_{key}"] for key in ("positions", "time", "nonaffine"))
            if "force" in state:
                saved["force"] = state["force"]
            bd.restore(saved)
            return bd, int(state["step"])

    def _equilibration_dir(self):
        return self.rundir.checkpoints / "equilibration"
