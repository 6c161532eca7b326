"""α(r), g_cj(r) and ξ_α on synthetic events (lmpshear.kernels.facilitation)."""

import numpy as np
import pytest

from lmpshear.cell import Cell
from lmpshear.kernels import facilitation as fc


def planted(n_sources, density, xi, amplitude, dim=2, seed=0, length=200.0):
    """Around each source, targets of density ρ(1 + A cos 4θ) within ξ and ρ beyond (out to 2ξ), in a
    periodic cell sheared by a tilt (the geometry must not care). Sparse sources: another source's
    cloud covers a fraction c = n π (2ξ)² / L² of the cell, a background that dilutes A to A/(1 + c)."""
    rng = np.random.default_rng(seed)
    cell = Cell((0.0, 0.0, 0.0), length, length, length if dim == 3 else 1.0, 0.37 * length, dim)
    sources = rng.uniform(0, length, size=(n_sources, dim))
    targets = []
    for s in sources:
        m = rng.poisson(density * (1 + amplitude) * np.pi * (2 * xi) ** 2)
        theta = rng.uniform(0, 2 * np.pi, m)
        radius = 2 * xi * np.sqrt(rng.uniform(0, 1, m))
        weight = np.where(radius < xi, 1 + amplitude * np.cos(4 * theta), 1.0) / (1 + amplitude)
        keep = rng.uniform(0, 1, m) < weight
        targets.append(s + np.column_stack([radius[keep] * np.cos(theta[keep]), radius[keep] * np.sin(theta[keep])]))
    cover = n_sources * np.pi * (2 * xi) ** 2 / length**2
    return sources, np.concatenate(targets), cell, amplitude / (1 + cover)


def test_a_planted_cos4_anisotropy_gives_alpha_inside_zero_outside_and_its_range():
    xi = 6.0
    sources, targets, cell, diluted = planted(20, 20.0, xi, 0.8)
    edges = np.arange(0.5, 11.51, 0.5)
    counts = fc.shell_orientation_counts(sources, targets, cell, edges, bins=16)
    a = fc.anisotropy(counts, edges, len(sources), len(targets) / cell.volume, 2)
    inside, outside = a.r < xi - 0.5, a.r > xi + 0.5
    # ⟨(A' cos 4θ)²⟩ = A'²/2 inside (A' the diluted amplitude), 0 outside; a sector of width w
    # averages cos 4θ over a phase 4w, which scales its amplitude by sinc(2w)
    w = 2 * np.pi / 16
    expected = (diluted * np.sin(2 * w) / (2 * w)) ** 2 / 2
    assert np.allclose(a.alpha[inside], expected, rtol=0.3)  # 20 sources: shells scatter
    assert abs(a.alpha[inside].mean() - expected) < 0.05 * expected
    assert np.abs(a.alpha[outside]).max() < 0.05 * expected
    assert abs(fc.breakpoint(a.r, a.alpha, a.error) - xi) <= 0.5  # within a shell


def test_isotropic_events_give_zero_after_the_finite_count_correction():
    rng = np.random.default_rng(3)
    cell = Cell((0.0, 0.0, 0.0), 40.0, 40.0, 40.0, 11.0, 3)
    sources, targets = rng.uniform(0, 40, (200, 3)), rng.uniform(0, 40, (20000, 3))
    edges = np.linspace(1, 15, 15)
    counts = fc.shell_orientation_counts(sources, targets, cell, edges, bins=18)
    a = fc.anisotropy(counts, edges, len(sources), len(targets) / cell.volume, 3)
    bias = (1 - 1 / 18) * 18 / a.pairs
    # raw α is the finite-count bias alone (it falls like 1/r² here); corrected, noise around zero
    # a shell's α_raw scatters by about √(2/(K−1)) = 0.34 of the bias: test the mean of 14 shells
    assert abs((a.alpha_raw / bias).mean() - 1) < 0.3
    assert abs((a.alpha / bias).mean()) < 0.3
    assert np.allclose(a.g, 1.0, rtol=0.05)  # uniform targets: g = 1
    # the predicted spread of α under isotropy is what it shows, and no range is read from noise
    assert 0.5 < np.std(a.alpha / a.error) < 1.6
    assert np.isnan(fc.breakpoint(a.r, a.alpha, a.error))
    lone = a.alpha.copy()
    lone[5] = 10 * a.error[5]  # one shell far above the noise is not a range
    assert np.isnan(fc.breakpoint(a.r, lone, a.error))
    far = a.alpha.copy()
    far[-3:] = 10 * a.error[-3:]  # nor is anisotropy far out with none inside
    assert np.isnan(fc.breakpoint(a.r, far, a.error))
    # the stage's line says why there is no xi_alpha, and says nothing when there is one
    from lmpshear.stages.stz import _describe_facilitation

    line = {"clusters": 76, "sources": 346, "summary": {"xi_c": 3.04}}
    assert "no range within the noise" in _describe_facilitation(line | {"xi_alpha": float("nan")})
    assert _describe_facilitation(line | {"xi_alpha": 2.5}).endswith("xi_alpha = 2.5 (xi_c = 3.04)")


def test_orientation_bins_have_equal_solid_angle():
    rng = np.random.default_rng(1)
    d = rng.normal(size=(400000, 3))
    share = np.bincount(fc.orientation_bins(d, 18), minlength=18) / len(d)
    assert np.allclose(share, 1 / 18, rtol=0.05)
    with pytest.raises(ValueError):
        fc.orientation_bins(d, 10)
    flat = np.bincount(fc.orientation_bins(rng.normal(size=(200000, 2)), 12), minlength=12) / 200000
    assert np.allclose(flat, 1 / 12, rtol=0.05)


def test_pairs_across_the_sliding_boundary_are_found():
    cell = Cell((0.0, 0.0, 0.0), 10.0, 10.0, 1.0, 3.0, 2)
    source = np.array([[1.0, 9.8]])
    target = np.array([[8.0, 0.3]])  # (1, 10.3) − b with b = (xy, ly) = (3, 10), wrapped along x
    counts = fc.shell_orientation_counts(source, target, cell, np.array([0.0, 1.0]), bins=4)
    assert counts.sum() == 1 and counts[0, 1] == 1  # straight up (θ = 90°): the second quarter


def test_planted_cores_and_jump_blobs_match_exactly_across_the_boundary_and_the_null_model_is_chance():
    from lmpshear.kernels import matching

    rng = np.random.default_rng(11)
    rate, t0, t1 = 0.05, 10.0, 14.0
    cell = Cell((0.0, 0.0, 0.0), 30.0, 30.0, 30.0, 4.0, 3)  # the cell at t0
    lattice = np.stack(np.meshgrid([5.0, 15.0, 25.0], [7.5, 22.5], [7.5, 22.5], indexing="ij"), -1).reshape(-1, 3)
    cores = lattice + rng.uniform(-2, 2, lattice.shape)  # 12 cores, well apart
    cores[0] = [15.0, 29.6, 15.0]  # a spot split by the sliding boundary
    jumps, times = [], []
    for c in cores:  # a blob of jumps about each core, each at its own time, written in the lab frame
        k = 8
        t = rng.uniform(t0, t1, k)
        p = c + rng.normal(scale=0.4, size=(k, 3))
        p[:, 0] += rate * (t - t0) * (p[:, 1] - cell.lo[1])  # where the flow has taken it by then
        jumps.append(p)
        times.append(t)
    jumps, times = np.concatenate(jumps), np.concatenate(times)
    carried = cell.carry(jumps, times, rate, t0)
    centres = np.array(matching.spots(carried, cell, link=1.5))
    assert len(centres) == len(cores)
    assert np.all(matching.nearest(centres, cores, cell) < 0.5)
    candidates = rng.uniform(0, 30, (5000, 3))
    m = matching.match(cores, centres, candidates, cell, radii=np.array([1.0, 3.0]), trials=300)
    assert np.all(m.spots_matched == 1.0) and np.all(m.cores_matched == 1.0)
    # chance that one of 12 random cores falls within r of a spot: 1 − (1 − 4πr³/3V)^12
    expected = 1 - (1 - 4 * np.pi * m.radius**3 / 3 / cell.volume) ** 12
    assert np.allclose(m.chance, expected, atol=3 * m.chance_sd / np.sqrt(300) + 0.01)
    # half the cores moved away: half the spots unmatched
    moved = cores.copy()
    moved[::2] += 10.0
    half = matching.match(moved, centres, candidates, cell, radii=np.array([1.0]), trials=10)
    assert half.spots_matched[0] == 0.5


def test_a_lone_jump_is_not_a_spot():
    from lmpshear.kernels import matching

    cell = Cell((0.0, 0.0, 0.0), 20.0, 20.0, 20.0, 0.0, 3)
    jumps = np.array([[1.0, 1.0, 1.0], [1.5, 1.0, 1.0], [10.0, 10.0, 10.0]])
    assert len(matching.spots(jumps, cell, link=1.0)) == 2
    (centre,) = matching.spots(jumps, cell, link=1.0, min_jumps=2)
    assert np.allclose(centre, [1.25, 1.0, 1.0])
