"""A campaign on SLURM: batch scripts from templates (``templates/slurm_*.sh``, string.Template), a job
array for the runs, an analysis array after it (``aftercorr``: each analysis after its own run) and a
report job after the analyses; the queue (``squeue``) and the run directories tell what is left to do.

Each submission writes ``ROOT/.campaign/submit-K/{tasks.txt, run.sh, analyze.sh, report.sh}``; the
job ids and the run directory of every array task go to ``ROOT/.campaign/jobs.json``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from string import Template

from lmpshear import shipped
from lmpshear.campaign import (
    Campaign,
    Resources,
    plan,
    prepare_missing,
    record_jobs,
    recorded_jobs,
)
from lmpshear.errors import UserError
from lmpshear.rundir import RunDir

#: squeue states of work that is still to happen
LIVE = {
    "PENDING",
    "RUNNING",
    "CONFIGURING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
    "RESIZING",
    "SUSPENDED",
    "STAGE_OUT",
    "SIGNALING",
}


def require(command: str = "sbatch") -> str:
    path = shutil.which(command)
    if path is None:
        raise UserError(
            f"`{command}` is not on PATH: this is not a SLURM submit host. Run the campaign on this "
            "machine with --executor local, or log in to the cluster's login node"
        )
    return path


def _slurm(args: list[str]) -> str:
    require(args[0])
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise UserError(f"`{' '.join(args)}` did not answer in 120 s: is slurmctld up?") from None
    if done.returncode != 0:
        raise UserError(f"`{' '.join(args)}` failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def queued(campaign: Campaign) -> dict[Path, dict]:
    """Run directory -> the live job (step, id, state) that will work on it, from squeue and jobs.json."""
    jobs = recorded_jobs(campaign)
    if not jobs:
        return {}
    out = _slurm(["squeue", "-h", "-r", "-u", _user(), "-o", "%F|%K|%T"])
    by_id = {str(j["id"]): j for j in jobs}
    live: dict[Path, dict] = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) != 3 or parts[0] not in by_id or parts[2] not in LIVE:
            continue
        job = by_id[parts[0]]
        paths = [job["tasks"].get(parts[1])] if job["step"] != "report" else []
        for p in paths:
            if p is not None and (job["step"] == "run" or Path(p) not in live):
                live[Path(p)] = {"job": f"{parts[0]}_{parts[1]}", "step": job["step"], "state": parts[2]}
    return live


def queued_report(campaign: Campaign) -> str | None:
    jobs = [str(j["id"]) for j in recorded_jobs(campaign) if j["step"] == "report"]
    if not jobs:
        return None
    out = _slurm(["squeue", "-h", "-u", _user(), "-o", "%i|%T"])
    for line in out.splitlines():
        job, _, state = line.strip().partition("|")
        if job in jobs and state in LIVE:
            return job
    return None


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def header(campaign: Campaign, step: str, res: Resources, array: str | None) -> str:
    """The #SBATCH lines of one step."""
    logs = campaign.folder / "logs"
    lines = [
        f"--job-name=lmpshear-{campaign.name}-{step}",
        f"--output={logs}/{step}-%A_%a.out" if array else f"--output={logs}/{step}-%j.out",
        f"--ntasks={res.ranks if step == 'run' else 1}",
        f"--cpus-per-task={res.threads}",
    ]
    if array:
        lines.append(f"--array={array}" + (f"%{campaign.throttle}" if campaign.throttle else ""))
    for key, value in (
        ("time", res.walltime),
        ("mem", res.memory),
        ("partition", res.partition),
        ("account", res.account),
        ("qos", res.qos),
    ):
        if value:
            lines.append(f"--{key}={value}")
    if step == "run":
        lines += ["--requeue", "--open-mode=append"]
        if res.walltime:
            lines.append(f"--signal=B:USR1@{res.stop_before}")
    if step == "analyze":
        lines.append("--kill-on-invalid-dep=yes")  # a failed run's analysis leaves the queue
    lines += list(res.sbatch)
    return "\n".join(f"#SBATCH {line}" for line in lines)


def render(campaign: Campaign, step: str, tasks: Path, array: str | None) -> str:
    res = campaign.resources[step]
    launch = ""
    if step == "run" and res.ranks > 1:
        launch = f"srun --ntasks={res.ranks} " if res.launcher == "srun" else f"mpiexec -n {res.ranks} "
    text = shipped.template_text(f"slurm_{step}.sh")
    return Template(text).substitute(
        name=campaign.name,
        header=header(campaign, step, res, array),
        tasks=tasks,
        threads=res.threads,
        launch=launch,
        python=sys.executable,
        campaign=campaign.file,
        report=campaign.report_dir,
    )


def _ranges(indices: list[int]) -> str:
    """SLURM's array syntax: 0-3,5,7-8."""
    out, start = [], None
    for i, k in enumerate(indices):
        if start is None:
            start = k
        if i + 1 == len(indices) or indices[i + 1] != k + 1:
            out.append(f"{start}" if start == k else f"{start}-{k}")
            start = None
    return ",".join(out)


def submit(campaign: Campaign, dry_run: bool = False, echo=print, warn=None) -> dict:
    """Submit what is left: runs not complete and not queued, their analyses, and a report after them."""
    if not dry_run:
        require("sbatch")
    live = queued(campaign) if shutil.which("squeue") else {}
    if not dry_run:
        prepare_missing(campaign, echo=echo, warn=warn)
    planned = plan(campaign, live)
    index = {run.path: i for i, run in enumerate(campaign.runs)}
    to_run = [index[run.path] for run in planned.runs("run")]
    to_analyze = [index[run.path] for run in planned.runs("analyze") if index[run.path] not in to_run]
    for line in planned.skipped:
        echo(f"submit: skipping {line}")
    report_live = queued_report(campaign) if shutil.which("squeue") else None
    analyses_live = sorted({q["job"].split("_")[0] for q in live.values() if q["step"] in ("run", "analyze")})
    if not to_run and not to_analyze and (report_live or (not analyses_live and _report_current(campaign))):
        echo(
            f"submit: nothing to do for {campaign.name}: every run is analysed"
            + (f" and the report is queued (job {report_live})" if report_live else " and reported")
        )
        return {"submitted": [], "plan": []}
    folder = _next_submission(campaign)
    tasks = folder / "tasks.txt"
    scripts = {}
    if to_run:
        scripts["run"] = render(campaign, "run", tasks, _ranges(to_run))
    if to_run:
        scripts["analyze"] = render(campaign, "analyze", tasks, _ranges(to_run))
    if to_analyze:
        scripts["analyze-now"] = render(campaign, "analyze", tasks, _ranges(to_analyze))
    scripts["report"] = render(campaign, "report", tasks, None)
    if dry_run:
        echo(
            f"# {tasks} (task i is line i+1):\n" + "".join(f"#   {i}: {r.path}\n" for i, r in enumerate(campaign.runs))
        )
        for step, text in scripts.items():
            echo(f"# ---- {folder / (step + '.sh')} ----\n{text}")
    else:
        folder.mkdir(parents=True, exist_ok=True)
        (campaign.folder / "logs").mkdir(parents=True, exist_ok=True)
        tasks.write_text("".join(f"{r.path}\n" for r in campaign.runs))
        for step, text in scripts.items():
            (folder / f"{step}.sh").write_text(text)
    submitted, entries = [], []

    def sbatch(step: str, dependency: str | None, indices: list[int]) -> str:
        script = folder / f"{step}.sh"
        cmd = ["sbatch", "--parsable"] + ([f"--dependency={dependency}"] if dependency else []) + [str(script)]
        if dry_run:
            echo("$ " + " ".join(cmd))
            return f"<{step}-job>"
        job = _slurm(cmd).strip().split(";")[0]
        echo(
            f"submit: {step} -> job {job}"
            + (f" ({len(indices)} tasks)" if indices else "")
            + (f", after {dependency}" if dependency else "")
        )
        entries.append(
            {
                "id": job,
                "step": step.split("-")[0],
                "submission": folder.name,
                "tasks": {str(i): str(campaign.runs[i].path) for i in indices},
            }
        )
        submitted.append(job)
        return job

    waits = list(analyses_live)
    if to_run:
        run_job = sbatch("run", None, to_run)
        waits.append(sbatch("analyze", f"aftercorr:{run_job}", to_run))
    if to_analyze:
        waits.append(sbatch("analyze-now", None, to_analyze))
    sbatch("report", "afterany:" + ":".join(waits) if waits else None, [])
    if not dry_run:
        record_jobs(campaign, entries)
        echo(f"submit: scripts in {folder}; follow with `lmpshear status {campaign.file}`")
    return {
        "submitted": submitted,
        "run": [str(campaign.runs[i].path) for i in to_run],
        "analyze": [str(campaign.runs[i].path) for i in to_run + to_analyze],
        "folder": str(folder),
        "plan": planned.names(),
    }


def _next_submission(campaign: Campaign) -> Path:
    k = 1
    while (campaign.folder / f"submit-{k}").exists():
        k += 1
    return campaign.folder / f"submit-{k}"


def _report_current(campaign: Campaign) -> bool:
    """The campaign's report is newer than every run's analysis record."""
    done = campaign.report_dir / "campaign.json"
    if not done.exists():
        return False
    t = done.stat().st_mtime
    records = [RunDir(run.path).file("analysed") for run in campaign.runs]
    return all(r.exists() and r.stat().st_mtime <= t for r in records)
