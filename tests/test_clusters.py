"""Dynamic regions and convective clusters on constructed inputs with known answers."""

import numpy as np
import pytest

from lmpshear.cell import Cell
from lmpshear.kernels.sieve import (
    background_threshold,
    demarcate,
    labels_at,
    merge_small,
    periodic_label,
    region_lookup,
    watershed_basins,
)
from lmpshear.kernels.traceback import (
    affine_fit,
    atomic_shear_stress,
    atomic_volumes,
    extensional_share,
    shear_strain,
    yield_times,
)
from lmpshear.spec import Analysis
from lmpshear.stages.clusters import convective_options

#: the coarse sieve's options at the [analysis] defaults (block counts: no kernel)
SIEVE = {
    k: v
    for k, v in convective_options(Analysis()).items()
    if k in ("tolerance", "stz_diameter", "min_stz", "prune_fine")
} | {"kernel_length": None}


def test_background_threshold_iteration():
    values = np.array([1.0] * 9 + [1.05, 100.0])
    # 100 -> mean below = 1.005 (far) -> mean below 1.005 = 1.0, within 10 %: stop
    assert background_threshold(values, 0.1) == pytest.approx(1.0)
    # a uniform background with a few hot blocks: the background level
    rho = np.full((10, 10, 10), 2.0)
    rho[:2, :2, :2] = 40.0
    assert background_threshold(rho, 0.1) == pytest.approx(2.0)


def test_watershed_splits_touching_regions_at_the_valley():
    rho = np.array([1, 3, 5, 3, 2, 4, 6, 4, 1, 0], dtype=float)
    labels, n = watershed_basins(rho, (rho >= 2) & (rho > 0))
    assert n == 2
    assert list(labels) == [0, 1, 1, 1, 2, 2, 2, 2, 0, 0]  # the valley block (2) ascends to the 6
    # periodic: a peak at the end and the start of the axis is one region
    rho = np.array([5, 3, 0, 0, 0, 0, 3, 5], dtype=float)
    labels, n = watershed_basins(rho, rho > 0)
    assert n == 1 and labels[0] == labels[-1] == labels[1] == labels[6]


def test_periodic_labels_join_across_faces_and_edges():
    mask = np.zeros((6, 6, 6), bool)
    mask[0, 2, 2] = mask[5, 2, 2] = True  # across the x face
    mask[3, 0, 0] = mask[2, 5, 5] = True  # across a y-z edge, diagonally
    mask[3, 3, 3] = True  # alone
    labels, n = periodic_label(mask)
    assert n == 3
    assert labels[0, 2, 2] == labels[5, 2, 2] and labels[3, 0, 0] == labels[2, 5, 5]
    assert len({labels[0, 2, 2], labels[3, 0, 0], labels[3, 3, 3]}) == 3


def _merge_small_by_rescanning(labels, min_blocks):
    """merge_small's rule, the slow obvious way: after every merge, rescan the grid for the smallest
    basin (ties: lower label) and count its contacts afresh."""
    labels = labels.copy()
    axes = tuple(range(labels.ndim))
    shifts = [
        s
        for s in np.stack(np.meshgrid(*[[-1, 0, 1]] * labels.ndim, indexing="ij"), -1).reshape(-1, labels.ndim)
        if s.any()
    ]
    while True:
        sizes = np.bincount(labels.ravel())
        for k in (k for k in np.argsort(sizes, kind="stable") if k > 0 and 0 < sizes[k] < min_blocks):
            mine = labels == k
            contact = np.zeros(len(sizes), dtype=np.int64)
            for shift in shifts:
                other = np.roll(labels, tuple(shift), axis=axes)[mine]
                contact += np.bincount(other[(other > 0) & (other != k)], minlength=len(sizes))
            if contact.any():
                labels[mine] = int(np.argmax(contact))
                break
        else:
            break
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape)


def test_merging_small_basins_matches_rescanning_after_every_merge():
    rng = np.random.default_rng(7)
    merged_some = 0
    for shape, threshold in (((40, 40), 0.5), ((60, 60), 0.8), ((12, 12, 12), 0.6), ((16, 16, 16), 0.9)):
        rho = ndimage_smooth(rng.random(shape))
        basins, n = watershed_basins(rho, rho >= np.quantile(rho, threshold))
        for min_blocks in (2, 5, 12):
            fast, m = merge_small(basins, min_blocks)
            assert np.array_equal(fast, _merge_small_by_rescanning(basins, min_blocks)), (shape, min_blocks)
            assert m == fast.max() and np.array_equal(fast > 0, basins > 0)  # merging moves no block in or out
            merged_some += m < n
    assert merged_some >= 6  # the cases did merge basins (some, several times over)
    # by hand: the 1-block basin 2 touches basin 1 twice and basin 3 three times: it goes into 3
    labels = np.zeros((6, 6), dtype=int)
    labels[1, 1:3] = 1
    labels[2, 2] = 2
    labels[1, 3] = labels[2, 3] = labels[2, 4] = labels[3, 3] = 3
    merged, m = merge_small(labels, 2)
    assert m == 2 and merged[2, 2] == merged[2, 3] != merged[1, 1]
    labels[1, 3] = 0  # two contacts each: the lower label
    merged, m = merge_small(labels, 2)
    assert m == 2 and merged[2, 2] == merged[1, 1] != merged[2, 3]


def ndimage_smooth(field):
    from scipy import ndimage

    return ndimage.uniform_filter(field, size=3, mode="wrap")


def planted_events(rng, cell, centres, radius, per_blob, background, rate, t_ref, window):
    """Jumps inside balls (at t_ref) plus a uniform background, each at a random time of the window,
    moved back along the flow to where it happened (lab frame, wrapped in its own cell)."""
    pts = []
    for c in centres:
        v = rng.normal(size=(per_blob, 3))
        v *= (radius * rng.random(per_blob) ** (1 / 3) / np.linalg.norm(v, axis=1))[:, None]
        pts.append(c + v)
    s = rng.random((background, 3))
    pts.append(np.asarray(cell.lo) + s @ cell.matrix())
    r = np.concatenate(pts)
    t = t_ref - window * rng.random(len(r))
    r[:, 0] -= rate * (t_ref - t) * (r[:, 1] - cell.lo[1])
    return r, t


def test_sieves_recover_planted_clusters_including_one_across_the_sliding_boundary():
    rng = np.random.default_rng(3)
    L, rate, t_ref, window = 30.0, 0.1, 10.0, 2.0
    cell = Cell((0.0, 0.0, 0.0), L, L, L, 0.3 * L, 3)  # sheared: tilt 0.3 L
    radius = 4.0
    centres = [np.array([8.0, 12.0, 15.0]), np.array([20.0, 29.0, 6.0])]  # the second crosses y = L
    r, t = planted_events(rng, cell, centres, radius, 2000, 1000, rate, t_ref, window)
    events = cell.carry(r, t, rate, t_ref)
    # ρ_th given (20 jumps per block: background 1, inside a ball ~200): the sieves alone are under test.
    # The undersize sieve's spheres (radius √2 d'/2) widen a region by up to that radius at a low ρ_th.
    regions, fields = demarcate(events, cell, coarse=10, fine=30, threshold=20.0, **SIEVE)
    assert len(regions) == 2
    planted = 4 / 3 * np.pi * radius**3
    for c in centres:
        dist = [np.linalg.norm(cell.minimum_image((reg.centre - c)[None])[0]) for reg in regions]
        k = int(np.argmin(dist))
        assert dist[k] < 0.7
        assert regions[k].volume == pytest.approx(planted, rel=0.2)
        assert regions[k].radius == pytest.approx(radius, rel=0.08)
    # planted jumps inside 0.8 radius are labelled (but where a coarse block at the ball's edge fell below
    # ρ_th, which the undersize sieve cannot undo); background far away is not
    lookup = region_lookup(regions, 3, fields["fine"])
    lab = labels_at(r, t, rate, t_ref, cell, lookup)
    depth = np.min([np.linalg.norm(cell.minimum_image(events - c), axis=1) for c in centres], axis=0)
    assert (lab[:4000][depth[:4000] < 0.8 * radius] > 0).mean() > 0.97
    assert (lab[depth > 1.5 * radius] > 0).mean() < 0.01


def test_traceback_under_affine_flow_keeps_every_member():
    rng = np.random.default_rng(5)
    L, rate, t_ref = 20.0, 0.5, 3.0
    lx_tilt = lambda t: ((rate * t * L + 0.5 * L) % L) - 0.5 * L  # noqa: E731 (tilt with flips)
    cell_ref = Cell((0.0, 0.0, 0.0), L, L, L, lx_tilt(t_ref), 3)
    regions, fields = demarcate(
        *planted_events(rng, cell_ref, [np.array([10.0, 1.0, 10.0])], 4.0, 3000, 300, 0.0, t_ref, 0.0)[:1],
        cell_ref,
        coarse=10,
        fine=30,
        threshold=5.0,
        **SIEVE,
    )
    lookup = region_lookup(regions, 3, fields["fine"])
    particles = np.asarray(cell_ref.lo) + rng.random((5000, 3)) @ cell_ref.matrix()
    at_ref = labels_at(particles, np.full(5000, t_ref), rate, t_ref, cell_ref, lookup)
    assert 0 < (at_ref > 0).sum() < 5000
    for t in (0.2, 1.0, 2.5):  # the same particles moved back by the flow (wrapped in their own cell)
        back = particles.copy()
        back[:, 0] -= rate * (t_ref - t) * back[:, 1]
        back = Cell((0.0, 0.0, 0.0), L, L, L, lx_tilt(t), 3).wrap(back)[0]
        assert np.array_equal(labels_at(back, np.full(5000, t), rate, t_ref, cell_ref, lookup), at_ref)


def test_falk_langer_recovers_an_affine_shear_across_the_boundary():
    rng = np.random.default_rng(1)
    L = 10.0
    cell = Cell((0.0, 0.0, 0.0), L, L, L, 2.0, 3)
    core = rng.normal(size=(80, 3)) * 0.8 + [5.0, 9.5, 5.0]  # straddles y = L (and stays < L/2 across)
    wrapped = cell.wrap(core)[0]
    assert (wrapped[:, 1] < 2).sum() > 10  # members on both sides of the sliding boundary
    gamma = 0.037

    def flow(r, strain):  # what a stored unwrapped path does: each particle streams with its own y
        return r + np.outer(np.ones(len(r)), [0.3, 0.0, 0.1]) * strain / gamma + np.outer(strain * r[:, 1], [1, 0, 0])

    members = np.arange(80)
    assert shear_strain(wrapped, flow(wrapped, gamma), members, cell, gamma, 3) == pytest.approx(gamma, abs=1e-10)
    # without the slide of the upper image the members across the boundary would look sheared apart
    assert abs(shear_strain(wrapped, flow(wrapped, gamma), members, cell, 0.0, 3) - gamma) > 0.05
    moved = core.copy()
    moved[:, 0] += gamma * core[:, 1]
    np.testing.assert_allclose(affine_fit(core, moved, 3), [[1, gamma, 0], [0, 1, 0], [0, 0, 1]], atol=1e-12)
    # increments over two steps add up to the cumulative strain under an affine flow; the second
    # starts in the cell sheared by the first
    half = flow(wrapped, 0.5 * gamma)
    sheared = Cell((0.0, 0.0, 0.0), L, L, L, 2.0 + 0.5 * gamma * L, 3)
    inc = [
        shear_strain(wrapped, half, members, cell, 0.5 * gamma, 3),
        shear_strain(half, flow(wrapped, gamma), members, sheared, 0.5 * gamma, 3),
    ]
    assert inc[0] == pytest.approx(0.5 * gamma, abs=1e-10) and sum(inc) == pytest.approx(gamma, abs=1e-10)


def test_the_compiled_shear_strain_is_the_affine_fit_of_the_carried_separations():
    from lmpshear.kernels.traceback import carried_separations

    rng = np.random.default_rng(4)
    for dim in (2, 3):
        L = 12.0
        cell = Cell((0.0, 0.0, 0.0), L, L, L if dim == 3 else 1.0, -3.1, dim)
        for _ in range(10):
            before = rng.uniform(-2 * L, 2 * L, size=(300, dim))  # unwrapped: images in every direction
            after = before + rng.normal(scale=0.3, size=before.shape)
            members = rng.choice(300, size=int(rng.integers(dim + 1, 120)), replace=False)
            strain = rng.uniform(-0.05, 0.05)
            b, a = carried_separations(before, after, members, cell, strain)
            expected = affine_fit(b, a, dim)[0, 1]
            assert shear_strain(before, after, members, cell, strain, dim) == pytest.approx(
                expected, rel=1e-10, abs=1e-12
            )
        assert np.isnan(shear_strain(before, after, members[:dim], cell, 0.0, dim))  # too few to fit


def test_yield_time_detector_on_noisy_curves_with_known_breakpoints():
    rng = np.random.default_rng(2)
    t = np.linspace(0.0, 10.0, 201)
    truth = (2.0, 4.0, 6.0, 7.0)
    curve = np.interp(t, [0.0, 2.0, 4.0, 6.0, 7.0, 10.0], [0.0, 0.0, 2.0, 2.5, 0.0, 0.0])
    for _ in range(5):
        yt = yield_times(t, curve + rng.normal(scale=0.05, size=len(t)), smoothing=5)
        found = (yt.t0, yt.t1, yt.t2, yt.t3)
        assert np.allclose(found, truth, atol=0.35), found
        assert yt.stress_at_yield == pytest.approx(2.5, abs=0.1)
    assert yield_times(t, rng.normal(scale=0.05, size=len(t)) - t) is None  # monotone: no rise


def test_the_two_segment_break_is_the_best_least_squares_fit_of_every_breakpoint():
    from lmpshear.kernels.traceback import _jumps_per_frame, _two_segment_break

    def by_lstsq(t, y):  # one least-squares fit per candidate breakpoint, first on ties
        errors = []
        for k in range(2, len(t) - 2):
            A = np.stack([np.ones_like(t), t, np.maximum(t - t[k], 0.0)], axis=1)
            coef, *_ = np.linalg.lstsq(A, y, rcond=None)
            errors.append(((A @ coef - y) ** 2).sum())
        return 2 + int(np.argmin(errors))

    rng = np.random.default_rng(11)
    for n in (5, 6, 12, 40, 266):
        for _ in range(20):
            t = 3.0 + np.cumsum(rng.uniform(0.5, 1.5, n)) * 0.01  # uneven frames, far from t = 0
            y = np.where(t > t[n // 3], (t - t[n // 3]) * rng.normal(scale=50), 0.0) + rng.normal(scale=0.1, size=n)
            assert _two_segment_break(t, y) == by_lstsq(t, y), n
    t = np.linspace(0, 1, 50)
    assert _two_segment_break(t, np.maximum(t - t[31], 0)) == 31  # an exact kink
    # jumps and their extensional share per frame, frames outside the span ignored
    frames = np.arange(10, 14)
    jf = np.array([10, 10, 12, 9, 14, 12, 12])
    vec = np.array([[1, 1], [1, -1], [-1, -1], [1, 1], [1, 1], [2, 3], [1, -3]], dtype=float)
    out = _jumps_per_frame(jf, vec, frames)
    assert out["n_cj"] == [2, 0, 3, 0]
    assert out["p_ext"][0] == 0.5 and np.isnan(out["p_ext"][1]) and out["p_ext"][2] == pytest.approx(2 / 3)


def test_atomic_volumes_and_stress_sum():
    typeid = np.array([0] * 80 + [1] * 20)
    omega = atomic_volumes(typeid, np.array([1.0, 2 / 3]), 250.0, 3)
    assert omega.sum() == pytest.approx(250.0)
    assert omega[0] / omega[-1] == pytest.approx(1.5**3)
    virial = np.random.default_rng(0).normal(size=100)
    sigma = atomic_shear_stress(virial, omega)
    assert (sigma * omega).sum() / 250.0 == pytest.approx(virial.sum() / 250.0, rel=1e-14)
    assert extensional_share(np.array([[1.0, 1.0], [-1.0, -2.0], [1.0, -1.0], [0.5, 0.1]])) == 0.75


def test_contrast_spheres_avoid_or_straddle_the_regions():
    from lmpshear.kernels.sieve import (
        Region,
        contrast_spheres,
        region_lookup,
        sphere_offsets,
    )

    cell = Cell((0.0, 0.0, 0.0), 12.0, 12.0, 12.0, 4.0, 3)
    fine = 24
    # the node offsets of a sphere, against brute force over every node of the sheared lattice
    offsets = sphere_offsets(cell, fine, 2.0)
    grid = np.stack(np.meshgrid(*[np.arange(-fine // 2, fine // 2)] * 3, indexing="ij"), -1).reshape(-1, 3)
    brute = grid[np.linalg.norm((grid / fine) @ cell.matrix(), axis=1) <= 2.0]
    assert {tuple(o) for o in offsets} == {tuple(o) for o in brute}
    assert len(offsets) * (12.0 / fine) ** 3 == pytest.approx(4 / 3 * np.pi * 8, rel=0.1)

    def block(label, corner, size):
        idx = np.stack(np.meshgrid(*[np.arange(c, c + size) % fine for c in corner], indexing="ij"), -1).reshape(-1, 3)
        return Region(label, idx, len(idx) * 0.125, 1.0, np.zeros(3), 0)

    regions = [block(1, (2, 2, 2), 4), block(2, (8, 2, 2), 4)]  # two regions 2 nodes (1 length unit) apart
    quiet, straddling = contrast_spheres(regions, cell, fine, 1.5, 3, np.random.default_rng(0), attempts=5000)
    assert len(quiet) == 3 and len(straddling) == 3
    lookup = region_lookup(regions, 3, fine)
    for sph in quiet:
        assert not lookup[tuple(sph.nodes.T)].any()
    for sph in straddling:
        assert set(np.unique(lookup[tuple(sph.nodes.T)])) >= {1, 2}
    whole = len(sphere_offsets(cell, fine, 1.5))
    assert all(len(s.nodes) == whole for s in quiet + straddling)  # every sphere complete (no wrap overlap)


def test_background_iteration_on_poisson_counts():
    """The paper's iteration on uniform Poisson block counts: it collapses to 0 at a few jumps per block
    and nears the mean only with many (the basis of min_jumps_per_block's default)."""
    MIN_JUMPS_PER_BLOCK = Analysis().min_jumps_per_block

    rng = np.random.default_rng(0)

    def level(mu):
        return np.mean([background_threshold(rng.poisson(mu, 1000).astype(float), 0.1) for _ in range(10)]) / mu

    assert level(3) == 0.0
    assert 0.35 < level(MIN_JUMPS_PER_BLOCK) < 0.65
    assert level(100) > 0.85


def test_coarse_sieve_prunes_small_clusters_and_the_undersize_sieve_does_not_by_default():
    """C'·V_stz applies to the coarse clusters (Fig. 9c); a dense core smaller than that inside a big
    enough coarse cluster survives unless prune_fine asks for the second pruning."""
    rng = np.random.default_rng(4)
    L = 30.0
    cell = Cell((0.0, 0.0, 0.0), L, L, L, 0.0, 3)
    # a ball of radius 1.2 (7 volume units) centred on a face between two blocks of edge 3 (2 x 27 units)
    v = rng.normal(size=(600, 3))
    v *= (1.2 * rng.random(600) ** (1 / 3) / np.linalg.norm(v, axis=1))[:, None]
    events = np.array([15.0, 13.5, 13.5]) + v
    stz = np.pi / 6 * 27  # V_stz of 3 d_0: C' V_stz = 28.3, between the core and its two blocks
    regions, _ = demarcate(events, cell, coarse=10, fine=30, threshold=5.0, **SIEVE)
    assert len(regions) == 1 and regions[0].volume < 2 * stz
    assert demarcate(events, cell, coarse=10, fine=30, threshold=5.0, **(SIEVE | {"prune_fine": True}))[0] == []
    # one block alone (27 < 28.3) is pruned at the coarse sieve either way
    assert demarcate(events + [1.4, 0.0, 0.0], cell, coarse=10, fine=30, threshold=5.0, **SIEVE)[0] == []


def test_dispersion_index_tells_clustered_jumps_from_poisson():
    from lmpshear.kernels.sieve import dispersion_index

    rng = np.random.default_rng(6)
    cell = Cell((0.0, 0.0, 0.0), 24.0, 24.0, 24.0, 5.0, 3)
    uniform = np.asarray(cell.lo) + rng.random((20000, 3)) @ cell.matrix()
    d, z = dispersion_index(uniform, cell, 3.0)
    assert d == pytest.approx(1.0, abs=0.1) and abs(z) < 4
    clustered = np.concatenate([uniform[:10000], rng.normal(size=(10000, 3)) * 2.0 + 12.0])
    d, z = dispersion_index(cell.wrap(clustered)[0], cell, 3.0)
    assert d > 10 and z > 50


def test_jackknife_error_of_a_variance_matches_the_analytic_one():
    """For n independent normal values the variance has standard error σ²√(2/n)."""
    from lmpshear.kernels.overlap import jackknife_variance

    rng = np.random.default_rng(7)
    errors = [jackknife_variance(rng.normal(scale=2.0, size=1000))[1] for _ in range(100)]
    assert np.mean(errors) == pytest.approx(4.0 * np.sqrt(2 / 1000), rel=0.08)
    assert np.isnan(jackknife_variance(np.ones(3))[1])


def _sawtooth_run(rate=0.1, L=15.0, W=1.0, n_windows=8, dt=0.05, seed=8):
    """An affinely sheared box (no thermal motion) whose every particle carries the same per-particle
    virial, a sawtooth of period W (rise over 0.8 W, drop over 0.2 W): every cluster's σ_c has the same
    rise and drop. Each window holds two blobs of jumps (radii 3 and 2, at fixed places in the frame
    of its end) on a uniform background."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    times = np.arange(0.0, n_windows * W + 1e-9, dt)
    tilt = lambda t: (rate * t * L + 0.5 * L) % L - 0.5 * L  # noqa: E731
    cells = [Cell((0.0, 0.0, 0.0), L, L, L, tilt(t), 3) for t in times]
    start = rng.uniform(0, L, size=(int(L**3), 3))
    unwrapped = np.repeat(start[None], len(times), axis=0)
    unwrapped[:, :, 0] += rate * times[:, None] * start[None, :, 1]
    phase = (times % W) / W
    saw = np.where(phase < 0.8, phase / 0.8, (1.0 - phase) / 0.2)
    virial = np.repeat(saw[:, None], len(start), axis=1)
    rows = []
    for w in range(n_windows):
        t_ref = (w + 1) * W
        r, t = planted_events(
            rng,
            cells[int(round(t_ref / dt))],
            [np.array([4.0, 4.0, 7.0]), np.array([11.0, 10.0, 7.0])],
            3.0,
            3000,
            3000,
            rate,
            t_ref,
            W,
        )
        r, t = r[:6000:2].tolist() + r[6000:].tolist(), t[:6000:2].tolist() + t[6000:].tolist()
        rows.append(pd.DataFrame({"time": t, "x": np.array(r)[:, 0], "y": np.array(r)[:, 1], "z": np.array(r)[:, 2]}))
    jumps = pd.concat(rows)
    jumps = jumps[(jumps.time > 0) & (jumps.time < times[-1])]
    jumps["frame"] = np.searchsorted(times, jumps.time.to_numpy())
    jumps["particle"] = rng.permutation(len(unwrapped[0]))[np.arange(len(jumps)) % len(unwrapped[0])]
    for a in ("dx", "dy", "dz"):
        jumps[a] = rng.normal(size=len(jumps))
    return times, cells, unwrapped, virial, jumps, rate, W


def test_convective_summary_follows_the_paper_definitions():
    from lmpshear.kernels.convective import convective_clusters

    times, cells, unwrapped, virial, jumps, rate, W = _sawtooth_run()
    kwargs = dict(
        window=W,
        coarse=5,
        **convective_options(Analysis(cluster_fine=15, contrast=0, trace_before=2.0, trace_after=0.5)),
    )
    lines = []
    res = convective_clusters(times, cells, unwrapped, virial, jumps, rate, W, **kwargs, progress=lines.append)
    s, rows = res["summary"], res["clusters"]
    # a long stage says where it is: the sieve passes, then the traced windows up to the last
    assert lines[0].startswith(f"clusters: {s['windows']} windows of {W:.4g} sieved") and lines[0].endswith(" s)")
    assert f"window {s['windows']} of {s['windows']} traced, {s['clusters']} clusters so far" in lines[-1]
    yielded = [r for r in rows if "t2" in r]
    assert len(yielded) >= 8 and len({round(r["volume"]) for r in yielded}) > 1  # clusters of two sizes
    # ξ_c: the radius of the mean volume of the yielded clusters, not the mean radius
    v = np.mean([r["volume"] for r in yielded])
    assert s["xi_c"] == pytest.approx((3 * v / (4 * np.pi)) ** (1 / 3), rel=1e-12)
    assert s["xi_c"] > s["xi_c_mean_radius"]  # Jensen: r(mean V) > mean r when sizes differ
    # P̄_c averages only where every window that can reach t was analysed
    refs = sorted({r["t_ref"] for r in rows})
    assert s["P_c_span"][0] == pytest.approx(refs[0] + 0.5 * W, abs=0.051)
    assert s["P_c_span"][1] == pytest.approx(refs[-1] - 2.0 * W, abs=0.051)
    t_all = np.array(res["P_c"]["all"]["t"])
    span = (t_all >= s["P_c_span"][0] - 1e-9) & (t_all <= s["P_c_span"][1] + 1e-9)
    for reading in ("all", "yielded"):
        assert s[f"P_c_mean_{reading}"] == pytest.approx(np.mean(np.array(res["P_c"]["all"][reading])[span]))
    assert s["P_c_mean_all"] >= s["P_c_mean_yielded"] > 0
    assert s["P_c_mean"] == s["P_c_mean_all"]  # the default reading
    # eq. 8 under both conventions of eq. 2 (the printed one counts each pair twice)
    sy = np.mean([r["stress_at_yield"] for r in yielded])
    conv = s["by_convention"]
    assert s["sigma_c_y"] == pytest.approx(sy) and conv["paper"]["sigma_c_y"] == pytest.approx(2 * sy)
    assert conv["paper"]["eta_c_all"] == pytest.approx(2 * conv["virial"]["eta_c_all"])
    assert s["eta_c"] == pytest.approx(s["P_c_mean"] * sy / (2 * rate))
    # the sieve's diagnostics: jumps per window, the clustering test
    assert s["jumps_per_particle_per_window"] == pytest.approx(6000 / len(unwrapped[0]), rel=0.15)
    assert s["dispersion_index"] > 3 and s["kept_fraction"] > 0
    # the yield of an isoconfigurational mean curve replaces the cluster's own
    first = yielded[0]
    ice = {"t0": first["t0"], "t1": first["t1"], "t2": first["t2"], "t3": first["t3"], "stress_at_yield": 100.0}
    kwargs |= {"atomic_stress": "paper", "p_c_clusters": "yielded"}
    res2 = convective_clusters(
        times, cells, unwrapped, virial, jumps, rate, W, **kwargs, ice_yields={(first["window"], first["region"]): ice}
    )
    s2 = res2["summary"]
    assert s2["yield_from_ice"] == 1 and res2["clusters"][rows.index(first)]["yield_from"] == "ice"
    assert s2["sigma_c_y"] == pytest.approx(2 * (sy + (100.0 - first["stress_at_yield"]) / len(yielded)))
    assert s2["P_c_mean"] == s["P_c_mean_yielded"]  # the same life [t0, t3]: the same P_c


def test_sparse_windows_warn_and_say_what_to_change():
    from lmpshear.kernels.convective import convective_clusters

    times, cells, unwrapped, virial, jumps, rate, W = _sawtooth_run()
    sparse = jumps.iloc[::40]
    params = convective_options(Analysis(cluster_fine=15, contrast=0))
    s = convective_clusters(times, cells, unwrapped, virial, sparse, rate, W, window=W, coarse=5, **params)["summary"]
    assert s["mean_jumps_per_block"] < 25
    assert any("cluster_window" in w and "per coarse block" in w for w in s["warnings"])
    few = convective_clusters(
        times[:61],
        cells[:61],
        unwrapped[:61],
        virial[:61],
        jumps[jumps.time < 3.0],
        rate,
        W,
        window=W,
        coarse=5,
        **params,
    )["summary"]
    assert few["P_c_span"] is None and np.isnan(few["P_c_mean"])
    assert any("fully covered span" in w for w in few["warnings"])


def test_window_rule_lengthens_to_whole_t_chi_until_the_sieve_has_counts():
    from lmpshear.kernels.sieve import window_multiple

    cell = Cell((0.0, 0.0, 0.0), 10.0, 10.0, 10.0, 3.0, 3)
    # 200000 jumps over 40 time units in 1000 blocks: 5 per block per t_chi = 1 -> 5 t_chi for 25
    assert window_multiple(200000, 40.0, cell, 10, None, 1.0, 25.0, 1.0)[0] == 5.0
    assert window_multiple(200000, 40.0, cell, 10, None, 1.0, 26.0, 1.0)[0] == 6.0
    assert window_multiple(200000, 40.0, cell, 10, None, 8.0, 25.0, 1.0)[0] == 8.0  # long enough already
    assert window_multiple(200000, 40.0, cell, 10, None, 1.0, 0.0, 1.0)[0] == 1.0  # rule off: literal t_chi
    assert window_multiple(0, 40.0, cell, 10, None, 1.0, 25.0, 1.0)[0] == 1.0
    n, why = window_multiple(5000, 10.0, cell, 10, None, 1.0, 25.0, 1.0)  # needs 50 t_chi, has room for 2
    assert n == 2.0 and "run longer" in why
    # kernel sieve: per kernel volume 8 pi d^3 (d = 1: 25.1 of the 1000 volume units)
    n, why = window_multiple(20000, 40.0, cell, 20, 1.0, 1.0, 25.0, 1.0)  # 12.6 per kernel volume per t_chi
    assert n == 2.0 and "min_jumps_per_block" in why


def test_the_sieve_s_null_and_the_significance_rule():
    """Uniformly scattered jumps: the paper's sieve still keeps a grain-sized tiling, and what it keeps is
    what its uniform null keeps; the significance rule finds no cluster. Planted blobs: the significance
    rule finds the two blobs of each window, where the nulls find none."""
    from lmpshear.kernels.convective import convective_clusters
    from lmpshear.kernels.sieve import significance_threshold

    times, cells, unwrapped, virial, jumps, rate, W = _sawtooth_run()
    rng = np.random.default_rng(11)
    uniform = jumps.copy()
    k = uniform.frame.to_numpy()
    lab = np.array([np.asarray(cells[f].lo) + rng.random(3) @ cells[f].matrix() for f in k])
    uniform[["x", "y", "z"]] = lab
    options = convective_options(Analysis(cluster_fine=15, contrast=0))
    paper = convective_clusters(times, cells, unwrapped, virial, uniform, rate, W, window=W, coarse=5, **options)[
        "summary"
    ]
    assert paper["kept_fraction"] > 0.2 and paper["clusters"] > 0  # the grain of the sieve, not the liquid's
    assert paper["kept_fraction"] == pytest.approx(paper["null"]["uniform"]["kept_fraction"], abs=0.1)
    assert paper["kept_fraction"] == pytest.approx(paper["null"]["particles"]["kept_fraction"], abs=0.1)
    significant = options | {"threshold_rule": "significance"}
    quiet = convective_clusters(times, cells, unwrapped, virial, uniform, rate, W, window=W, coarse=5, **significant)
    assert quiet["summary"]["clusters"] == 0 and quiet["summary"]["threshold_rule"] == "significance"
    blobs = convective_clusters(times, cells, unwrapped, virial, jumps, rate, W, window=W, coarse=5, **significant)
    s = blobs["summary"]
    per_window = [sum(r["window"] == w for r in blobs["clusters"]) for w in range(s["windows"])]
    assert np.median(per_window) == 2
    centres = np.array([r["centre"] for r in blobs["clusters"]])
    planted = np.array([[4.0, 4.0, 7.0], [11.0, 10.0, 7.0]])
    d = np.array([[np.linalg.norm(cells[0].minimum_image((c - p)[None])) for p in planted] for c in centres])
    assert np.all(d.min(axis=1) < 2.5)  # every cluster is on a planted blob (centres in the frame at t_ref)
    assert s["null"]["uniform"]["clusters_per_window"] <= 0.25 and s["null"]["particles"]["clusters_per_window"] <= 0.25
    # the paper's rule carries the significance rule's sieve beside it (Table I's second ν_c): on uniform
    # jumps no region; on the blobs the regions the significance rule's own run traced
    assert paper["significance"]["clusters"] == 0 and np.isnan(paper["significance"]["xi_c"])
    beside = convective_clusters(times, cells, unwrapped, virial, jumps, rate, W, window=W, coarse=5, **options)[
        "summary"
    ]["significance"]
    assert beside["clusters"] == s["clusters"] and beside["kept_fraction"] == pytest.approx(s["kept_fraction"])
    assert beside["xi_c"] == pytest.approx(s["xi_c_all"]) and s["significance"]["xi_c"] == pytest.approx(s["xi_c_all"])
    assert 0 < beside["xi_c_error"] < 0.2 * beside["xi_c"]
    # the rule itself: a field drawn like its null has no significant node; nodes far above it are found
    null = rng.poisson(20.0, 200000).astype(float)
    field = rng.poisson(20.0, 1000).astype(float)
    assert significance_threshold(field, null, 0.05) == np.inf
    field[:5] = 60.0
    assert significance_threshold(field, null, 0.05) == 60.0


def test_the_sparse_sieve_warning_uses_the_users_min_jumps_per_block():
    from lmpshear.kernels.sieve import sieve_warnings

    used = [{"mean_jumps_per_block": 30.0}]
    warn = lambda least: [
        w
        for w in sieve_warnings(1.0, used, np.ones(3, bool), 4, 2.5, None, least)  # noqa: E731
        if "cage jumps per coarse block" in w
    ]
    assert warn(25.0) == [] and "fewer than 40)" in warn(40.0)[0]


def test_the_featured_cluster_is_a_typical_one():
    """The figures' default cluster is the yielded one of the median volume (the lower middle), not the
    largest or the one with the most jumps; a row asked for is checked."""
    from lmpshear.errors import UserError
    from lmpshear.kernels.convective import choose_cluster

    table = [(5.0, 90, True), (50.0, 10, True), (20.0, 5, True), (500.0, 99, False), (30.0, 2, True)]
    rows = [{"volume": v, "jumps": j, **({"t2": 1.0} if y else {})} for v, j, y in table]
    assert choose_cluster({"clusters": rows}, None) == 2  # yielded volumes 5, 20, 30, 50: the lower middle, 20
    assert choose_cluster({"clusters": rows[:3]}, None) == 2  # 5, 50, 20: the median, 20
    assert choose_cluster({"clusters": rows}, 3) == 3
    with pytest.raises(UserError, match="rows 0..4"):
        choose_cluster({"clusters": rows}, 7)
