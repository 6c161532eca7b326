"""The life of a run directory, whatever the engine: the run lock, status.json, the trajectory and
thermo writers (cut back to the last checkpoint and reopened on resume), checkpoints, and how a run
ends: complete, failed (the physics: status "failed", exit 3), stopped (the file system or a
damaged file: "stopped", exit 3, resumable), interrupted (Ctrl-C/SIGTERM/USR1: a checkpoint at the
next sample, "interrupted", exit 130, resumable).

An engine adapter (:class:`lmpshear.engines.lammps.LammpsRunner`, :class:`lmpshear.engines.bd_runner.BrownianRunner`)
supplies ``_start`` (a fresh run up to frame 0 and its checkpoint; returns step 0), ``_resume(ckpt)``
(the engine's state from a checkpoint; returns its step; it calls :meth:`RunDriver._reopen_outputs`),
``_loop(begin)`` (the shear to the end; returns the steps made) and ``particles``.
"""

from __future__ import annotations

import contextlib
import sys
import time

from lmpshear.errors import Interrupted, RunError, UserError
from lmpshear.progress import NullReporter
from lmpshear import mpi
from lmpshear.rundir import Checkpoint, RunDir, atomic_write_json, completion
from lmpshear.stopping import StopRequests, damaged, interrupted, mark_stopped
from lmpshear.store import (
    StoreWriter,
    ThermoWriter,
    close_writers,
    count_frames,
    frame_digests,
    intact_frames,
    repair_from_index_copy,
    save_index_copy,
    truncate,
    truncate_thermo,
)


class RunDriver:
    #: columns of thermo.csv (None: the MD ones)
    thermo_columns: tuple[str, ...] | None = None

    def __init__(self, rundir: RunDir, reporter=None, root: bool = True):
        self.rundir = rundir
        self.spec = s = rundir.spec()
        self.root = root  # the process that writes files (rank 0 under mpiexec)
        self.reporter = reporter if (reporter is not None and root) else NullReporter()
        self.rate, self.dt = s.rate.rate, s.protocol.timestep
        self.sample_steps, self.thermo_steps, self.end_step = s.sample_steps, s.thermo_steps, s.shear_steps
        self.store: StoreWriter | None = None
        self.thermo: ThermoWriter | None = None
        self.stop = StopRequests(enabled=False)  # replaced by run(); a branch (ICE) keeps this inert one
        self.frames = 0
        self.digests: list[str] = []  # of the store's frames up to the last checkpoint (store.frame_digests)
        self.equilibrating = ""  # where the equilibration stands, for the stop message (engine-set)

    # -- what an engine adapter may change ---------------------------------------------------------
    particles = 0

    def _session(self):
        """A context the whole run happens in (LAMMPS: the run directory as working directory)."""
        return contextlib.nullcontext()

    def _open_engine(self) -> None:
        """Called first, inside the run's error handling."""

    def _engine_failure(self, exc: Exception) -> RunError | None:
        """What an engine's own exception means (None: not the engine's; it propagates as it is)."""
        return None

    def _finish(self, finalize_mpi: bool) -> None:
        """After a complete run."""

    # -- the run ------------------------------------------------------------------------------------
    def run(self, finalize_mpi: bool = False) -> dict:
        rd = self.rundir
        if rd.status().get("state") == "complete":
            return rd.status()
        lock = rd.lock() if self.root else contextlib.nullcontext()
        with lock, self._session(), StopRequests() as self.stop:
            started = time.perf_counter()
            try:
                self._open_engine()
                if self.root:
                    self._roll_back_to_an_intact_checkpoint()
                mpi.any_rank(False)  # every rank reads the pointer after rank 0 has settled it (no-op alone)
                ckpt = rd.latest_checkpoint()
                begin = self._resume(ckpt) if ckpt else self._start()
                steps_done = self._loop(begin)
            except RunError as exc:
                self._fail(str(exc))
                raise
            except (Interrupted, KeyboardInterrupt) as exc:
                stopped = exc if isinstance(exc, Interrupted) else interrupted(
                    "SIGINT twice", f"{self._where()}; the samples after the last checkpoint are lost", rd.path)
                if self.root:
                    self._close_outputs()
                    rd.set_status(state="interrupted", message=str(stopped), frames=self.frames)
                raise stopped from None
            except (OSError, ValueError) as exc:  # the file system or a damaged file, not the physics
                stopped = damaged(rd.path, exc)
                if self.root:
                    close_writers(self.store, self.thermo, quietly=True)
                    self.store = self.thermo = None
                    mark_stopped(rd, str(stopped), self.frames)
                raise stopped from None
            except Exception as exc:
                if isinstance(exc, UserError):  # e.g. an incomplete checkpoint: stopped, with what to do
                    if self.root:
                        mark_stopped(rd, str(exc), self.frames)
                    raise
                failure = self._engine_failure(exc)
                if failure is None:
                    raise
                self._fail(str(failure))
                raise failure from exc
            finally:
                self._close_outputs()
                self.reporter.close()
            summary = completion(self.frames, self.end_step, time.perf_counter() - started, steps_done,
                                 self.particles)
            if self.root:
                self.digests += frame_digests(rd.store, len(self.digests), self.frames)
                atomic_write_json(rd.file("digests"), {"frames": self.frames, "digests": self.digests})
                rd.set_status(**summary)
            self._finish(finalize_mpi)
            return summary

    # -- shared pieces --------------------------------------------------------------------------------
    def _open_outputs(self, typeid) -> None:
        """Fresh store and thermo table (frame 0 follows)."""
        if self.root:
            self.store = StoreWriter.for_system(self.rundir.store, self.spec.system, typeid)
            self.thermo = ThermoWriter(self.rundir.thermo, **self._columns())

    def _roll_back_to_an_intact_checkpoint(self) -> None:
        """Resume only over verified bytes: the newest checkpoint whose recorded frames the store still
        holds intact (a store cut by a crash or a full disk is first set back to that checkpoint's
        flushed state from its copy of the index); ``latest.json`` then points at it. No intact
        checkpoint: the run stops (exit 3)."""
        rd = self.rundir
        latest = rd.latest_checkpoint()
        if latest is None or latest.digests() is None:  # fresh, or checkpoints made before digests existed
            return
        for ckpt in [latest, *rd.older_checkpoints(latest)]:
            digests = ckpt.digests()
            intact, repaired = intact_frames(rd.store, digests), False
            if intact < ckpt.frames and ckpt.store_index.is_file():
                try:
                    repair_from_index_copy(rd.store, ckpt.store_index)
                except ValueError:  # the store is shorter than it was at this checkpoint
                    continue
                intact, repaired = intact_frames(rd.store, digests), True  # read again only after a repair
            if intact >= ckpt.frames:
                if repaired:
                    print(f"[lmpshear] {rd.store.name} was cut after the checkpoint at step {ckpt.step}: repaired "
                          f"from its copy of the index ({ckpt.frames} frames verified)", file=sys.stderr, flush=True)
                if ckpt is not latest:
                    rd.point_to(ckpt)
                    print(f"[lmpshear] {rd.store.name} does not hold the frames of the checkpoint at step "
                          f"{latest.step} intact: rolled back to the one at step {ckpt.step} ({ckpt.frames} frames, "
                          "verified)", file=sys.stderr, flush=True)
                return
        raise RunError(f"{rd.store} holds the frames of no kept checkpoint intact (damaged before them): the run "
                       "cannot resume; start it again in a new directory")

    def _reopen_outputs(self, ckpt: Checkpoint, typeid) -> None:
        """Cut the store and the thermo table back to the checkpoint and append from there."""
        rd = self.rundir
        self.frames = ckpt.frames
        if not self.root:
            return
        try:
            stored = count_frames(rd.store)
        except RuntimeError as exc:  # "Corrupt GSD file": cut by a crash or a full disk after the checkpoint
            if not ckpt.store_index.is_file():
                raise ValueError(f"{rd.store} is damaged ({exc}) and the checkpoint holds no copy of its index") from None
            repair_from_index_copy(rd.store, ckpt.store_index)
            stored = count_frames(rd.store)
            print(f"[lmpshear] {rd.store.name} was cut after the checkpoint at step {ckpt.step}: repaired "
                  f"({stored} frames kept)", file=sys.stderr, flush=True)
        if stored != ckpt.frames:
            truncate(rd.store, ckpt.frames)
        self.digests = ckpt.digests() or frame_digests(rd.store, 0, ckpt.frames)  # older checkpoints: none kept
        truncate_thermo(rd.thermo, ckpt.step)
        self.store = StoreWriter.for_system(rd.store, self.spec.system, typeid, append=True)
        self.thermo = ThermoWriter(rd.thermo, append=True, **self._columns())
        rd.set_status(state="running", phase="shear", resumed_from_step=ckpt.step)

    def _columns(self) -> dict:
        return {} if self.thermo_columns is None else {"columns": self.thermo_columns}

    def _commit_checkpoint(self, step: int) -> None:
        """The checkpoint's files are written: flush the store and point latest.json at them."""
        if self.root:
            self.store.flush()
            here = Checkpoint(step, self.frames, self.rundir.new_checkpoint_dir(step))
            save_index_copy(self.rundir.store, here.store_index)
            self.digests += frame_digests(self.rundir.store, len(self.digests), self.frames)
            atomic_write_json(here.record, {"step": step, "frames": self.frames, "digests": self.digests})
            self.rundir.commit_checkpoint(step, self.frames)

    def _where(self) -> str:
        if self.frames == 0:
            return "before shear started, while equilibrating" + (f" ({self.equilibrating})" if self.equilibrating else "")
        k = self.frames - 1
        return f"at sample {k} of {self.spec.n_samples} (strain {self.rate * k * self.sample_steps * self.dt:.4g})"

    def _close_outputs(self) -> None:
        close_writers(self.store, self.thermo)
        self.store = self.thermo = None

    def _fail(self, message: str) -> None:
        self._close_outputs()
        if self.root:
            self.rundir.set_status(state="failed", message=message, frames=self.frames)

