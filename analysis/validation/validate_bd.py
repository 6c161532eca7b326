"""Validation of the BD engine against the paper, and its time-step convergence.

    python analysis/validation/validate_bd.py dl [--particles 2000 4000] [--equilibration 10] [--time 10]
    [--timestep DT] [--small-diffusion D]
    python analysis/validation/validate_bd.py dt [--particles 3000] [--rate 10] [--strain 2] [--equilibration 1]

``dl``: long-time self-diffusion D_L at φ = 0.425 at rest (the paper: D_L = 0.06 D_0), after
``equilibration`` τ_0 at rest: the MSD of r̃ over every time origin, fitted as a line for lags
from 1 τ_0 to half the sampled time, D_L = slope / 6 (3D), per species and for all particles,
with the spread of interleaved halves of the particles and the same fit in each half of the run
(an ageing check), for each N given (cutoff 5 d_b needs L > 2 (5 + skin), so N ≥ 2000 at this φ). Runs go through
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
from lmpshear.engines.bd_runner import BrownianRunner
from lmpshear.kernels.viscosity import block_average
from lmpshear.preparation import prepare
from lmpshear.progress import reporter
from lmpshear.store import Trajectory, read_thermo


def run(workdir: Path, name: str, base: str, system: dict, protocol: dict, rates: list[dict]) -> Path:
    spec = {
        "extends": str(config.shipped.preset_path(base)),
        "system": system,
        "protocol": {**protocol, "rates": rates},
    }
    path = workdir / f"{name}.toml"
    path.write_text(tomli_w.dumps(spec))
    rd = prepare(path, workdir / name)
    BrownianRunner(rd, reporter()).run()
    return rd.path


def diffusion_slope(t: np.ndarray, r: np.ndarray, lags: np.ndarray) -> np.ndarray:
    """Per-particle MSD(lag), averaged over every time origin, fitted as a line in lag: the slopes."""
    msd = np.array([((r[k:] - r[:-k]) ** 2).sum(axis=2).mean(axis=0) for k in lags])  # (lags, N)
    return np.polyfit(t[lags] - t[0], msd, 1)[0]


def long_time_diffusion(args) -> None:
    if args.time < 5.0:
        raise SystemExit(
            "--time must be at least 5 tau_0: each half of the run is fitted from lag 1 tau_0 to a quarter"
        )
    work = Path(tempfile.mkdtemp(prefix="lmpshear-dl-"))
    for n in args.particles:
        system = {"n_particles": n}
        if args.small_diffusion is not None:  # the species array is replaced whole by 'extends'
            species = [dict(vars(sp)) for sp in config.load("bd425-reduced").system.species]
            species[1]["diffusion"] = args.small_diffusion
            system["species"] = [{k: v for k, v in sp.items() if v is not None} for sp in species]
        protocol = {"equilibration_time": args.equilibration, "steady_time": 0.0, "production_time": args.time}
        if args.timestep is not None:
            protocol["timestep"] = args.timestep
        rd = run(work, f"dl-{n}", "bd425-reduced", system, protocol, [{"rate": 0.0, "sample_interval": 0.05}])
        with Trajectory(rd / "traj.gsd") as traj:
            t, r, typeid = traj.times, traj.nonaffine(), traj.typeid
        frames, every = len(t), t[1] - t[0]
        first = max(1, int(round(1.0 / every)))  # lags from 1 tau_0, well past the cage
        slope = diffusion_slope(t, r, np.arange(first, frames // 2 + 1)) / 6  # D_L per particle (3D)
        half, lags_half = frames // 2, np.arange(first, frames // 4 + 1)  # ageing check: each half of the run
        early = diffusion_slope(t[:half], r[:half], lags_half) / 6
        late = diffusion_slope(t[half:], r[half:], lags_half) / 6
        for label, mask in (("big", typeid == 0), ("small", typeid == 1), ("all", np.ones(len(typeid), bool))):
            idx = np.flatnonzero(mask)
            halves = slope[idx[::2]].mean(), slope[idx[1::2]].mean()  # interleaved halves of the particles
            print(
                f"N = {n}: D_L({label}) = {slope[idx].mean():.4f} D_0 +/- {abs(halves[0] - halves[1]) / 2:.4f} "
                f"(interleaved halves {halves[0]:.4f}, {halves[1]:.4f}; first / second half of the run "
                f"{early[idx].mean():.4f} / {late[idx].mean():.4f})"
            )
    small = "Stokes-Einstein 1.5" if args.small_diffusion is None else f"{args.small_diffusion:g}"
    print(
        f"(paper: D_L = 0.06 D_0 at phi = 0.425; {args.equilibration:g} tau_0 at rest, then {args.time:g} tau_0 "
        f"sampled; dt = {args.timestep or config.load('bd425-reduced').protocol.timestep:g}; small particles' "
        f"D = {small} D_0; runs in {work})"
    )


def time_step_convergence(args) -> None:
    work = Path(tempfile.mkdtemp(prefix="lmpshear-dt-"))
    base_dt = config.load("bd45-reduced").protocol.timestep
    rows = []
    for k in (1, 2, 4):
        dt = base_dt / k
        rd = run(
            work,
            f"dt-{k}",
            "bd45-reduced",
            {"n_particles": args.particles},
            {
                "timestep": dt,
                "equilibration_time": args.equilibration,
                "steady_strain": 0.5,
                "production_strain": args.strain,
            },
            [{"rate": args.rate, "sample_interval": 0.002}],
        )
        th = read_thermo(rd / "thermo.csv")
        th = th[th.strain >= 0.5]
        stats = {
            c: block_average(-th[c].to_numpy() if c.startswith("pxy") else th[c].to_numpy(), 10)
            for c in ("pxy_virial", "pxy_collision", "pe", "overlaps")
        }
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
    dl.add_argument("--time", type=float, default=10.0, help="sampled time (tau_0)")
    dl.add_argument("--equilibration", type=float, default=10.0, help="time at rest before sampling (tau_0)")
    dl.add_argument("--timestep", type=float, default=None, help="default: the preset's, 1e-4 tau_0")
    dl.add_argument(
        "--small-diffusion",
        type=float,
        default=None,
        help="the small particles' D in units of D_0 (default: Stokes-Einstein, 1.5)",
    )
    dt = sub.add_parser("dt")
    dt.add_argument("--particles", type=int, default=3000)
    dt.add_argument("--rate", type=float, default=10.0)
    dt.add_argument("--strain", type=float, default=2.0)
    dt.add_argument("--equilibration", type=float, default=1.0, help="time at rest before the shear")
    args = ap.parse_args()
    long_time_diffusion(args) if args.what == "dl" else time_step_convergence(args)


if __name__ == "__main__":
    main()
