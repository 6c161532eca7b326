"""The numba Brownian-dynamics engine: free diffusion, shear, hard cores, Yukawa forces, restore."""

from __future__ import annotations

import numpy as np
import pytest

from lmpshear.engines.bd import BrownianDynamics, Yukawa
from lmpshear.engines.bd_kernels import IMAGE_SHIFT, PARTNER
from lmpshear.unwrap import LeesEdwardsUnwrapper


def random_system(n, L, dimension, seed=0):
    rng = np.random.default_rng(seed)
    pos = rng.random((n, 3)) * L
    big = np.arange(n) < int(0.8 * n)
    diameter = np.where(big, 1.0, 2.0 / 3.0)
    diffusion = 1.0 / diameter  # Stokes–Einstein, D_0 of the big particles = 1
    return pos, diameter, diffusion, big


def follow(bd, steps):
    """Run ``steps`` steps, checking at every step that the engine's unwrapped path is the shared
    Lees–Edwards unwrapper's (fed the wrapped positions) and that its r̃ is the path minus the
    affine flow, r̃ = u(t) − u(0) − γ̇ Σ_k y_k dt e_x (the Itô sum of the integrator)."""
    un = LeesEdwardsUnwrapper(bd.rate, 0.0, bd.r)
    start = bd.unwrapped
    flow = np.zeros(len(start))
    for _ in range(steps):
        flow += bd.rate * bd.unwrapped[:, 1] * bd.dt
        bd.step()
        un.advance(bd.r, bd.cell, bd.dt)
        np.testing.assert_allclose(bd.unwrapped, un.unwrapped, atol=1e-9)
    expected = bd.unwrapped - start
    expected[:, 0] -= flow
    np.testing.assert_allclose(bd.nonaffine, expected, atol=1e-9)
    return bd


@pytest.mark.full
@pytest.mark.parametrize("dimension", [2, 3])
def test_free_diffusion_msd_per_species(dimension):
    pos, d, D, big = random_system(4000, 20.0, dimension)
    bd = BrownianDynamics(
        pos, d, D, (20.0, 20.0, 20.0), dimension, rate=0.0, dt=1e-3, seed=1, yukawa=None, hard_core=False
    )
    un = follow(bd, 200)
    t = 200 * 1e-3
    assert bd.time == pytest.approx(t)
    msd = (un.nonaffine[:, :dimension] ** 2).sum(axis=1)
    for mask, diff in ((big, 1.0), (~big, 1.5)):
        expected = 2 * dimension * diff * t
        # relative standard error of a mean of |Gaussian|^2 over n particles: sqrt(2/(dimension n))
        assert msd[mask].mean() == pytest.approx(expected, rel=4 * np.sqrt(2 / (dimension * mask.sum())))


@pytest.mark.full
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


def brute_yukawa(r, d, cell, K=9.69, z=4.86, cutoff=3.0):
    rij = brute_pairs(r, cell)
    dist = np.linalg.norm(rij, axis=2)
    np.fill_diagonal(dist, np.inf)
    dij = 0.5 * (d[:, None] + d[None, :])
    inside = dist < cutoff
    v = np.where(inside, K * np.exp(-z * (dist - dij)) * dij / dist, 0.0)
    fmag = np.where(inside, v * (z + 1 / dist) / dist, 0.0)
    force = (fmag[:, :, None] * rij).sum(axis=1)
    virial = -0.5 * (fmag * rij[:, :, 0] * rij[:, :, 1]).sum(axis=1)
    return force, virial, 0.5 * v.sum(), (fmag * np.where(inside, dist, 0.0) ** 2).sum() / 2


@pytest.mark.full
@pytest.mark.parametrize("precision, tol", [("double", 1e-11), ("mixed", 2e-5)])
def test_yukawa_forces_virial_and_energy_against_brute_force(precision, tol):
    pos, d, D, _ = random_system(300, 8.0, 3, seed=4)
    bd = BrownianDynamics(
        pos,
        d,
        D,
        (8.0, 8.0, 8.0),
        3,
        rate=1.0,
        dt=1e-4,
        seed=0,
        yukawa=Yukawa(cutoff=3.0, precision=precision),
        hard_core=True,
    )
    bd.time = 0.3  # a tilted cell
    bd.rebuild()
    m = bd.measure()
    f = bd.forces()
    fb, vb, eb, tb = brute_yukawa(bd.r, d, bd.cell)
    # random insertion: deep overlaps and forces over eight decades
    np.testing.assert_allclose(f, fb, rtol=tol, atol=tol * np.abs(fb).max())
    np.testing.assert_allclose(f.sum(axis=0), 0.0, atol=tol * np.abs(f).max())  # Newton's third law
    assert m.energy == pytest.approx(eb, rel=tol)
    assert m.virial_trace == pytest.approx(tb, rel=tol)
    np.testing.assert_allclose(m.virial_xy, vb, rtol=tol, atol=tol * np.abs(vb).max())
    assert m.virial_xy.sum() == pytest.approx(vb.sum(), rel=tol)


@pytest.mark.full
def test_no_overlap_survives_a_step_in_a_dense_suspension():
    n, phi = 1500, 0.45
    pos, d, D, _ = random_system(n, 1.0, 3, seed=5)
    L = (np.pi / 6 * (d**3).sum() / phi) ** (1 / 3)
    pos *= L
    bd = BrownianDynamics(
        pos, d, D, (L, L, L), 3, rate=1.0, dt=1e-4, seed=6, yukawa=Yukawa(cutoff=2.5), hard_core=True, overlap_tol=1e-6
    )
    for _ in range(30):  # the first step removes the overlaps of random insertion
        bd.step()
        assert bd.sweeps >= 1
        rij = brute_pairs(bd.r, bd.cell)
        dist = np.linalg.norm(rij, axis=2)
        np.fill_diagonal(dist, np.inf)
        assert (dist / (0.5 * (d[:, None] + d[None, :]))).min() >= 1 - 1e-6


def reference_hard_core(r, d, mu, cell, tol):
    """Jacobi sweeps over all pairs (nearest images), plain numpy: positions, sweeps, Σ x_ij Δ_ij,y."""
    r = r.copy()
    i, j = np.triu_indices(len(d), 1)
    dij = 0.5 * (d[i] + d[j])
    sweeps, virial = 0, 0.0
    while True:
        rij = brute_pairs(r, cell)[i, j]
        dist = np.linalg.norm(rij, axis=1)
        overlap = np.where(dist < dij, (dij - dist) / dij, 0.0)
        if overlap.max() <= tol:
            return r, sweeps, virial
        push = overlap > tol
        scale = np.where(push, (dij - dist) / dist / (mu[i] + mu[j]), 0.0)
        move = np.zeros_like(r)
        np.add.at(move, i, (mu[i] * scale)[:, None] * rij)
        np.add.at(move, j, -(mu[j] * scale)[:, None] * rij)
        virial += (scale * rij[:, 0] * rij[:, 1]).sum()
        r += move
        sweeps += 1


@pytest.mark.parametrize("margin", [None, 1e-4])
def test_hard_core_sweeps_equal_plain_jacobi_over_all_pairs(monkeypatch, margin):
    """The engine sweeps only the pairs near contact, selected again as particles move (a tiny
    margin forces many re-selections): the same moves as Jacobi sweeps over all pairs."""
    from lmpshear.engines import bd as engine

    if margin is not None:
        monkeypatch.setattr(engine, "SWEEP_MARGIN", margin)
    n, phi = 400, 0.45
    pos, d, D, _ = random_system(n, 1.0, 3, seed=21)
    L = (np.pi / 6 * (d**3).sum() / phi) ** (1 / 3)
    bd = BrownianDynamics(
        pos * L, d, D, (L, L, L), 3, rate=1.0, dt=1e-4, seed=22, yukawa=None, hard_core=True, skin=0.3
    )
    bd.time = 0.2  # a tilted cell
    bd.run(20)  # the first step removes the overlaps of random insertion
    bd.rebuild()
    kick = np.random.default_rng(23).normal(0.0, 0.015, (n, 3))  # a Brownian step's worth of overlaps
    for a in (bd._r, bd._unwrapped, bd._nonaffine):
        a += kick
    start, affine = bd.r, bd.unwrapped - bd.nonaffine
    want, sweeps, virial = reference_hard_core(start, d, D, bd.cell, bd.overlap_tol)
    prunes = bd.list_prunes
    bd._resolve_overlaps()
    assert bd.list_prunes == prunes  # one pass: the contact list held throughout
    assert bd.sweeps == sweeps and sweeps >= 3
    moved = bd.r - want
    frac = moved @ np.linalg.inv(bd.cell.matrix())
    np.testing.assert_allclose((frac - np.rint(frac)) @ bd.cell.matrix(), 0.0, atol=1e-12)
    assert bd.collision_virial * bd.dt == pytest.approx(virial, rel=1e-10)
    np.testing.assert_allclose(bd.unwrapped - bd.nonaffine, affine, atol=1e-12)  # path and r̃ pushed alike


def test_restore_repeats_the_run_bit_for_bit():
    pos, d, D, _ = random_system(500, 1.0, 3, seed=7)
    L = (np.pi / 6 * (d**3).sum() / 0.3) ** (1 / 3)
    make = lambda: BrownianDynamics(
        pos * L,
        d,
        D,
        (L, L, L),
        3,
        rate=3.0,
        dt=1e-4,
        seed=8,  # noqa: E731
        yukawa=Yukawa(cutoff=2.5),
        hard_core=True,
    )
    a = make()
    a.run(5)
    saved = a.state()
    a.run(200)  # list rebuilds (and re-sorts) on the way
    b = make()
    b.restore(saved)
    b.run(200)
    assert a.list_builds > 3
    for name in ("r", "unwrapped", "nonaffine"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.time == b.time


@pytest.mark.full
def test_taking_a_state_changes_nothing_and_restores_mid_list():
    """A state taken anywhere (after a measurement, between a prune and the next build) leaves the run
    as it would have gone, and a restored engine rebuilds the very lists the live one holds: so a run
    checkpointed at any sample is bitwise the run never checkpointed."""
    pos, d, D, _ = random_system(500, 1.0, 3, seed=7)
    L = (np.pi / 6 * (d**3).sum() / 0.3) ** (1 / 3)
    make = lambda: BrownianDynamics(
        pos * L,
        d,
        D,
        (L, L, L),
        3,
        rate=3.0,
        dt=1e-4,
        seed=8,  # noqa: E731
        yukawa=Yukawa(cutoff=2.5),
        hard_core=True,
        skin=0.1,
        outer_skin=0.8,
    )
    plain, watched = make(), make()
    states = []
    for _ in range(12):
        for bd in (plain, watched):
            bd.run(17)
            bd.measure()  # a sample: forces cached for the next step
        states.append((watched.state(), watched._t_prune != watched._t_build))
    for name in ("r", "unwrapped", "nonaffine"):
        assert np.array_equal(getattr(plain, name), getattr(watched, name)), name
    m = next(k for k, (_, mid_list) in enumerate(states) if mid_list)  # pruned since the last build
    restored = make()
    restored.restore(states[m][0])
    for _ in range(m + 1, 12):
        restored.run(17)
        restored.measure()
    assert watched.list_builds > 1 and watched.list_prunes > watched.list_builds
    for name in ("r", "unwrapped", "nonaffine"):
        assert np.array_equal(getattr(restored, name), getattr(plain, name)), name
    assert restored.time == plain.time


@pytest.mark.full
def test_maintained_lists_give_brute_force_forces_through_flips():
    pos, d, D, _ = random_system(600, 1.0, 3, seed=9)
    L = float((np.pi / 6 * (d**3).sum() / 0.3) ** (1 / 3))
    bd = BrownianDynamics(
        pos * L,
        d,
        D,
        (L, L, L),
        3,
        rate=20.0,
        dt=2e-4,
        seed=10,
        yukawa=Yukawa(cutoff=2.5, precision="double"),
        hard_core=True,
        skin=0.4,
    )
    flips = 0
    for k in range(300):  # strain 1.2: a flip at 0.5
        xy = bd.cell.xy
        bd.step()
        flips += bd.cell.xy < xy
        if k % 10 == 0:
            fb = brute_yukawa(bd.r, d, bd.cell, cutoff=2.5)[0]
            np.testing.assert_allclose(bd.forces(), fb, rtol=1e-11, atol=1e-11 * np.abs(fb).max())
    assert flips >= 1 and 1 < bd.list_builds < bd.list_prunes < 300  # pruned more often than built


def listed_pairs(begin, end, pairs, r, shifts):
    """{(i, j): separation} of half lists (pairs of i: pairs[begin[i]:end[i]]), keyed with i < j
    (separation r_i − r_j − n·H)."""
    out = {}
    for i in range(len(begin)):
        for q in pairs[begin[i] : end[i]]:
            j, sep = int(q & PARTNER), r[i] - r[q & PARTNER] - shifts[q >> IMAGE_SHIFT]
            key = (i, j) if i < j else (j, i)
            assert key not in out, f"pair {key} listed twice"
            out[key] = sep if i < j else -sep
    return out


@pytest.mark.full
@pytest.mark.parametrize(
    "dimension, n, L, xy, bins",
    [
        (3, 400, 8.0, 0.3, 4),
        (3, 400, 20.0, 0.49, 7),
        (3, 30, 8.0, -0.45, 3),
        (3, 9, 7.0, 0.1, 2),
        (2, 400, 17.0, -0.49, 10),
        (2, 5, 9.0, 0.2, 2),
    ],
)
def test_pair_lists_hold_every_pair_within_reach_once(dimension, n, L, xy, bins):
    """Against all pairs over the 27 (9) nearest images, in a sheared cell with 2 to 10 bins per axis
    (the small counts reached again through other images) and particles on the cell's faces: the
    outer list (cell search) within its reach, the Verlet and contact lists pruned from it within
    theirs, after the build and again after a prune in a moved configuration."""
    pos, d, D, _ = random_system(n, L, dimension, seed=11)
    pos[:3, :dimension] = 0.0  # on the faces (and corners) at lo ...
    pos[3:5, 0] = L  # ... and at lo + L along x
    bd = BrownianDynamics(
        pos,
        d,
        D,
        (L, L, L),
        dimension,
        rate=xy / L,
        dt=1e-4,
        seed=0,
        yukawa=Yukawa(cutoff=2.5),
        hard_core=True,
        skin=0.5,
        outer_skin=0.8,
    )
    bd.time = L  # tilt xy (fraction of L)
    bd.rebuild()
    assert bd.cell.xy == pytest.approx(xy * L) and bd._grid().n[1] == bins

    def check(lists, radius):
        r, h = bd._r, bd.cell.matrix()
        got = listed_pairs(*lists, r, bd._image_shifts())
        sep = r[:, None, :] - r[None, :, :]
        want = {}
        for image in np.ndindex(3, 3, 3 if dimension == 3 else 1):
            s = sep - (np.array(image) - [1, 1, 1 if dimension == 3 else 0]) @ h
            dist = np.linalg.norm(s, axis=2)
            for i, j in zip(*np.nonzero(np.triu(dist < radius(bd._d[:, None], bd._d[None, :]), 1))):
                want[(i, j)] = s[i, j]
        assert set(got) == set(want)
        for k, v in want.items():
            np.testing.assert_allclose(got[k], v, atol=1e-12)

    offsets, pairs = bd._outer
    check((offsets[:-1], offsets[1:], pairs), lambda di, dj: bd.outer_reach)
    check(bd._yukawa_list, lambda di, dj: bd.reach)
    check(bd._contact_list, lambda di, dj: 0.5 * (di + dj) + bd.skin)
    # a moved, further sheared configuration (no re-wrap), pruned again from the same outer list
    rng = np.random.default_rng(12)
    step = rng.uniform(-0.02, 0.02, (n, dimension))
    bd._r[:, :dimension] += step
    bd._nonaffine[:, :dimension] += step
    bd.time -= 0.02 * L / abs(xy)  # strain 0.02 back towards no tilt (no flip: the 27 images of the cell still do)
    assert bd._moved(bd._nonaffine_build, bd._t_build, bd.outer_reach) < bd.outer_skin - bd.skin  # still prunable
    prunes, builds = bd.list_prunes, bd.list_builds
    bd._prune()
    assert (bd.list_prunes, bd.list_builds) == (prunes + 1, builds)
    check(bd._yukawa_list, lambda di, dj: bd.reach)
    check(bd._contact_list, lambda di, dj: 0.5 * (di + dj) + bd.skin)
