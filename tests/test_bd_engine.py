"""The numba Brownian-dynamics engine: free diffusion, shear, hard cores, Yukawa forces, restore."""

from __future__ import annotations

import numpy as np
import pytest

from lmpshear.engines.bd import BrownianDynamics, Yukawa
from lmpshear.unwrap import LeesEdwardsUnwrapper


def random_system(n, L, dimension, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 3)) * L
    big = np.arange(n) < int(0.8 * n)
    diameter = np.where(big, 1.0, 2.0 / 3.0)
    diffusion = 1.0 / diameter  # Stokes–Einstein, D_0 of the big particles = 1
    return pos, diameter, diffusion, big


def follow(bd, steps, every=1):
    """Unwrapped path and r̃ of every particle through ``steps`` steps (LE-aware, sampled each step)."""
    un = LeesEdwardsUnwrapper(bd.rate, 0.0, bd.r)
    for _ in range(steps // every):
        for _ in range(every):
            bd.step()
        un.advance(bd.r, bd.cell, every * bd.dt)
    return un


@pytest.mark.parametrize("dimension", [2, 3])
def test_free_diffusion_msd_per_species(dimension):
    pos, d, D, big = random_system(4000, 20.0, dimension)
    bd = BrownianDynamics(pos, d, D, (20.0, 20.0, 20.0), dimension, rate=0.0, dt=1e-3, seed=1, yukawa=None,
                          hard_core=False)
    un = follow(bd, 200)
    t = 200 * 1e-3
    msd = (un.nonaffine[:, :dimension] ** 2).sum(axis=1)
    for mask, diff in ((big, 1.0), (~big, 1.5)):
        expected = 2 * dimension * diff * t
        # relative standard error of a mean of |Gaussian|^2 over n particles: sqrt(2/(dimension n))
        assert msd[mask].mean() == pytest.approx(expected, rel=4 * np.sqrt(2 / (dimension * mask.sum())))


def test_shear_without_interactions_streams_and_leaks_nothing():
    rate, dt, steps = 2.0, 2e-3, 400  # strain 1.6: several flips and many boundary crossings
    pos, d, D, big = random_system(4000, 10.0, 3, seed=2)
    bd = BrownianDynamics(pos, d, D, (10.0, 10.0, 10.0), 3, rate=rate, dt=dt, seed=3, yukawa=None, hard_core=False)
    y0 = bd.r[:, 1].copy()
    short = follow(bd, 25)  # t = 0.05: mean x-displacement against y is the streaming profile γ̇ y
    t = 25 * dt
    slope, intercept = np.polyfit(y0, (short.unwrapped[:, 0] - bd_start_x(pos)) / t, 1)
    assert slope == pytest.approx(rate, rel=0.06) and abs(intercept) < 0.6
    bd = BrownianDynamics(pos, d, D, (10.0, 10.0, 10.0), 3, rate=rate, dt=dt, seed=3, yukawa=None, hard_core=False)
    un = follow(bd, steps)
    t = steps * dt
    crossed = np.abs(np.floor(un.unwrapped[:, 1] / 10.0)) > 0
    assert crossed.sum() > 100
    msd = (un.nonaffine**2).sum(axis=1)
    for mask, diff in ((big, 1.0), (~big, 1.5)):
        assert msd[mask].mean() == pytest.approx(6 * diff * t, rel=4 * np.sqrt(2 / (3 * mask.sum())))
    # the affine part is all in x: y and z of r̃ are the plain displacements
    np.testing.assert_allclose(un.nonaffine[:, 1:], un.unwrapped[:, 1:] - (pos[:, 1:] % 10.0), atol=1e-9)


def bd_start_x(pos, L=10.0):
    return pos[:, 0] % L


def brute_pairs(r, cell):
    h = cell.matrix()
    d = r[:, None, :] - r[None, :, :]
    s = d @ np.linalg.inv(h)
    s -= np.rint(s)
    return s @ h


def test_yukawa_forces_virial_and_energy_against_brute_force():
    pos, d, D, _ = random_system(300, 8.0, 3, seed=4)
    y = Yukawa(K=9.69, z=4.86, cutoff=3.0)
    bd = BrownianDynamics(pos, d, D, (8.0, 8.0, 8.0), 3, rate=1.0, dt=1e-4, seed=0, yukawa=y, hard_core=True)
    bd.time = 0.3  # a tilted cell
    bd.r[:] = bd.cell.wrap(pos)[0]
    f = bd.forces()
    rij = brute_pairs(bd.r, bd.cell)
    dist = np.linalg.norm(rij, axis=2)
    dij = 0.5 * (d[:, None] + d[None, :])
    np.fill_diagonal(dist, np.inf)
    rr = np.maximum(dist, dij)
    inside = dist < 3.0
    v = np.where(inside, 9.69 * np.exp(-4.86 * (rr - dij)) * dij / rr, 0.0)
    fmag = np.where(inside, v * (4.86 + 1 / rr) / dist, 0.0)
    fb = (fmag[:, :, None] * rij).sum(axis=1)
    np.testing.assert_allclose(f, fb, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=1e-9)  # Newton's third law
    assert bd.energy == pytest.approx(0.5 * v.sum(), rel=1e-12)
    pxy = (fmag * rij[:, :, 0] * rij[:, :, 1]).sum() / 2  # Σ_pairs x_ij f_ij,y
    np.testing.assert_allclose(bd.virial_xy, -0.5 * (fmag * rij[:, :, 0] * rij[:, :, 1]).sum(axis=1), rtol=1e-10,
                               atol=1e-12)
    assert bd.virial_xy.sum() == pytest.approx(-pxy, rel=1e-10)


def test_no_overlap_survives_a_step_in_a_dense_suspension():
    n, phi = 1500, 0.45
    pos, d, D, _ = random_system(n, 1.0, 3, seed=5)
    L = (np.pi / 6 * (d**3).sum() / phi) ** (1 / 3)
    pos *= L
    bd = BrownianDynamics(pos, d, D, (L, L, L), 3, rate=1.0, dt=1e-4, seed=6, yukawa=Yukawa(cutoff=2.5),
                          hard_core=True, overlap_tol=1e-6)
    for _ in range(30):  # the first steps remove the overlaps of random insertion
        bd.step()
        rij = brute_pairs(bd.r, bd.cell)
        dist = np.linalg.norm(rij, axis=2)
        np.fill_diagonal(dist, np.inf)
        assert (dist / (0.5 * (d[:, None] + d[None, :]))).min() >= 1 - 1e-6
    assert bd.sweeps >= 1  # the hard core did work in the last step too


def test_restore_repeats_the_run_bit_for_bit():
    pos, d, D, _ = random_system(500, 1.0, 3, seed=7)
    L = (np.pi / 6 * (d**3).sum() / 0.3) ** (1 / 3)
    make = lambda: BrownianDynamics(pos * L, d, D, (L, L, L), 3, rate=3.0, dt=1e-4, seed=8,  # noqa: E731
                                    yukawa=Yukawa(cutoff=2.5), hard_core=True)
    a = make()
    for _ in range(5):
        a.step()
    saved = a.state()
    for _ in range(5):
        a.step()
    b = make()
    b.restore(saved)
    for _ in range(5):
        b.step()
    assert np.array_equal(a.r, b.r) and a.time == b.time


def test_reused_verlet_list_gives_the_forces_of_a_fresh_list_through_flips():
    pos, d, D, _ = random_system(600, 1.0, 3, seed=9)
    L = float((np.pi / 6 * (d**3).sum() / 0.3) ** (1 / 3))
    kw = dict(rate=20.0, dt=2e-4, seed=10, yukawa=Yukawa(cutoff=2.5), hard_core=True)
    listed = BrownianDynamics(pos * L, d, D, (L, L, L), 3, skin=0.4, **kw)
    fresh = BrownianDynamics(pos * L, d, D, (L, L, L), 3, skin=None, **kw)
    flips = 0
    for _ in range(300):  # strain 1.2: a flip at 0.5
        xy = listed.cell.xy
        fresh.r, fresh.time = listed.r.copy(), listed.time  # same configuration (sum orders differ)
        fa, fb = listed.forces(), fresh.forces()
        np.testing.assert_allclose(fa, fb, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(listed.virial_xy, fresh.virial_xy, rtol=1e-10, atol=1e-10)
        listed.step()
        flips += listed.cell.xy < xy
    assert flips >= 1 and 1 < listed.list_builds < 300
