"""Validation of the BD engine against the paper, and its time-step convergence.

    python benchmarks/validate_bd.py dl [--particles 2000 4000] [--time 10]
    python benchmarks/validate_bd.py dt [--particles 3000] [--rate 10] [--strain 2] [--equilibration 1]

``dl``: long-time self-diffusion D_L at φ = 0.425 at rest (the paper: D_L = 0.06 D_0), from the
MSD of r̃ between t = time/3 and the end: D_L = slope / 6 (3D), per species and for all particles,
for each N given (cutoff 5 d_b needs L > 2 (5 + skin), so N ≥ 2000 at this φ). Runs go through
``prepare`` and the BD runner, so the whole pipeline is exercised.

``dt``: the same sheared state (φ = 0.45) at dt, dt/2 and dt/4 from the preset's dt (1e-4):
steady-state means of the Yukawa and collision shear stresses, the potential energy and the
short-time MSD; differences are printed with their block errors.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import tomli_w

from lmpshear import config
from lmpshear.analysis.viscosity import block_average
from lmpshear.engines.bd_runner import BrownianRunner
from lmpshear.prepare import prepare
from lmpshear.progress import reporter
from lmpshear.store import Trajectory, read_thermo


def run(workdir: Path, name: str, base: str, system: dict, protocol: dict, rates: list[dict]) -> Path:
    spec = {"extends": str(config.resources.preset_path(base)), "system": system,
            "protocol": {**protocol, "rates": rates}}
    path = workdir / f"{name}.toml"
    path.write_text(tomli_w.dumps(spec))
    rd = prepare(path, workdir / name)
    BrownianRunner(rd, reporter()).run()
    return rd.path


def long_time_diffusion(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="lmpshear-dl-"))
    for n in args.particles:
        rd = run(work, f"dl-{n}", "bd425-reduced", {"n_particles": n},
                 {"equilibration_time": 2.0, "steady_time": 0.0, "production_time": args.time},
                 [{"rate": 0.0, "sample_interval": 0.05}])
        with Trajectory(rd / "traj.gsd") as traj:
            t, r = traj.times, traj.nonaffine()
            late = t >= t[-1] / 3
            msd = ((r - r[0]) ** 2).sum(axis=2)  # (frames, N) from the single origin t = 0
            for label, mask in (("big", traj.typeid == 0), ("small", traj.typeid == 1),
                                ("all", np.ones(traj.n_particles, bool))):
                m = msd[:, mask].mean(axis=1)
                slope = np.polyfit(t[late], m[late], 1)[0]
                # error: the slope from each half of the particles
                halves = [np.polyfit(t[late], msd[late][:, idx].mean(axis=1), 1)[0]
                          for idx in np.array_split(np.flatnonzero(mask), 2)]
                print(f"N = {n}: D_L({label}) = {slope / 6:.4f} D_0 (halves {halves[0] / 6:.4f}, {halves[1] / 6:.4f}); "
                      f"MSD at t = {t[-1]:g}: {m[-1]:.3f} d_b^2")
    print(f"(paper: D_L = 0.06 D_0 at phi = 0.425; runs in {work})")


def time_step_convergence(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="lmpshear-dt-"))
    base_dt = config.load("bd45-reduced").protocol.timestep
    rows = []
    for k in (1, 2, 4):
        dt = base_dt / k
        rd = run(work, f"dt-{k}", "bd45-reduced", {"n_particles": args.particles},
                 {"timestep": dt, "equilibration_time": args.equilibration, "steady_strain": 0.5,
                  "production_strain": args.strain}, [{"rate": args.rate, "sample_interval": 0.002}])
        th = read_thermo(rd / "thermo.csv")
        th = th[th.strain >= 0.5]
        stats = {c: block_average(-th[c].to_numpy() if c.startswith("pxy") else th[c].to_numpy(), 10)
                 for c in ("pxy_virial", "pxy_collision", "pe", "overlaps")}
        with Trajectory(rd / "traj.gsd") as traj:
            r = traj.nonaffine()
            lag = 5  # 0.01 tau_0
            stats["msd(0.01)"] = block_average(((r[lag:] - r[:-lag]) ** 2).sum(axis=2).mean(axis=1), 10)
        rows.append((dt, stats))
    print(f"phi = 0.45, N = {args.particles}, rate {args.rate:g}, strain 0.5..{0.5 + args.strain:g}")
    for dt, stats in rows:
        print(f"  dt = {dt:.3g}: " + ", ".join(f"{k} = {m:.4g} +/- {e:.2g}" for k, (m, e) in stats.items()))
    print(f"(sigma_xy = -pxy; runs in {work})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="what", required=True)
    dl = sub.add_parser("dl")
    dl.add_argument("--particles", type=int, nargs="+", default=[2000, 4000])
    dl.add_argument("--time", type=float, default=10.0)
    dt = sub.add_parser("dt")
    dt.add_argument("--particles", type=int, default=3000)
    dt.add_argument("--rate", type=float, default=10.0)
    dt.add_argument("--strain", type=float, default=2.0)
    dt.add_argument("--equilibration", type=float, default=1.0, help="time at rest before the shear")
    args = ap.parse_args()
    long_time_diffusion(args) if args.what == "dl" else time_step_convergence(args)


if __name__ == "__main__":
    main()
