"""In-process `lmpshear run` vs the bare `lmp -in in.lammps` on the same input and steps.

Reduced Kob-Andersen (N = 2000) at rate 0.06, streaming every Delta t = 0.05 (the paper's sampling
for that rate, 10 steps): lmpshear gathers positions, stresses and the affine integral, unwraps and
writes a GSD frame every sample; the bare binary writes a sorted text dump at the same cadence.
Both start from the same random configuration (no equilibration), so they do identical MD work.
Prints wall times, Matom-step/s and the ratio (target: in-process at most 5% slower).

    python benchmarks/bench_inprocess.py [--steps 30000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd, cwd) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--n", type=int, default=2000)
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="lmpshear-bench-"))
    rate, dt, interval = 0.06, 0.005, 0.05
    strain = args.steps * dt * rate
    spec = work / "bench.toml"
    spec.write_text(
        f'extends = "ka3d"\n[system]\nn_particles = {args.n}\n[protocol]\nmelt_time = 0.0\n'
        f"equilibration_time = 0.0\nsteady_strain = 0.0\nproduction_strain = {strain!r}\n"
        f"checkpoint_every = 1000000\n[[protocol.rates]]\nrate = {rate}\nsample_interval = {interval}\n"
    )
    lmp = shutil.which("lmp", path=os.path.dirname(sys.executable))
    atom_steps = args.n * args.steps
    rows = []
    for k in range(args.repeat):
        for label in ("bare lmp", "lmpshear run"):
            rundir = work / f"{label.split()[0]}{k}"
            subprocess.run(
                [sys.executable, "-m", "lmpshear", "prepare", str(spec), "-o", str(rundir)],
                check=True,
                capture_output=True,
            )
            if label == "bare lmp":
                wall = timed([lmp, "-in", "in.lammps", "-log", "log.bare", "-screen", "none"], rundir)
            else:
                wall = timed([sys.executable, "-m", "lmpshear", "run", str(rundir)], rundir)
            rows.append((label, k, wall))
            print(f"{label:13s} run {k}: {wall:7.2f} s  {atom_steps / wall / 1e6:6.3f} Matom-step/s", flush=True)
    bare = min(w for label, _, w in rows if label == "bare lmp")
    ours = min(w for label, _, w in rows if label == "lmpshear run")
    print(
        f"\nbest of {args.repeat}: bare lmp {bare:.2f} s ({atom_steps / bare / 1e6:.3f} Matom-step/s), "
        f"lmpshear run {ours:.2f} s ({atom_steps / ours / 1e6:.3f} Matom-step/s)"
    )
    print(f"ratio lmpshear/bare = {ours / bare:.4f}  (overhead {100 * (ours / bare - 1):+.2f}%; target <= +5%)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
