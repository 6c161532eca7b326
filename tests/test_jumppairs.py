"""The cage jumps' pair correlation g_jj(r) (lmpshear.kernels.jumppairs): Poisson jumps, planted
Gaussian blobs (against the analytic g, through the sliding boundary) and the brute-force count."""

import numpy as np
import pytest

from lmpshear.cell import Cell
from lmpshear.kernels import jumppairs as jp


def _cell(L=20.0, xy=0.37 * 20.0):
    return Cell((0.0, 0.0, 0.0), L, L, L, xy, 3)


def _uniform(rng, cell, n):
    return np.asarray(cell.lo) + rng.random((n, 3)) @ cell.matrix()


def test_counts_equal_a_brute_force_minimum_image_search():
    rng = np.random.default_rng(0)
    cell = _cell(8.0, 3.5)
    r = _uniform(rng, cell, 150)
    particles = rng.integers(0, 120, 150)
    counts, pairs = jp.jump_pair_counts(r, particles, cell, 3.5, 0.5)
    images = np.array(
        [
            a * cell.matrix()[0] + b * cell.matrix()[1] + c * cell.matrix()[2]
            for a in (-2, -1, 0, 1, 2)
            for b in (-1, 0, 1)
            for c in (-1, 0, 1)
        ]
    )
    brute = np.zeros(7)
    same = 0
    for i in range(150):
        for j in range(i + 1, 150):
            if particles[i] == particles[j]:
                same += 1
                continue
            d = np.linalg.norm(r[j] - r[i] + images, axis=1).min()
            if d < 3.5:
                brute[int(d / 0.5)] += 1
    assert counts.tolist() == brute.tolist()
    assert pairs == 150 * 149 / 2 - same


def test_poisson_jumps_have_g_one():
    rng = np.random.default_rng(1)
    cell = _cell()
    windows = []
    for _ in range(8):
        r = _uniform(rng, cell, 3000)
        windows.append((r, np.arange(3000), cell, _uniform(rng, cell, 3000)))
    res = jp.jump_correlation(windows, 8.0, 0.5, 1.0)
    z = (res.g - 1) / res.error
    assert np.all(np.isfinite(z[1:])) and np.abs(z[1:]).max() < 4.5
    assert abs(np.mean(res.g[2:]) - 1) < 0.01


def _blobs(rng, cell, centres, sigma, per_blob, background):
    points = [c + rng.normal(0.0, sigma, (per_blob, 3)) for c in centres]
    points.append(_uniform(rng, cell, background))
    return cell.wrap(np.concatenate(points))[0]


def _analytic_g(r, sigma, blobs, per_blob, background, volume):
    n = blobs * per_blob + background
    same = blobs * per_blob * (per_blob - 1) / 2
    pairs = n * (n - 1) / 2
    density = (4 * np.pi * sigma**2) ** -1.5 * np.exp(-(r**2) / (4 * sigma**2))  # separations N(0, 2σ²)
    return 1 + same / pairs * (volume * density - 1)


def test_a_clear_excess_at_the_first_fitted_distance_is_fitted_and_noise_is_not():
    # as BD at γ̇τ₀ = 10: a 6 % excess at r = 1.12 (6 standard errors) decaying over 0.45; extrapolated
    # to r = 0 its amplitude would be 0.06 e^{1.12/0.45} = 0.72 with an error larger than half of it
    r = np.arange(0.125, 10.0, 0.25)
    rng = np.random.default_rng(4)
    error = np.full(len(r), 0.01)
    ratio = 1 + 0.06 * np.exp(-(r - 1.125) / 0.45) + rng.normal(0.0, 0.01, len(r))
    xi, xi_error, amplitude, chi2 = jp._fit_decay(r, ratio, error, 1.0)
    assert abs(xi - 0.45) < 3 * xi_error and xi_error < 0.3 and 0.5 < chi2 < 2.0
    assert amplitude == pytest.approx(0.72, rel=0.5)
    noise = 1 + rng.normal(0.0, 0.01, len(r))  # no excess: no length
    assert np.isnan(jp._fit_decay(r, noise, error, 1.0)[0])


@pytest.mark.parametrize("sigma", [1.0, 1.5])
def test_planted_blobs_give_their_analytic_g_and_a_length_that_follows_their_size(sigma):
    """Gaussian blobs of width σ, one per window centred on the sliding boundary (y = 0, where the periodic
    image is shifted by the tilt): g_jj(r) − 1 = (same-blob pairs / pairs)(V p(r) − 1), p the N(0, 2σ²)
    density. (One boundary blob per window: several in one plane would correlate with each other.)"""
    rng = np.random.default_rng(2)
    cell = _cell()
    L = cell.lx
    windows = []
    for _ in range(10):
        centres = [np.array([rng.random() * L, 0.0, rng.random() * L])]  # on the sliding boundary
        centres += [np.asarray(cell.lo) + rng.random(3) @ cell.matrix() for _ in range(29)]
        r = _blobs(rng, cell, centres, sigma, 20, 1000)
        windows.append((r, np.arange(len(r)), cell, _uniform(rng, cell, len(r))))
    res = jp.jump_correlation(windows, 8.0, 0.25, 0.5)
    expected = _analytic_g(res.r, sigma, 30, 20, 1000, cell.volume)
    # the shell average of a curved g differs from its value at the centre: compare the shell means
    edges = np.arange(len(res.r) + 1) * 0.25
    fine = np.linspace(0, 8.0, 3201)[:-1] + 0.00125
    weights = fine**2 * _analytic_g(fine, sigma, 30, 20, 1000, cell.volume)
    shell_mean = np.array(
        [
            weights[(fine >= a) & (fine < b)].sum() / (fine[(fine >= a) & (fine < b)] ** 2).sum()
            for a, b in zip(edges[:-1], edges[1:])
        ]
    )
    ok = res.error > 0
    chi2 = (((res.g - shell_mean) / res.error)[ok] ** 2).mean()
    assert chi2 < 2.0, chi2
    at_sigma = int(sigma / 0.25)
    assert res.g[at_sigma] - 1 > 10 * res.error[at_sigma] and expected[0] > expected[-1]  # a clear signal


def test_the_fitted_length_follows_the_blob_size():
    """The same blobs at twice the size, fitted over twice the range, give twice ξ_jj."""
    rng = np.random.default_rng(3)
    cell = _cell(30.0, 0.37 * 30.0)
    xis = []
    for sigma in (1.0, 2.0):
        windows = []
        for _ in range(6):
            centres = [np.asarray(cell.lo) + rng.random(3) @ cell.matrix() for _ in range(40)]
            r = _blobs(rng, cell, centres, sigma, 30, 800)
            windows.append((r, np.arange(len(r)), cell, _uniform(rng, cell, len(r))))
        xis.append(jp.jump_correlation(windows, 7.0 * sigma, 0.25 * sigma, 0.5 * sigma).xi)
    assert xis[1] / xis[0] == pytest.approx(2.0, rel=0.15)


@pytest.mark.full
def test_the_gjj_stage_on_a_real_run(tiny_run, tmp_path):
    """The stage's product on the real tiny KA run: g_jj at W = t_χ and at the clusters' window, pooled from
    the windows' jumps, equal to the kernel's on the same jumps."""
    import shutil

    from conftest import cli

    from lmpshear.kernels.cagejumps import carried_jumps
    from lmpshear.rundir import RunDir
    from lmpshear.stages import Context

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cli(
        "analyze",
        run,
        "--no-figures",
        "--only",
        "structure",
        "--only",
        "msd",
        "--only",
        "overlap",
        "--only",
        "cagejumps",
        "--only",
        "clusters",
        "--only",
        "gjj",
        check=True,
    )
    rd = RunDir(run)
    result = rd.result("gjj")
    assert set(result["at"]) == {"t_chi", "cluster_window"}
    at = result["at"]["t_chi"]
    assert at["window"] == rd.result("overlap")["t_chi"] and at["windows"] >= 2
    ctx = Context(rd, rd.info())
    w = ctx.steady
    jumps = ctx.jumps()
    W = at["window"]
    t_start = w.times[0]
    k = int(np.argmin(np.abs(w.times - (t_start + W))))
    carried, rows = carried_jumps(jumps, t_start, t_start + W, w.cells[k], rd.info().rate, w.times[k])
    counts, pairs = jp.jump_pair_counts(carried, rows.particle.to_numpy(), w.cells[k], result["r_max"], 0.25)
    assert pairs > 0 and counts.sum() > 0
    g = np.asarray(at["g"], dtype=float)
    assert np.isfinite(g[counts > 0]).all() and len(g) == len(counts)
    ctx.close()
