"""Validation against an outside number: 2D LJ NEMD viscosity vs LAMMPS examples/VISCOSITY.

The preset lj2d-nemd is LAMMPS's in.nemd.2d (rho = 0.6, T = 1, r_c = 2.5, 800 atoms,
rate 2.7/Lx = 0.0739, Tdamp 0.1). That folder's README quotes a Green-Kubo viscosity of 1.07 (and
1.18 from the NEMD script itself). We compare the total (kinetic + virial) viscosity, averaged
over independent seeds, with 1.07 and report the virial part (the paper's eq. 1) separately.

    python analysis/validation/validate_lj2d.py --seeds 4 --production 500 --out /tmp/lj2d
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

GREEN_KUBO = 1.07


def run_seed(out: Path, seed: int, production: float) -> dict:
    spec = out / f"seed{seed}.toml"
    spec.write_text(f'extends = "lj2d-nemd"\n[protocol]\nseed = {seed}\nproduction_time = {production}\n')
    rundir = out / f"seed{seed}"
    for args in (["prepare", str(spec), "-o", str(rundir)], ["run", str(rundir)], ["analyze", str(rundir)]):
        proc = subprocess.run([sys.executable, "-m", "lmpshear", *args], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"lmpshear {' '.join(args)} failed:\n{proc.stderr}")
    return json.loads((rundir / "viscosity.json").read_text())["result"]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--production", type=float, default=500.0, help="production time per seed (tau)")
    ap.add_argument("--parallel", type=int, default=2, help="runs at once (one core each)")
    ap.add_argument("--out", type=Path, default=Path("validation-lj2d"))
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    seeds = [1000 + 17 * k for k in range(args.seeds)]
    with ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(lambda s: run_seed(args.out, s, args.production), seeds))
    total = np.array([r["eta_total"] for r in results])
    virial = np.array([r["eta"] for r in results])
    sem = lambda a: float(a.std(ddof=1) / np.sqrt(len(a))) if len(a) > 1 else float("nan")  # noqa: E731
    summary = {
        "seeds": seeds,
        "eta_total": total.tolist(),
        "eta_virial": virial.tolist(),
        "eta_total_mean": float(total.mean()),
        "eta_total_sem": sem(total),
        "eta_virial_mean": float(virial.mean()),
        "eta_virial_sem": sem(virial),
        "green_kubo": GREEN_KUBO,
        "relative_deviation": float(total.mean() / GREEN_KUBO - 1.0),
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(
        f"eta_total (kinetic + virial) = {summary['eta_total_mean']:.4f} +/- {summary['eta_total_sem']:.4f} "
        f"over {len(seeds)} seeds; Green-Kubo {GREEN_KUBO}: {100 * summary['relative_deviation']:+.1f}%"
    )
    print(f"eta (virial only, paper eq. 1) = {summary['eta_virial_mean']:.4f} +/- {summary['eta_virial_sem']:.4f}")
    return summary


if __name__ == "__main__":
    main()
