"""Stopping a run cleanly: on Ctrl-C (SIGINT), SIGTERM or SIGUSR1 (what SLURM sends before a time limit), and
on a file-system error or a damaged file (a full disk, a corrupt checkpoint pointer).

While a run is inside :class:`StopRequests`, the first signal only sets a flag: the run loop asks
at each sample and stops there after writing a checkpoint, so no numba kernel or LAMMPS call is cut
in the middle (numba turns an interrupt inside a kernel into a SystemError) and no sample is lost.
Under mpiexec (which passes INT, TERM and USR1 on to every rank) the ranks agree through an
MPI_Allreduce, so that all of them stop after the same chunk. A second Ctrl-C stops at once, from
the last checkpoint. Either way the run directory says "interrupted" and `lmpshear run` resumes.
"""

from __future__ import annotations

import signal
import sys
import threading

from lmpshear import mpi
from lmpshear.errors import Interrupted, RunError


class StopRequests:
    def __init__(self, enabled: bool = True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.received: str | None = None
        self.agreed = False  # once true, stays: every rank has decided to stop
        self._previous: dict = {}

    def __enter__(self) -> StopRequests:
        if self.enabled:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):  # USR1: SLURM --signal to the tasks
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum, frame) -> None:
        if self.received is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.received = signal.Signals(signum).name
        if mpi.world_rank() == 0:  # under mpiexec every rank gets the signal; one says so
            print(
                f"\n[lmpshear] {self.received}: stopping cleanly, after a checkpoint (Ctrl-C again to stop at once)",
                file=sys.stderr,
                flush=True,
            )

    def requested(self) -> bool:
        """Whether to stop now: a signal reached this process or (under mpiexec) any rank. Collective
        under mpiexec: every rank calls it at the same point of the run."""
        if self.enabled and not self.agreed:
            self.agreed = mpi.any_rank(self.received is not None)
        return self.agreed

    def check(self, where, rundir) -> None:
        """Raise :class:`Interrupted` if a stop was asked for; ``where()`` says where the run stands."""
        if self.requested():
            raise interrupted(self.received or "a signal to another rank", where(), rundir)


def interrupted(what: str, where: str, rundir) -> Interrupted:
    return Interrupted(f"interrupted ({what}) {where}; `lmpshear run {rundir}` resumes from the last checkpoint")


def damaged(rundir, exc: Exception) -> RunError:
    """A run stopped by the file system or a damaged file: what to do about it."""
    return RunError(
        f"{rundir}: {exc}. The run stopped; everything up to the last checkpoint is kept. Free space "
        f"or repair the file (a run directory can also be copied to a disk with space), then run "
        f"`lmpshear run {rundir}` again"
    )


def mark_stopped(rundir, message: str, frames: int) -> None:
    """Say so in status.json, if the disk still takes it (the run resumes either way)."""
    try:
        rundir.set_status(state="stopped", message=message, frames=frames)
    except OSError:
        pass
