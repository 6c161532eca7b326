"""A campaign on this machine: the same DAG as on SLURM (each run, then its analysis; the report after
all of them) in a bounded pool of ``lmpshear`` processes. Killed, it is resumed by starting it again:
runs resume from their checkpoints and finished steps are skipped (the run directories say what is
done). Each task's output goes to ``ROOT/.campaign/logs/LABEL-rate-R.STEP.log``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from lmpshear.campaign import Campaign, CampaignRun, plan, plural, prepare_missing, run_state
from lmpshear.errors import Interrupted, RunError, UserError


@dataclass
class Task:
    run: CampaignRun | None  # None: the report
    step: str
    process: Any = None  # its subprocess.Popen, once started
    started: float = 0.0
    log: Any = None  # its open log file, once started

    @property
    def of(self) -> CampaignRun:
        """The run this step works on (the report's step works on none)."""
        if self.run is None:
            raise RuntimeError("internal: the report step has no run")
        return self.run


def run_local(campaign: Campaign, jobs: int = 1, echo=print, warn=None, status_every: float = 60.0) -> dict:
    """Carry out the campaign's plan (:func:`lmpshear.campaign.plan`) with at most ``jobs`` processes at
    once; returns what ran and the plan's step names."""
    prepare_missing(campaign, echo=echo, warn=warn)
    planned = plan(campaign)
    for line in planned.skipped:
        echo(f"local: {line}")
    pending = [Task(t.run, t.step) for t in planned.steps]
    waiting = list(planned.waiting)  # running in another process (a previous submit's child, a user's `run`)
    skipped_runs = len(campaign.runs) - len({t.run.path for t in pending if t.run is not None})
    echo(
        f"local: {campaign.name}: {plural(len(planned.runs('run')), 'run')} and "
        f"{plural(len(planned.runs('analyze')), 'analysis', 'analyses')} to do, {jobs} at a time "
        f"({plural(skipped_runs, 'run')} with nothing to do now); logs in {campaign.folder / 'logs'}"
    )
    (campaign.folder / "logs").mkdir(parents=True, exist_ok=True)
    active: list[Task] = []
    done, failed, stopped = [], [], []
    previous = signal.signal(signal.SIGTERM, _as_interrupt)
    last_status = time.monotonic()
    try:
        while pending or active or waiting:
            for run in list(waiting):
                s = run_state(run)
                if s.state == "running":
                    continue
                waiting.remove(run)
                echo(f"local: {run.name}: no longer running elsewhere ({s.state})")
                if s.needs_run and s.state != "failed":
                    pending[:0] = [Task(run, "run"), Task(run, "analyze")]
                elif s.state == "failed":
                    failed.append(Task(run, "run"))
                elif s.needs_analysis:
                    pending.insert(0, Task(run, "analyze"))
            for task in list(active):
                code = task.process.poll()
                if code is None:
                    continue
                active.remove(task)
                task.log.close()
                elapsed = time.monotonic() - task.started
                if code == 0:
                    done.append(task)
                    echo(f"local: {_name(task)}: done in {elapsed:.0f} s")
                else:
                    if code == Interrupted.exit_code or code < 0:  # stopped from outside: it resumes
                        stopped.append(task)
                        how = f"signal {-code}" if code < 0 else f"exit {code}"
                        echo(
                            f"local: {_name(task)}: stopped from outside ({how}) after {elapsed:.0f} s; "
                            f"`lmpshear submit {campaign.file} --executor local` resumes it"
                        )
                    else:
                        failed.append(task)
                        echo(
                            f"local: {_name(task)}: FAILED (exit {code}) after {elapsed:.0f} s; "
                            f"see {_log(campaign, task)}"
                        )
                    # neither its analysis nor the report (which needs every run analysed) can happen
                    gone = task.run.path if task.run is not None else None
                    pending[:] = [t for t in pending if t.run is not None and t.run.path != gone]
            for task in _ready(pending, active, failed, jobs, waiting):
                pending.remove(task)
                _start(campaign, task)
                active.append(task)
                echo(f"local: {_name(task)}: started (pid {task.process.pid})")
            if (active or waiting) and time.monotonic() - last_status >= status_every:
                last_status = time.monotonic()
                echo(
                    "local: running "
                    + "; ".join([_progress(t) for t in active] + [f"{r.name} (elsewhere)" for r in waiting])
                )
            time.sleep(0.5)
    except KeyboardInterrupt:
        for task in active:
            task.process.send_signal(signal.SIGTERM)
        for task in active:
            task.process.wait()
        raise Interrupted(
            f"interrupted; {len(active)} running steps stopped at a checkpoint. "
            f"`lmpshear submit {campaign.file} --executor local` resumes"
        ) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    if failed:
        raise RunError(
            f"{len(failed)} of {len(done) + len(failed) + len(stopped)} steps failed: "
            + ", ".join(_name(t) for t in failed)
            + f"; their logs are in {campaign.folder / 'logs'}; "
            "the report waits until every run is analysed"
        )
    if stopped:
        raise Interrupted(
            f"{len(stopped)} steps were stopped from outside: "
            + ", ".join(_name(t) for t in stopped)
            + f"; the report waits for them. `lmpshear submit {campaign.file} --executor local` resumes"
        )
    return {"done": [_name(t) for t in done], "plan": planned.names()}


def _as_interrupt(signum, frame):
    raise KeyboardInterrupt


def _ready(pending: list[Task], active: list[Task], failed: list[Task], jobs: int, waiting=()) -> list[Task]:
    """Tasks whose inputs are done, up to the free slots: an analysis after its run, the report last
    (after every run running elsewhere too)."""
    free = jobs - len(active)
    blocked = {t.of.path for t in pending + active if t.step == "run"}
    ready: list[Task] = []
    for task in pending:
        if len(ready) >= free:
            break
        if task.step == "report":
            if len(pending) == 1 and not active and not waiting:
                ready.append(task)
        elif task.step == "run" or task.of.path not in blocked:
            ready.append(task)
    return ready


def _start(campaign: Campaign, task: Task) -> None:
    res = campaign.resources[task.step]
    env = os.environ | {"NUMBA_NUM_THREADS": str(res.threads), "OMP_NUM_THREADS": str(res.threads)}
    if task.step == "report":
        args = ["report", str(campaign.file), "--out", str(campaign.report_dir)]
    else:
        args = [task.step, str(task.of.path)]
    task.log = open(_log(campaign, task), "a")
    task.log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')}: lmpshear {' '.join(args)}\n")
    task.log.flush()
    task.started = time.monotonic()
    launch = []
    if task.step == "run" and res.ranks > 1:  # LAMMPS over MPI, with the mpich wheel's launcher
        mpiexec = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
        if mpiexec is None:
            raise UserError("resources.run.ranks > 1 needs `mpiexec` (pip install 'lmpshear[mpi]')")
        launch = [mpiexec, "-n", str(res.ranks)]
    # its own session (a Ctrl-C in the terminal reaches only this process, which stops the steps at a
    # checkpoint), but it ends with this process: a kill -9 here sends it SIGTERM (a run then stops at
    # a checkpoint), so no step lives on unwatched
    task.process = subprocess.Popen(
        [*launch, sys.executable, "-m", "lmpshear", *args],
        stdout=task.log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
        preexec_fn=_end_with_parent,
    )


def _end_with_parent() -> None:
    """In the child, before exec: ask Linux for SIGTERM when the parent dies (PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except OSError:  # not Linux: the step then outlives a killed parent, and a rerun waits for it
        pass


def _log(campaign: Campaign, task: Task):
    name = "report" if task.run is None else f"{task.run.label}-{task.run.path.name}.{task.step}"
    return campaign.folder / "logs" / f"{name}.log"


def _name(task: Task) -> str:
    return "report" if task.run is None else f"{task.step} {task.run.name}"


def _progress(task: Task) -> str:
    if task.step != "run":
        return _name(task)
    s = run_state(task.of)
    return _name(task) + (f" {100 * s.progress:.0f}%" if s.progress is not None else f" ({s.detail or s.state})")
