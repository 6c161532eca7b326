"""Progress output for long work: a rich bar on a terminal, periodic plain lines otherwise (SLURM, CI)."""

from __future__ import annotations

import sys
import time


class LogReporter:
    """One line every ``every_seconds`` or every 10 % of the work, whichever comes first."""

    def __init__(self, stream=None, every_seconds: float = 30.0):
        self.stream = stream or sys.stderr
        self.every = every_seconds
        self.total = 1
        self.label = ""

    def start(self, total: int, done: int, label: str) -> None:
        self.total, self.label = max(1, total), label
        self.t0 = self.last_t = time.monotonic()
        self.done0 = self.last_done = max(0, done)
        self._print(self.done0, "started" if done <= 0 else "resumed")

    def update(self, done: int, info: str) -> None:
        if not hasattr(self, "t0"):
            self._emit(info)
            return
        now = time.monotonic()
        step = max(1, self.total // 10)
        if done >= self.total or now - self.last_t >= self.every or done - self.last_done >= step:
            self.last_t, self.last_done = now, done
            self._print(done, info)

    def _print(self, done: int, info: str) -> None:
        elapsed = time.monotonic() - self.t0
        rate = (done - self.done0) / elapsed if elapsed > 0 and done > self.done0 else 0.0
        eta = f", ETA {(self.total - done) / rate:.0f} s" if rate > 0 else ""
        self._emit(
            # counted in frames, as prepare and the finished run count them (the frame at t = 0 is the first)
            f"{self.label}: {done + 1}/{self.total + 1} frames ({100.0 * done / self.total:.0f}%), {info}, "
            f"{elapsed:.0f} s{eta}"
        )

    def _emit(self, text: str) -> None:
        print(f"[lmpshear] {text}", file=self.stream, flush=True)

    def close(self) -> None:
        pass


class RichReporter:
    def __init__(self):
        from rich.progress import (
            BarColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            transient=False,
        )
        self.task = None

    def start(self, total: int, done: int, label: str) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(label, total=total, completed=max(0, done), info="")
        else:
            self.progress.update(self.task, description=label, total=total, completed=max(0, done))

    def update(self, done: int, info: str) -> None:
        if self.task is None:
            self.progress.start()
            self.task = self.progress.add_task(info, total=None, info="")
        else:
            self.progress.update(self.task, completed=max(0, done), info=info)

    def close(self) -> None:
        if self.task is not None:
            self.progress.stop()


def reporter(stream=None):
    stream = stream or sys.stderr
    return RichReporter() if stream.isatty() else LogReporter(stream)


class NullReporter:
    """Progress nobody reads: ranks other than 0, branches of a run (ICE), library calls."""

    def start(self, total: int, done: int, label: str) -> None: ...
    def update(self, done: int, info: str) -> None: ...
    def close(self) -> None: ...
