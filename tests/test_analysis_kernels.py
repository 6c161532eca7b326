"""Analysis kernels against analytic cases and brute-force references."""

from __future__ import annotations

import numpy as np
import pytest

from lmpshear.cell import Cell
from lmpshear.errors import UserError
from lmpshear.kernels.cagejumps import cage_jumps, reference_jump_frames, split_scores
from lmpshear.kernels.flowcurve import flow_curve
from lmpshear.kernels.msd import (
    cage_relative,
    cage_size,
    mean_square_displacement,
    neighbour_pairs,
)
from lmpshear.kernels.overlap import (
    _peak_error,
    chi4_peak,
    collective_overlap,
    log_lags,
    origins_in,
    self_overlap,
    susceptibility,
)
from lmpshear.kernels.structure import first_minimum, pair_distribution
from lmpshear.neighbors import CellGrid, bin_neighbours


def brute_distances(p: np.ndarray, q: np.ndarray, cell: Cell) -> np.ndarray:
    """|p_i − q_j| minimised over the 27 (or 9) nearest lattice images: no fractional rounding."""
    h = cell.matrix()
    p, q = cell.wrap(p)[0], cell.wrap(q)[0]  # into the cell, so that the nearest images suffice
    best = np.full((len(p), len(q)), np.inf)
    zs = (-1, 0, 1) if cell.dimension == 3 else (0,)
    for a in (-1, 0, 1):
        for b in (-1, 0, 1):
            for c in zs:
                shift = np.array([a, b, c]) @ h
                best = np.minimum(best, np.linalg.norm(p[:, None, :] - q[None, :, :] - shift, axis=2))
    return best


# ---------------------------------------------------------------------------------------------
# Cage jumps


def planted_cages(rng, n_frames=400, n_particles=40, dim=3, noise=0.03):
    x = np.zeros((n_frames, n_particles, dim))
    truth = []
    for i in range(n_particles):
        t, centre, jumps = 0, np.zeros(dim), []
        while t < n_frames:
            length = int(rng.integers(10, 90))
            x[t : t + length, i] = centre
            t += length
            if t < n_frames:
                jumps.append(t)
                v = rng.normal(size=dim)
                centre = centre + v / np.linalg.norm(v) * rng.uniform(0.8, 1.5)
        truth.append(jumps)
    return x + rng.normal(scale=noise, size=x.shape), truth


@pytest.mark.full
@pytest.mark.parametrize("dim", [2, 3])
def test_planted_jumps_are_recovered_exactly(dim):
    rng = np.random.default_rng(7 + dim)
    x, truth = planted_cages(rng, dim=dim)
    times = np.arange(len(x)) * 0.1
    jumps = cage_jumps(x, x + 100.0, times, threshold=0.05)
    assert sum(map(len, truth)) == len(jumps) > 100
    for i, expected in enumerate(truth):
        assert jumps.frame[jumps.particle == i].tolist() == expected
    # jump vector = mean of the cage after minus mean of the cage before
    for k in range(len(jumps)):
        i, c = jumps.particle[k], jumps.frame[k]
        bounds = [0] + truth[i] + [len(x)]
        m = bounds.index(c)
        expected = x[c : bounds[m + 1], i].mean(axis=0) - x[bounds[m - 1] : c, i].mean(axis=0)
        np.testing.assert_allclose(jumps.vector[k], expected, atol=1e-12)
        np.testing.assert_allclose(jumps.position[k], 0.5 * (x[c - 1, i] + x[c, i]) + 100.0, atol=1e-12)
        assert jumps.time[k] == pytest.approx(0.5 * (times[c - 1] + times[c]))


def brute_scores(path: np.ndarray) -> np.ndarray:
    """Eq. 11 literally: for every cut, centroids and mean-square distances by direct sums."""
    n = len(path)
    out = []
    for c in range(1, n):
        s1, s2 = path[:c], path[c:]
        m1, m2 = s1.mean(axis=0), s2.mean(axis=0)
        d1_on_s2 = ((s2 - m1) ** 2).sum(axis=1).mean()
        d2_on_s1 = ((s1 - m2) ** 2).sum(axis=1).mean()
        zeta = np.sqrt(c / n * (1 - c / n))
        out.append(zeta * np.sqrt(d1_on_s2 * d2_on_s1))
    return np.array(out)


def test_split_scores_match_brute_force_eq11_on_random_walks():
    rng = np.random.default_rng(3)
    for n, dim in ((2, 2), (7, 3), (200, 3), (333, 2)):
        path = np.cumsum(rng.normal(scale=0.2, size=(n, dim)), axis=0) + 50.0
        np.testing.assert_allclose(split_scores(path), brute_scores(path), rtol=1e-9, atol=1e-12)


def test_recursion_matches_numpy_reference_on_random_walks():
    rng = np.random.default_rng(11)
    x = np.cumsum(rng.normal(scale=0.15, size=(300, 30, 3)), axis=0)
    for min_segment in (1, 3):
        jumps = cage_jumps(x, x, np.arange(300.0), threshold=0.3, min_segment=min_segment)
        assert len(jumps) > 30
        for i in range(30):
            assert jumps.frame[jumps.particle == i].tolist() == reference_jump_frames(x[:, i], 0.3, min_segment)


def test_discrete_conventions():
    # one step between frames 5 and 6 of 12: the cut is c = 6, t = midpoint, vector = step
    x = np.zeros((12, 1, 2))
    x[6:, 0] = [0.0, 2.0]
    jumps = cage_jumps(x, x, np.arange(12) * 0.5, threshold=0.1)
    assert jumps.frame.tolist() == [6]
    assert jumps.time[0] == pytest.approx(2.75)
    np.testing.assert_allclose(jumps.vector[0], [0.0, 2.0])
    # p at the true cut: zeta = 1/2 and <d1^2> = <d2^2> = 4, so p = 2
    assert split_scores(x[:, 0])[5] == pytest.approx(2.0)
    assert len(cage_jumps(x, x, np.arange(12.0), threshold=2.0 + 1e-9)) == 0  # p_max < l_c^2: no jump
    assert len(cage_jumps(x, x, np.arange(12.0), threshold=2.0)) == 1  # p_max >= l_c^2: jump
    # a one-frame excursion at the end is a cage of one frame unless min_segment forbids it
    y = np.zeros((40, 1, 2))
    y[-1, 0] = [3.0, 0.0]
    # cut 39: p = sqrt(39)/40 * 9 = 1.405; with two frames each side the best cut (38) gives 0.69
    assert cage_jumps(y, y, np.arange(40.0), threshold=1.0).frame.tolist() == [39]
    assert len(cage_jumps(y, y, np.arange(40.0), threshold=1.0, min_segment=2)) == 0


# ---------------------------------------------------------------------------------------------
# Overlap and chi4


def sheared_cell(strain: float, dimension: int = 3, L: float = 5.0) -> Cell:
    xy = (strain - np.rint(strain)) * L  # flipped back into [-L/2, L/2] as LAMMPS does
    return Cell((0.3, -0.2, 0.1), L, L, L if dimension == 3 else 1.0, xy, dimension)


@pytest.mark.parametrize("dimension", [2, 3])
@pytest.mark.parametrize("a", [0.2, 0.6, 1.2, 1.8])  # bins (at least a thick) read: 1-2, 2-3 or whole axes
def test_collective_overlap_equals_double_sum(dimension, a):
    rng = np.random.default_rng(dimension)
    cell = sheared_cell(0.37, dimension)
    n = 250
    pos = rng.random((n, dimension)) * 5.0 - np.array([0.0, 0.0, 0.0][:dimension])
    pos[:, 1] -= 0.2
    pos += rng.integers(-3, 4, size=(n, 1)) * cell.matrix()[1, :dimension]  # far images in y
    r0 = rng.normal(scale=0.4, size=(n, dimension))
    rt = r0 + rng.normal(scale=0.4, size=(n, dimension))
    q = collective_overlap(pos, rt, r0, cell, a)
    pad = lambda v: np.pad(v, ((0, 0), (0, 3 - dimension)))  # noqa: E731
    brute = int((brute_distances(pad(pos), pad(pos - (rt - r0)), cell) <= a).sum())
    assert q == brute > (n if a >= 0.6 else 10)
    assert self_overlap(rt, r0, a) == int((np.linalg.norm(rt - r0, axis=1) <= a).sum())


def test_chi4_equals_direct_average_over_origins():
    rng = np.random.default_rng(5)
    n, frames, rate, dt = 120, 14, 0.3, 0.5
    cells = [sheared_cell(rate * dt * k) for k in range(frames)]
    na = np.cumsum(rng.normal(scale=0.15, size=(frames, n, 3)), axis=0)
    pos = rng.random((frames, n, 3)) * 5.0 + na  # any image representation will do
    times = np.arange(frames) * dt
    origins, lags = origins_in(0, frames - 2, 6), log_lags(frames - 1, 5)
    s = susceptibility(pos, na, cells, times, temperature=0.8, a=0.5, origins=origins, lags=lags)
    volume = 125.0
    for k, lag in enumerate(s.lags):
        use = [o for o in origins if o + lag < frames]
        q = np.array(
            [
                (brute_distances(pos[o + lag], pos[o + lag] - (na[o + lag] - na[o]), cells[o + lag]) <= 0.5).sum()
                for o in use
            ],
            dtype=float,
        )
        assert s.chi4[k] == pytest.approx(volume / 0.8 / n**2 * q.var(), rel=1e-12, abs=1e-15)
        assert s.q[k] == pytest.approx(q.mean() / n)
        assert s.times[k] == pytest.approx(lag * dt)
    assert s.t_chi_argmax == s.times[np.argmax(s.chi4)]
    assert s.t_chi == chi4_peak(s.times, s.chi4, 0.7)[0]


def test_chi4_peak_is_the_vertex_of_a_log_normal_peak_between_lags():
    times = np.geomspace(0.1, 100.0, 31)  # ratio 1.26 between lags
    peak = 3.7  # between the lags 3.16 and 3.98
    chi = 5.0 * np.exp(-(np.log(times / peak) ** 2) / (2 * 0.8**2))  # a parabola in (ln t, ln chi4)
    t, lags, how = chi4_peak(times, chi, 0.7)
    assert how == "fit" and t == pytest.approx(peak, rel=1e-10)
    assert np.all(chi[lags] >= 0.7 * chi.max()) and chi[lags.start - 1] < 0.7 * chi.max() <= chi[lags.stop - 1]
    assert chi4_peak(times, chi, 1.0)[::2] == (times[np.argmax(chi)], "argmax")  # fraction 1: the argmax
    rising = np.linspace(1.0, 2.0, 31)  # no peak within the lags: the argmax, the last lag
    assert chi4_peak(times, rising, 0.7)[::2] == (100.0, "argmax")


def test_t_chi_error_is_the_spread_of_the_peak_over_jackknife_samples():
    # a χ4 peak that moves with the block left out: the error is the jackknife of the fitted vertices
    times = np.geomspace(0.1, 100.0, 31)
    shifts = np.linspace(-0.1, 0.1, 10)  # ln of each sample's peak position over 3.7
    curves = np.exp(-((np.log(times)[None, :] - np.log(3.7) - shifts[:, None]) ** 2) / (2 * 0.8**2))
    partials = [curves[:, k] for k in range(len(times))]  # per lag: its value in each of the 10 samples
    fitted = chi4_peak(times, curves.mean(axis=0), 0.7)[1]
    vertices = 3.7 * np.exp(shifts)
    expected = np.sqrt(9 / 10 * ((vertices - vertices.mean()) ** 2).sum())
    assert _peak_error(times, partials, fitted) == pytest.approx(expected, rel=1e-9)


# ---------------------------------------------------------------------------------------------
# MSD and cage size


def test_msd_of_a_random_walk_is_linear():
    rng = np.random.default_rng(2)
    sigma, frames, n = 0.1, 200, 2000
    x = np.cumsum(rng.normal(scale=sigma, size=(frames, n, 3)), axis=0)
    typeid = (np.arange(n) % 2).astype(int)
    m = mean_square_displacement(
        x, np.arange(frames) * 0.5, typeid, ["A", "B"], origins_in(0, frames - 2, 50), log_lags(frames - 1, 12)
    )
    expected = 3 * sigma**2 * m.lags
    short = m.lags <= 50  # many independent origins: tight statistics
    np.testing.assert_allclose(m.msd[short], expected[short], rtol=0.03)
    np.testing.assert_allclose(m.msd_species[:, short], np.vstack([expected[short]] * 2), rtol=0.04)
    np.testing.assert_allclose(m.times, m.lags * 0.5)


def test_cage_relative_displacement():
    cell = Cell((0, 0, 0), 6.0, 6.0, 1.0, 0.0, 2)
    g = np.stack(np.meshgrid(np.arange(6.0), np.arange(6.0)), -1).reshape(-1, 2) + 0.5  # square lattice
    pairs = neighbour_pairs(g, cell, 1.1)
    assert np.bincount(pairs[0]).tolist() == [4] * 36  # 4 neighbours at distance 1, periodic
    uniform = np.tile([0.3, -0.2], (36, 1))
    np.testing.assert_allclose(cage_relative(uniform, pairs), 0.0, atol=1e-15)  # collective drift removed
    single = np.zeros((36, 2))
    single[7] = [1.0, 0.0]
    cr = cage_relative(single, pairs)
    np.testing.assert_allclose(cr[7], [1.0, 0.0])
    for j in pairs[1][pairs[0] == 7]:
        np.testing.assert_allclose(cr[j], [-0.25, 0.0])  # one of its four neighbours moved by 1


def test_cage_size_from_an_analytic_msd():
    t = np.geomspace(1e-2, 1e3, 400)
    msd = 0.08 * (1 - np.exp(-t / 0.05)) + 6 * 1e-3 * t  # plateau 0.08, then diffusion
    c = cage_size(t, msd, 0.5)
    # the independent answer, from the analytic log-slope: its minimum on a fine grid, then the time
    # where it is halfway from that minimum to 1, by bisection
    slope = lambda s: s * (0.08 / 0.05 * np.exp(-s / 0.05) + 6e-3) / (0.08 * (1 - np.exp(-s / 0.05)) + 6e-3 * s)  # noqa
    fine = np.geomspace(0.1, 100, 20001)
    level = 0.5 * (slope(fine).min() + 1.0)
    lo, hi = float(fine[np.argmin(slope(fine))]), 100.0
    for _ in range(100):
        mid = np.sqrt(lo * hi)
        lo, hi = (mid, hi) if slope(mid) < level else (lo, mid)
    assert c.time == pytest.approx(lo, rel=0.02)
    assert c.value == pytest.approx(0.08 * (1 - np.exp(-lo / 0.05)) + 6e-3 * lo, rel=0.02)
    with pytest.raises(UserError, match="no cage plateau"):
        cage_size(t, 1e-3 * t, 0.5)  # pure diffusion
    # a shallow plateau (minimum slope 0.55) still has a crossover, above the plateau
    shallow = cage_size(t, 0.03 * t**0.55 + 1e-2 * t, 0.5)
    assert (
        0.55
        < np.interp(np.log(shallow.time), np.log(t), np.gradient(np.log(0.03 * t**0.55 + 1e-2 * t), np.log(t)))
        < 0.8
    )


# ---------------------------------------------------------------------------------------------
# Structure and flow curve


@pytest.mark.full
@pytest.mark.parametrize("dimension", [2, 3])
def test_pair_distribution_equals_brute_force_histogram(dimension):
    rng = np.random.default_rng(4)
    cell = sheared_cell(0.81, dimension, L=9.0)
    n = 700
    pos = rng.random((n, dimension)) * 9.0
    typeid = rng.integers(0, 2, n)
    g = pair_distribution(pos, [cell], typeid, ["A", "B"], 4.0, 40)
    pad = np.pad(pos, ((0, 0), (0, 3 - dimension)))
    d = brute_distances(pad, pad, cell)
    np.fill_diagonal(d, np.inf)
    edges = np.linspace(0, 4.0, 41)
    shell = 4 / 3 * np.pi * np.diff(edges**3) if dimension == 3 else np.pi * np.diff(edges**2)
    volume = 81.0 * (9.0 if dimension == 3 else 1.0)
    counts = np.histogram(d[d < 4.0], bins=edges)[0]
    np.testing.assert_allclose(g.total, volume * counts / (n * (n - 1) * shell), rtol=1e-12)
    a, b = typeid == 0, typeid == 1
    cab = np.histogram(d[np.ix_(a, b)][d[np.ix_(a, b)] < 4.0], bins=edges)[0]
    np.testing.assert_allclose(g.partial[0, 1], volume * cab / (a.sum() * b.sum() * shell), rtol=1e-12)
    assert abs(g.total[10:].mean() - 1.0) < 0.05  # ideal gas


def test_first_minimum():
    r = np.linspace(0.5, 3.0, 251)
    g = 1 + 1.5 * np.exp(-(((r - 1.0) / 0.1) ** 2)) - 0.4 * np.exp(-(((r - 1.4) / 0.12) ** 2))
    assert first_minimum(r, g) == pytest.approx(1.4, abs=0.02)


def test_flow_curve_selects_thinning_regime_and_fits_exponent():
    rates = np.geomspace(1e-4, 1e-1, 10)
    gamma_c, lam = rates[3], 0.7
    eta = np.where(rates <= gamma_c, 50.0, 50.0 * (rates / gamma_c) ** -lam)
    fc = flow_curve(rates, eta, 0.02 * eta, [f"r{k}" for k in range(10)])
    assert fc.in_fit.tolist() == [False] * 3 + [True] * 7
    assert fc.fit.exponent == pytest.approx(lam, abs=1e-10)
    assert fc.fit.n_points == 7
    noisy = eta * np.exp(np.random.default_rng(0).normal(scale=0.02, size=10))
    fit = flow_curve(rates, noisy, 0.02 * noisy, ["x"] * 10, min_rate=rates[3]).fit
    assert abs(fit.exponent - lam) < 3 * fit.exponent_error < 0.1
    # without error bars the error is ordinary least squares' (the scatter about the line), not the unit
    # error in ln eta that an unweighted fit assumes: the brute-force OLS formula
    from lmpshear.kernels.flowcurve import fit_power_law

    x, y = np.log(rates[3:]), np.log(noisy[3:])
    slope, intercept = np.polyfit(x, y, 1)
    s2 = ((y - slope * x - intercept) ** 2).sum() / (len(x) - 2)
    plain = fit_power_law(rates[3:], noisy[3:], np.zeros(7))
    assert plain.exponent == pytest.approx(-slope, rel=1e-12)
    assert plain.exponent_error == pytest.approx(np.sqrt(s2 / ((x - x.mean()) ** 2).sum()), rel=1e-9)
    assert plain.exponent_error < 0.02  # 2% scatter over three decades (it was 0.36 with the unit error)


def test_a_system_with_two_rates_gets_a_two_point_slope_with_the_points_errors():
    """Two thinning rates: the slope through them exactly, its error propagated from the two relative
    errors, σ_λ = √(σ₁² + σ₂²)/ln(γ̇₂/γ̇₁), and no χ²; two of more rates never make a fit."""
    rates, eta = np.array([0.005, 0.01]), np.array([98.0, 58.9])
    err = np.array([0.02, 0.004]) * eta
    fit = flow_curve(rates, eta, err, ["a", "b"]).fit
    assert fit.exponent == pytest.approx(np.log(98.0 / 58.9) / np.log(2.0), rel=1e-12)
    assert fit.exponent_error == pytest.approx(np.hypot(0.02, 0.004) / np.log(2.0), rel=1e-9)
    assert fit.n_points == 2 and np.isnan(fit.reduced_chi2)
    assert np.isnan(flow_curve(rates, eta, 0 * eta, ["a", "b"]).fit.exponent_error)  # nothing to propagate
    three = np.array([0.001, 0.005, 0.01])  # a Newtonian plateau below 0.005 leaves two thinning rates of three
    assert flow_curve(three, np.array([98.0, 98.0, 58.9]), np.ones(3), ["a", "b", "c"]).fit is None


def test_viscosity_halves_say_whether_the_window_is_steady():
    """A stationary stress: the halves agree within a few σ. A stress still rising linearly through
    the window: each half's η is the line's mean over that half, and the drift is 5σ whatever the
    slope (the ramp spreads each half's 5 block means too: spacing h, SEM h √(2.5/5), difference 5h)."""
    import pandas as pd

    from lmpshear.kernels.viscosity import viscosity

    rng = np.random.default_rng(5)
    strain = np.linspace(0.0, 5.0, 8001)
    steady = pd.DataFrame({"strain": strain, "pxy": -0.59 + 0.01 * rng.normal(size=8001)})
    steady["pxy_virial"] = steady["pxy"]
    v = viscosity(steady, 0.01, 1.0)
    assert abs(v.drift) < 4 and v.eta_halves == pytest.approx((59.0, 59.0), rel=2e-3)
    ramp = steady.assign(pxy_virial=-(0.5 + 0.02 * strain) + 1e-4 * rng.normal(size=8001))
    r = viscosity(ramp, 0.01, 1.0)
    assert r.eta_halves == pytest.approx((100 * (0.5 + 0.02 * 2.0), 100 * (0.5 + 0.02 * 4.0)), rel=1e-3)
    assert r.drift == pytest.approx(5.0, rel=1e-2)
    with pytest.raises(UserError, match="at least 4 blocks"):
        viscosity(steady, 0.01, 1.0, n_blocks=3)


def test_more_jumps_than_the_per_particle_buffer():
    # 100 cages of 4 frames: more jumps than the 64-slot buffer of the one-pass kernel holds
    rng = np.random.default_rng(9)
    v = rng.normal(size=(100, 3))
    steps = np.repeat((v / np.linalg.norm(v, axis=1)[:, None]).cumsum(axis=0), 4, axis=0)  # unit jumps
    x = np.stack([steps, np.zeros_like(steps)], axis=1) + rng.normal(scale=0.01, size=(400, 2, 3))
    jumps = cage_jumps(x, x, np.arange(400.0), threshold=0.05)
    expected = list(range(4, 400, 4))
    assert jumps.frame[jumps.particle == 0].tolist() == expected == reference_jump_frames(x[:, 0], 0.05)
    assert np.count_nonzero(jumps.particle == 1) == 0
    k = np.nonzero(jumps.particle == 0)[0][10]
    np.testing.assert_allclose(jumps.vector[k], x[44:48, 0].mean(axis=0) - x[40:44, 0].mean(axis=0), atol=1e-12)


def test_grid_table_is_built_once_per_shape():
    cell = sheared_cell(0.37, 3)
    grids = [CellGrid.for_cell(cell, c) for c in (0.6, 0.61, 1.1)]
    assert tuple(grids[0].n) == tuple(grids[1].n) != tuple(grids[2].n)
    assert grids[0].table() is grids[1].table()  # cached: the same read-only array
    assert not grids[0].table().flags.writeable
    for g in grids:
        assert np.array_equal(g.table(), bin_neighbours(g.n, g.divisions))
