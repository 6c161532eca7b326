"""What each analysis stage costs against N and frames, beside the cost of reading its data and freud.

For every complete run directory given, each stage but phm and facilitation runs in its own process
(`lmpshear analyze COPY --only STAGE --no-figures`, after the stages before it) under /usr/bin/time:
wall time, peak RSS and CPU share (200 % is both cores). COPY links the run's store and thermo table,
so the run itself is not touched. Anchors, side by side as ratios:

- **I/O**: reading, once, the arrays of the steady window the stage reads (the store's chunks, page
  cache warm, as for the stage), or the jump table for gjj and the thermo table for viscosity;
- **start**: a process that imports what `analyze` imports and exits (part of every stage's time);
- **peers** (in-process, the same frames): freud's RDF for g(r) (the structure stage's frames, r_max
  and bins) and freud's MSD (window mode: every origin, by FFT) for the MSD (ours: the stage's
  origins and lags); with ``--rest RUNDIR`` (a run at rate 0, where its conventions apply) atooms-pp's
  Chi4SelfOverlap beside our χ4 over the same origins and lags (ours computes the collective Q as
  well, so the ratio is an upper bound). Their results are printed beside ours as a check.

Then the exponents of wall time and peak RSS in N (runs with the same frames) and in frames (runs with
the same N), fitted in log-log. Writes the table as Markdown with ``--out``.

    python benchmarks/bench_scaling.py RUNDIR [RUNDIR ...] [--rest RUNDIR] [--budget GB] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

STAGES = ("viscosity", "structure", "msd", "overlap", "cagejumps", "s4", "clusters", "gjj")
#: the window's arrays each stage reads ("jumps": the jump table; "thermo": the thermo table)
READS = {
    "viscosity": ("thermo",),
    "structure": ("unwrapped",),
    "msd": ("nonaffine",),
    "overlap": ("unwrapped", "nonaffine"),
    "cagejumps": ("nonaffine", "unwrapped"),
    "s4": ("unwrapped", "nonaffine"),
    "clusters": ("unwrapped", "virial_xy"),
    "gjj": ("jumps",),
}


def timed(cmd: list[str]) -> dict:
    """Wall time (s), peak RSS (GB) and CPU share (%) of a command, from GNU time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as out:
        proc = subprocess.run(["/usr/bin/time", "-o", out.name, "-f", "%e %M %P", *cmd], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        wall, rss, cpu = out.read().split()[-3:]
    return {"wall": float(wall), "rss": int(rss) / 1e6, "cpu": float(cpu.rstrip("%"))}


def working_copy(run: Path, into: Path) -> Path:
    """The run's small files copied, its store and thermo table linked: products land in the copy."""
    into.mkdir(parents=True)
    for f in run.iterdir():
        if f.name in ("traj.gsd", "thermo.csv"):
            (into / f.name).symlink_to(f.resolve())
        elif f.name in ("config.toml", "status.json", "manifest.json", "checkpoint", "source.json"):
            (shutil.copytree if f.is_dir() else shutil.copy2)(f, into / f.name)
    return into


def io_anchor(copy: Path, stage: str) -> float:
    """Seconds to read, once, what the stage reads of the steady window."""
    import pandas as pd

    from lmpshear.rundir import RunDir
    from lmpshear.stages.base import SteadyWindow
    from lmpshear.store import Trajectory, read_thermo

    t0 = time.perf_counter()
    if READS[stage] == ("thermo",):
        read_thermo(copy / "thermo.csv")
    elif READS[stage] == ("jumps",):
        pd.read_csv(copy / "cagejumps.csv.gz")
    else:
        with Trajectory(copy / "traj.gsd") as traj:
            frames = SteadyWindow(traj, RunDir(copy).info().steady_time, copy).frames
            if stage == "structure":
                frames = np.unique(np.round(np.linspace(frames[0], frames[-1], 10)).astype(int))
            t0 = time.perf_counter()
            for key in READS[stage]:
                for k in frames:
                    traj.particle_frame(key, int(k))
    return time.perf_counter() - t0


def peers(copy: Path) -> list[dict]:
    """freud's RDF and MSD against ours on the same frames, in this process (each timed after a warm-up)."""
    import freud

    from lmpshear.kernels.msd import mean_square_displacement
    from lmpshear.kernels.overlap import log_lags, origins_in
    from lmpshear.kernels.structure import pair_distribution
    from lmpshear.rundir import Product, RunDir
    from lmpshear.stages.base import SteadyWindow
    from lmpshear.store import Trajectory

    out = []
    structure = Product.read(copy / "structure.json").result
    with Trajectory(copy / "traj.gsd") as traj:
        picks = structure["frames"]
        r = traj.unwrapped(picks)
        cells = [traj.cell(k) for k in picks]
        r_max, bins = structure["r"][-1] + 0.5 * (structure["r"][1] - structure["r"][0]), len(structure["r"])
        ours = pair_distribution(r, cells, traj.typeid, traj.types, r_max, bins)  # warm-up (compiled already)
        t0 = time.perf_counter()
        ours = pair_distribution(r, cells, traj.typeid, traj.types, r_max, bins)
        t_ours = time.perf_counter() - t0

        def freud_rdf():
            rdf = freud.density.RDF(bins=bins, r_max=r_max)
            for x, cell in zip(r, cells):
                box = freud.box.Box(cell.lx, cell.ly, cell.lz, cell.xy / cell.ly, 0, 0, cell.dimension == 2)
                centre = np.asarray(cell.lo) + 0.5 * cell.matrix().sum(axis=0)
                points = np.zeros((len(x), 3))
                points[:, : cell.dimension] = cell.wrap(x)[0][:, : cell.dimension] - centre[: cell.dimension]
                rdf.compute((box, points.astype(np.float32)), reset=False)
            return rdf

        freud_rdf()
        t0 = time.perf_counter()
        rdf = freud_rdf()
        t_freud = time.perf_counter() - t0
        peak = int(np.argmax(ours.total))
        out.append(
            {
                "what": "g(r)",
                "ours": t_ours,
                "freud": t_freud,
                "check": f"first peak {ours.total[peak]:.4g} (ours) / {rdf.rdf[peak]:.4g} (freud) "
                f"at r = {ours.r[peak]:.3g}",
            }
        )

        window = SteadyWindow(traj, RunDir(copy).info().steady_time, copy)
        x = np.stack([window.nonaffine[k] for k in range(len(window))])
        origins, lags = origins_in(0, len(window) - 2, 50), log_lags(len(window) - 1, 40)
        t0 = time.perf_counter()
        m = mean_square_displacement(x, window.times, traj.typeid, traj.types, origins, lags)
        t_ours = time.perf_counter() - t0
        points = np.zeros(x.shape[:2] + (3,), dtype=np.float64)
        points[:, :, : x.shape[2]] = x
        t0 = time.perf_counter()
        msd = freud.msd.MSD(mode="window").compute(points).msd  # no box: the paths are continuous
        t_freud = time.perf_counter() - t0
        lag = m.lags[len(m.lags) // 2]
        out.append(
            {
                "what": "MSD",
                "ours": t_ours,
                "freud": t_freud,
                "check": f"MSD at lag {lag}: {m.msd[len(m.lags) // 2]:.4g} (ours, {len(origins)} origins) / "
                f"{msd[lag]:.4g} (freud, every origin)",
            }
        )
    return out


def atooms_xyz(traj, path: Path) -> str:
    """A store's unwrapped positions as atooms's XYZ (cells, steps, time step), for atooms-pp to read: the
    conversion a peer needs at rest (an unsheared cell; atooms unfolds the paths it reads)."""
    from atooms.system import Cell as AtoomsCell
    from atooms.system import Particle, System
    from atooms.trajectory import TrajectoryXYZ

    times, steps = traj.times, traj.steps
    with TrajectoryXYZ(str(path), "w") as out:
        out.timestep = float(times[1] - times[0]) / float(steps[1] - steps[0])
        for k in range(len(traj)):
            cell, system = traj.cell(k), System()
            system.cell = AtoomsCell(np.array([cell.lx, cell.ly, cell.lz]))
            system.particle = [
                Particle(species=traj.types[t], position=np.array(p))
                for t, p in zip(traj.typeid, traj.unwrapped([k])[0])
            ]
            out.write(system, int(steps[k]))
    return str(path)


def rest_peer(run: Path, lags: int = 20, origins: int = 50) -> dict:
    """Our χ4 (collective and self) against atooms-pp's Chi4SelfOverlap on a run at rest: the same
    evenly spread origins (atooms-pp: every ``skip``-th frame) and the same lags."""
    import atooms.postprocessing as pp

    from lmpshear.kernels.overlap import susceptibility
    from lmpshear.store import Trajectory

    with Trajectory(run / "traj.gsd") as traj:
        x, nonaffine, times, cells = (
            traj.unwrapped(),
            traj.nonaffine(),
            traj.times,
            [traj.cell(k) for k in range(len(traj))],
        )
        skip = max(1, len(x) // origins)
        lag = np.unique(np.geomspace(1, len(x) // 2, lags).astype(int))
        with tempfile.TemporaryDirectory() as tmp:
            path = atooms_xyz(traj, Path(tmp) / "rest.xyz")
            theirs = pp.Chi4SelfOverlap(path, tgrid=list(times[lag] - times[0]), a=0.2, norigins=None)
            theirs.skip = skip
            t0 = time.perf_counter()
            theirs.compute()
            t_theirs = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = susceptibility(x, nonaffine, cells, times, 1.0, 0.2, np.arange(0, len(x) - 1, skip), lag)
    t_ours = time.perf_counter() - t0
    n = x.shape[1]
    var = ours.chi4_self * n * n / cells[0].volume / n
    worst = float(np.max(np.abs(var[: len(theirs.value)] - np.array(theirs.value)) / np.max(theirs.value)))
    return {
        "what": "χ4 (self), at rest",
        "n": n,
        "frames": len(x),
        "ours": t_ours,
        "peer": t_theirs,
        "check": f"largest difference {worst:.1e} of the peak, {len(theirs.value)} lags",
    }


def exponent(xs, ys) -> float:
    return float(np.polyfit(np.log(xs), np.log(ys), 1)[0]) if len(set(xs)) >= 2 else float("nan")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--rest", type=Path, default=None, help="a run at rate 0 for the atooms-pp peer")
    ap.add_argument("--budget", type=float, default=None, help="[analysis] memory_budget (GB); default: the spec's")
    ap.add_argument("--out", type=Path, default=None, help="also write the tables here (Markdown)")
    args = ap.parse_args(argv)
    from lmpshear.rundir import RunDir
    from lmpshear.stages.base import SteadyWindow
    from lmpshear.store import Trajectory

    work = Path(tempfile.mkdtemp(prefix="lmpshear-scaling-"))
    start = timed([sys.executable, "-c", "import lmpshear.stages.pipeline, lmpshear.kernels.convective, pandas, scipy"])
    lines = [
        f"start (imports): {start['wall']:.2f} s, {start['rss']:.2f} GB",
        "",
        "| N | frames | stage | wall (s) | × I/O | CPU | peak RSS (GB) |",
        "|---|---|---|---|---|---|---|",
    ]
    print(lines[0], flush=True)
    rows, peer_lines = (
        [],
        ["", "| N | frames | what | ours (s) | peer (s) | ours / peer | check |", "|---|---|---|---|---|---|---|"],
    )
    for run in args.runs:
        copy = working_copy(run, work / run.name)
        with Trajectory(copy / "traj.gsd") as traj:
            n, frames = traj.n_particles, len(SteadyWindow(traj, RunDir(copy).info().steady_time, copy))
        for stage in STAGES:
            cmd = [sys.executable, "-m", "lmpshear", "analyze", str(copy), "--only", stage, "--no-figures"]
            got = timed(cmd + (["--set", f"memory_budget={args.budget}"] if args.budget else []))
            anchor = io_anchor(copy, stage)
            rows.append({"run": run.name, "n": n, "frames": frames, "stage": stage, **got, "io": anchor})
            line = (
                f"| {n} | {frames} | {stage} | {got['wall']:.1f} | {got['wall'] / anchor:.0f} | "
                f"{got['cpu']:.0f} % | {got['rss']:.2f} |"
            )
            lines.append(line)
            print(line, flush=True)
        for p in peers(copy):
            line = (
                f"| {n} | {frames} | {p['what']} (freud) | {p['ours']:.3f} | {p['freud']:.3f} | "
                f"{p['ours'] / p['freud']:.2f} | {p['check']} |"
            )
            peer_lines.append(line)
            print(line, flush=True)
        total = sum(r["wall"] for r in rows if r["run"] == run.name)
        print(f"{run.name}: every stage {total:.0f} s (each includes its start)", flush=True)
    if args.rest:
        p = rest_peer(args.rest)
        line = (
            f"| {p['n']} | {p['frames']} | {p['what']} (atooms-pp) | {p['ours']:.3f} | {p['peer']:.3f} | "
            f"{p['ours'] / p['peer']:.2f} | {p['check']} |"
        )
        peer_lines.append(line)
        print(line, flush=True)
    fits = ["", "| stage | time ∝ N^a | RSS ∝ N^b | time ∝ frames^c | RSS ∝ frames^d |", "|---|---|---|---|---|"]
    for stage in STAGES:
        mine = [r for r in rows if r["stage"] == stage]
        common_frames = max({r["frames"] for r in mine}, key=lambda f: sum(r["frames"] == f for r in mine))
        common_n = max({r["n"] for r in mine}, key=lambda n: sum(r["n"] == n for r in mine))
        by_n = [r for r in mine if r["frames"] == common_frames]
        by_f = [r for r in mine if r["n"] == common_n]
        fits.append(
            f"| {stage} | {exponent([r['n'] for r in by_n], [r['wall'] for r in by_n]):.2f} | "
            f"{exponent([r['n'] for r in by_n], [r['rss'] for r in by_n]):.2f} | "
            f"{exponent([r['frames'] for r in by_f], [r['wall'] for r in by_f]):.2f} | "
            f"{exponent([r['frames'] for r in by_f], [r['rss'] for r in by_f]):.2f} |"
        )
    text = "\n".join(lines + peer_lines + fits)
    print("\n".join(peer_lines + fits))
    if args.out:
        args.out.write_text(text + "\n")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
