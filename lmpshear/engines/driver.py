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

from lmpshear import integrity, mpi
from lmpshear.errors import Interrupted, RunError, UserError
from lmpshear.progress import NullReporter
from lmpshear.rundir import Checkpoint, RunDir, completion
from lmpshear.stopping import StopRequests, damaged, interrupted, mark_stopped
from lmpshear.store import StoreWriter, ThermoWriter, close_writers


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
        self.digests: list[str] = []  # of the store's frames up to the last checkpoint (lmpshear.integrity)
        self.equilibrating = ""  # where the equilibration stands, for the stop message (engine-set)

    # -- what an engine adapter may change ---------------------------------------------------------
    particles = 0

    def writers(self) -> tuple[StoreWriter, ThermoWriter]:
        """The store and thermo writers, open on the writing rank while the run goes."""
        if self.store is None or self.thermo is None:
            raise RuntimeError("internal: the run's writers are not open")
        return self.store, self.thermo

    # -- what an engine adapter must give: where a run starts, resumes, and its shear loop -----------------
    def _start(self) -> int:
        """Set up from nothing (equilibrate); the step the shear starts from."""
        raise NotImplementedError

    def _resume(self, ckpt) -> int:
        """Set up from checkpoint ``ckpt``; the step the shear goes on from."""
        raise NotImplementedError

    def _loop(self, begin: int) -> int:
        """Shear from step ``begin`` to the end; the steps done."""
        raise NotImplementedError

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
        if rd.complete():
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
                stopped = (
                    exc
                    if isinstance(exc, Interrupted)
                    else interrupted(
                        "SIGINT twice", f"{self._where()}; the samples after the last checkpoint are lost", rd.path
                    )
                )
                if self.root:
                    self._close_outputs()
                    rd.set_status(state="interrupted", message=str(stopped), frames=self.frames)
                raise stopped from None
            except (OSError, ValueError) as exc:  # the file system or a damaged file, not the physics
                failure = damaged(rd.path, exc)
                if self.root:
                    close_writers(self.store, self.thermo, quietly=True)
                    self.store = self.thermo = None
                    mark_stopped(rd, str(failure), self.frames)
                raise failure from None
            except Exception as exc:
                if isinstance(exc, UserError):  # e.g. an incomplete checkpoint: stopped, with what to do
                    if self.root:
                        mark_stopped(rd, str(exc), self.frames)
                    raise
                known = self._engine_failure(exc)
                if known is None:
                    raise
                self._fail(str(known))
                raise known from exc
            finally:
                self._close_outputs()
                self.reporter.close()
            summary = completion(self.frames, self.end_step, time.perf_counter() - started, steps_done, self.particles)
            if self.root:
                integrity.seal_completed(rd, self.digests, self.frames)
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
        """Resume only over verified bytes. Every checkpoint is checked read-only (its record, its files,
        the store's frames through its copy of the index, the thermo rows up to it); then the store and
        the thermo table are cut once, to the newest intact one, and the checkpoints after it (an
        abandoned trajectory's) go. None intact: nothing is cut, and the run stops (exit 3)."""
        rd = self.rundir
        settled = integrity.newest_intact_checkpoint(rd)
        if settled is None:  # no shear checkpoint yet: the shear starts afresh
            return
        ckpt = settled.checkpoint
        if ckpt is None:
            self.frames = settled.intact
            raise RunError(
                f"no kept checkpoint of {rd.path} is intact ({'; '.join(settled.problems)}); "
                f"nothing was cut, and the first {settled.intact} frames of {rd.store.name} match "
                "their digests: the run cannot resume; start it again in a new directory"
            )
        latest = rd.latest_checkpoint(check=False)
        if integrity.roll_back(rd, ckpt):
            print(
                f"[lmpshear] {rd.store.name} cut back to the checkpoint at step {ckpt.step} ({ckpt.frames} frames, "
                "verified; what was written after it is dropped)",
                file=sys.stderr,
                flush=True,
            )
        for problem in settled.problems:
            print(f"[lmpshear] passed over checkpoint {problem}", file=sys.stderr, flush=True)
        if latest is None:
            print(
                f"[lmpshear] checkpoint/latest.json was damaged: it points again at the newest intact checkpoint, "
                f"step {ckpt.step}",
                file=sys.stderr,
                flush=True,
            )
        elif latest.directory != ckpt.directory:
            print(
                f"[lmpshear] rolled back to the checkpoint at step {ckpt.step} ({ckpt.frames} frames, verified)",
                file=sys.stderr,
                flush=True,
            )

    def _reopen_outputs(self, ckpt: Checkpoint, typeid) -> None:
        """Append to the store and the thermo table, which the roll-back cut to this checkpoint."""
        rd = self.rundir
        self.frames = ckpt.frames
        if not self.root:
            return
        self.digests = integrity.read_record(ckpt.record)["digests"][: ckpt.frames]
        self.store = StoreWriter.for_system(rd.store, self.spec.system, typeid, append=True)
        self.thermo = ThermoWriter(rd.thermo, append=True, **self._columns())
        rd.set_status(state="running", phase="shear", resumed_from_step=ckpt.step, frames=ckpt.frames)

    def _columns(self) -> dict:
        return {} if self.thermo_columns is None else {"columns": self.thermo_columns}

    def _commit_checkpoint(self, step: int) -> None:
        """The checkpoint's files are written: flush the store and point latest.json at them."""
        if self.root:
            store, thermo = self.writers()
            store.flush()
            thermo.flush()
            here = Checkpoint(step, self.frames, self.rundir.new_checkpoint_dir(step))
            self.digests = integrity.seal_checkpoint(self.rundir, here, self.digests)
            self.rundir.commit_checkpoint(step, self.frames)

    def _where(self) -> str:
        if self.frames == 0:
            return "before shear started, while equilibrating" + (
                f" ({self.equilibrating})" if self.equilibrating else ""
            )
        k = self.frames - 1
        return f"at sample {k} of {self.spec.n_samples} (strain {self.rate * k * self.sample_steps * self.dt:.4g})"

    def _close_outputs(self) -> None:
        close_writers(self.store, self.thermo)
        self.store = self.thermo = None

    def _fail(self, message: str) -> None:
        self._close_outputs()
        if self.root:
            self.rundir.set_status(state="failed", message=message, frames=self.frames)
