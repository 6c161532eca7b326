"""A cluster's inherent structure and Hessian: lmpshear (lmpshear.kernels.hessian) vs LAMMPS.

    python benchmarks/bench_phm.py [--side 16] [--radius 4.5] [--repeat 3]

KA liquid (ka3d pair coefficients) on a jittered lattice of side³ particles at ρ = 1.2 in a cell
tilted by 0.25 L, minimised whole by LAMMPS (untimed); a sphere of radius ``--radius`` is shaken by
0.04 and relaxed with the rest frozen: lmpshear's ``relax_frozen`` (L-BFGS, then Newton steps, to a
largest force of 1e-8) against LAMMPS ``fix setforce 0 0 0`` + ``minimize 0 1e-10`` (cg); then the
free block of the Hessian: lmpshear's analytic one against LAMMPS ``dynamical_matrix`` (finite
differences, one rank). Prints the median times of ``--repeat`` and the ratios (LAMMPS / lmpshear),
and how far the two relaxed configurations are apart.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import lmpshear  # noqa: F401  (preloads libmpi for the lammps module)
from lmpshear import config
from lmpshear.cell import Cell
from lmpshear.engines.lammps import new_lammps
from lmpshear.engines.lammps_input import _pair_block
from lmpshear.kernels import hessian as hs


def lammps_with(r, types, cell, spec):
    lmp = new_lammps()
    lmp.commands_string(
        f"units lj\natom_modify map array sort 0 0\n"
        f"region box prism 0 {cell.lx} 0 {cell.ly} 0 {cell.lz} {cell.xy} 0 0\n"
        f"create_box 2 box\nmass * 1.0"
    )
    lmp.create_atoms(len(r), list(range(1, len(r) + 1)), [int(t) + 1 for t in types], cell.wrap(r)[0].ravel().tolist())
    lmp.commands_string("\n".join(_pair_block(spec)))
    return lmp


def positions(lmp):
    return np.array(lmp.numpy.extract_atom("x"))[: lmp.get_natoms()].copy()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=int, default=16)
    ap.add_argument("--radius", type=float, default=4.5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    spec = config.load("ka3d")
    pot = hs.PairPotential.of(spec.system)
    n = args.side**3
    length = (n / 1.2) ** (1 / 3)
    rng = np.random.default_rng(1)
    grid = np.stack(np.meshgrid(*[np.arange(args.side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    r = (grid + 0.5 + rng.uniform(-0.08, 0.08, grid.shape)) * (length / args.side)
    r[:, 0] += 0.25 * r[:, 1]
    types = (rng.random(n) < 0.2).astype(np.int64)
    cell = Cell((0.0, 0.0, 0.0), length, length, length, 0.25 * length, 3)
    os.chdir(tempfile.mkdtemp())
    lmp = lammps_with(r, types, cell, spec)
    lmp.command("minimize 0.0 1.0e-8 100000 1000000")
    start = positions(lmp)
    free = np.linalg.norm(cell.minimum_image(start - start[0]), axis=1) < args.radius
    start[free] += rng.normal(scale=0.04, size=(free.sum(), 3))
    hs.relax_frozen(start, types, cell, pot, free)  # compile
    ours, theirs, ours_h, theirs_h = [], [], [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        mine = hs.relax_frozen(start, types, cell, pot, free)
        ours.append(time.perf_counter() - t)
        lmp = lammps_with(start, types, cell, spec)
        ids = " ".join(str(k + 1) for k in np.where(~free)[0])
        lmp.commands_string(f"group frozen id {ids}\nfix hold frozen setforce 0.0 0.0 0.0\nmin_style cg")
        t = time.perf_counter()
        lmp.command("minimize 0.0 1.0e-10 100000 1000000")
        theirs.append(time.perf_counter() - t)
        apart = np.abs(cell.minimum_image(positions(lmp) - mine.positions)).max()
        t = time.perf_counter()
        hs.hessian(mine.positions, types, cell, pot, free=free)
        ours_h.append(time.perf_counter() - t)
        lmp = lammps_with(mine.positions, types, cell, spec)
        lmp.command("group cluster id " + " ".join(str(k + 1) for k in np.where(free)[0]))
        t = time.perf_counter()
        lmp.command("dynamical_matrix cluster regular 1e-6 file dynmat.dat")
        theirs_h.append(time.perf_counter() - t)
    med = np.median
    print(f"KA, N = {n}, {free.sum()} free particles (radius {args.radius:g}), cell tilted by 0.25 L")
    print(
        f"relaxation: lmpshear {med(ours):.3f} s ({mine.iterations} L-BFGS iterations, largest force "
        f"{mine.largest_force:.1e}), LAMMPS cg {med(theirs):.3f} s: "
        f"ratio LAMMPS/lmpshear {med(theirs) / med(ours):.2f}; "
        f"configurations {apart:.1e} apart"
    )
    print(
        f"Hessian block ({3 * free.sum()}²): lmpshear analytic {med(ours_h):.3f} s, LAMMPS dynamical_matrix "
        f"{med(theirs_h):.3f} s: ratio {med(theirs_h) / med(ours_h):.1f}"
    )


if __name__ == "__main__":
    main()
