"""The four-point structure factor under shear (lmpshear.kernels.fourpoint): the q-vectors of a
sheared cell, S4 of uncorrelated and of planted mobility fields, and the brute-force sum."""

import numpy as np
import pytest

from lmpshear.cell import Cell, tilt_at
from lmpshear.kernels import fourpoint as fp


def _lattice(cell):
    return cell.matrix()[:3, :3]  # rows: the lattice vectors


def test_q_vectors_are_on_the_reciprocal_lattice_of_the_sheared_cell_through_a_flip():
    L = 10.0
    before = Cell((0.0, 0.0, 0.0), L, L, L, 0.45 * L, 3)  # just before a flip ...
    after = Cell((0.0, 0.0, 0.0), L, L, L, 0.45 * L - L, 3)  # ... and the same lattice after it
    sets = []
    for cell in (before, after):
        n, q = fp.reciprocal_vectors(cell, 2.5)
        phases = q @ _lattice(cell).T / (2 * np.pi)  # q·L_k / 2π: integers for the three lattice vectors
        assert np.allclose(phases, np.round(phases), atol=1e-9)
        assert np.allclose(np.exp(1j * q @ _lattice(cell).T), 1.0)
        assert np.allclose(phases, n)  # and n is q's own coordinate on the reciprocal basis
        lead = np.array([row[np.flatnonzero(np.abs(row) > 1e-9)[0]] for row in q])
        canonical = np.where(lead[:, None] < 0, -q, q)  # ±q: W(-q) = W(q)*
        sets.append(canonical[np.lexsort(np.round(canonical, 9).T)])
    assert len(sets[0]) == len(sets[1]) > 100
    assert np.allclose(sets[0], sets[1])  # a flip changes the basis, not the q-vectors
    q_all = fp.reciprocal_vectors(before, 2.5)[1]
    assert np.linalg.norm(q_all, axis=1).max() <= 2.5 and np.linalg.norm(q_all, axis=1).min() > 0


def test_fourier_sums_equal_the_brute_force_sum():
    rng = np.random.default_rng(1)
    cell = Cell((1.0, -2.0, 0.5), 7.0, 6.0, 5.0, -2.1, 3)
    r = np.asarray(cell.lo) + rng.random((300, 3)) @ cell.matrix()
    w = rng.random(300)
    n, q = fp.reciprocal_vectors(cell, 3.0)
    brute = (w[None, :] * np.exp(1j * q @ r.T)).sum(axis=1)
    fast = fp.fourier_sums(cell.fractional(r), w, n)
    assert np.allclose(fast, brute * _lo_phase(q, cell), atol=1e-9)
    shifted = r + _lattice(cell)[0] * 3 - _lattice(cell)[1] * 2  # any image of a particle: the same W
    assert np.allclose(fp.fourier_sums(cell.fractional(shifted), w, n), fast, atol=1e-9)


def _lo_phase(q, cell):
    """Fractional coordinates are taken from the cell's corner: W from them is W(r) e^{-i q·lo}."""
    return np.exp(-1j * q @ np.asarray(cell.lo))


def _uniform_samples(rng, cell, n, samples):
    return np.asarray(cell.lo) + rng.random((samples, n, 3)) @ cell.matrix()


def test_uncorrelated_mobility_gives_a_flat_s4_equal_to_its_variance():
    """Independent w_i (Bernoulli p) at ideal-gas positions: E|W(q)|²/N = p for q ≠ 0, flat within errors."""
    rng = np.random.default_rng(2)
    cells = [Cell((0.0, 0.0, 0.0), 14.0, 14.0, 14.0, tilt_at(0.1, t, 14.0, 14.0), 3) for t in np.linspace(0, 9, 20)]
    p = 0.3
    positions = np.stack([_uniform_samples(rng, c, 2744, 1)[0] for c in cells])
    weights = (rng.random((len(cells), 2744)) < p).astype(float)
    res = fp.structure_factor(weights, positions, cells, q_max=2.0, per_bin=60, cone=30.0, blocks=10)
    z = (res.s4 - p) / res.error
    assert np.all(np.isfinite(z)) and np.abs(z).max() < 4.0 and abs(np.mean(z)) < 1.5
    fit = fp.fit_length(res.q, res.s4, res.error, 2.0)
    assert fit.xi < 0.3  # no length
    for d in res.directions.values():
        ok = np.isfinite(d["s4"]) & (d["vectors"] > 20)
        assert ok.sum() >= 3 and np.all(np.abs(d["s4"][ok] - p) < 5 * d["error"][ok])


def _oz_field(rng, cell, xi, amplitude, q_cut):
    """A mobility field periodic in the sheared cell with the Ornstein–Zernike spectrum of length xi:
    modes q ≤ q_cut with |c_q|² = amplitude/(1 + (q xi)²)/V and random phases."""
    n, q = fp.reciprocal_vectors(cell, q_cut)
    size = np.linalg.norm(q, axis=1)
    c = np.sqrt(amplitude / (1 + (size * xi) ** 2) / cell.volume)
    phase = rng.random(len(n)) * 2 * np.pi

    def field(r):
        s = cell.fractional(r)
        return 2 * (c[None, :] * np.cos(2 * np.pi * s @ n.T + phase[None, :])).sum(axis=1)

    return field


@pytest.mark.parametrize("xi", [2.0, 3.0])
def test_s4_recovers_a_planted_ornstein_zernike_length(xi):
    """w_i = φ(r_i) with φ an OZ field of length ξ in a sheared cell: S4(q) − ⟨w²⟩ = ρ A/(1 + (qξ)²), and
    the OZ fit gives ξ within 10%."""
    rng = np.random.default_rng(3)
    L = 18.0
    cells = [Cell((0.0, 0.0, 0.0), L, L, L, tilt_at(0.2, t, L, L), 3) for t in np.linspace(0, 12, 12)]
    positions, weights = [], []
    for cell in cells:  # the field moves with the cell's lattice: one realisation, fresh positions each sample
        r = _uniform_samples(rng, cell, 5832, 1)[0]
        field = _oz_field(np.random.default_rng(7), cell, xi, 50.0, 2.5)
        positions.append(r)
        weights.append(field(r))
    weights = np.array(weights)
    res = fp.structure_factor(weights, np.array(positions), cells, q_max=2.0, per_bin=80, cone=30.0, blocks=6)
    background = (weights**2).mean()
    fit = fp.fit_length(res.q, res.s4 - background, res.error, 1.2)
    assert fit.xi == pytest.approx(xi, rel=0.10)
    assert fit.s4_zero == pytest.approx(50.0 * 1.0, rel=0.25)  # ρ A, ρ = 1


def test_the_zero_q_limit_is_the_self_chi4_variance():
    rng = np.random.default_rng(4)
    cells = [Cell((0.0, 0.0, 0.0), 8.0, 8.0, 8.0, 0.0, 3)] * 30
    weights = (rng.random((30, 512)) < 0.5).astype(float)
    res = fp.structure_factor(
        weights, _uniform_samples(rng, cells[0], 512, 30), cells, q_max=1.0, per_bin=10, cone=30.0, blocks=5
    )
    assert res.s4_zero == pytest.approx(weights.sum(axis=1).var() / 512)
    assert res.mobile_fraction == pytest.approx(1 - weights.mean())


def test_fit_forms_on_exact_curves():
    q = np.linspace(0.2, 2.0, 15)
    error = np.full(len(q), 0.01)
    oz = fp.fit_length(q, 5.0 / (1 + (q * 2.5) ** 2), error, 2.0, "oz")
    assert oz.xi == pytest.approx(2.5, rel=1e-6) and oz.s4_zero == pytest.approx(5.0, rel=1e-6)
    assert oz.reduced_chi2 < 1e-6
    quartic = fp.fit_length(q, 5.0 / (1 + (q * 2.5) ** 2 + 0.3 * (q * 2.5) ** 4), error, 2.0, "oz4")
    assert quartic.xi == pytest.approx(2.5, rel=1e-4) and quartic.extra == pytest.approx(0.3, rel=1e-3)


def test_self_intermediate_scattering_and_its_crossing():
    """F_s of Gaussian displacements of variance σ² per axis: exp(−q²σ²/2) in any dimension."""
    rng = np.random.default_rng(5)
    for dim in (2, 3):
        sigma = np.array([0.1, 0.3, 0.6])
        path = np.zeros((4, 20000, dim))
        for k, s in enumerate(sigma, start=1):
            path[k] = rng.normal(0.0, s, (20000, dim))
        fs = fp.self_intermediate_scattering(path, np.array([0]), np.array([1, 2, 3]), 2.0)
        assert fs == pytest.approx(np.exp(-4.0 * sigma**2 / 2), abs=0.01)
    t = np.array([1.0, 2.0, 4.0])
    assert fp.crossing(t, np.array([1.0, 0.5, 0.1]), 0.3) == pytest.approx(np.exp(np.log(2) + 0.5 * np.log(2)))


# -- the s4 stage on real runs ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def bd_at_rest(tmp_path_factory):
    """bd45-tiny at rest (γ̇ = 0): 0.3 τ0 sampled every 0.005."""
    from conftest import prepare_and_run, write_spec

    tmp = tmp_path_factory.mktemp("rest")
    spec = write_spec(
        tmp / "rest.toml",
        "bd45-tiny",
        protocol={"steady_time": 0.02, "production_time": 0.3},
        rates=[{"rate": 0.0, "sample_interval": 0.005}],
    )
    return prepare_and_run(tmp, spec)


@pytest.mark.full
def test_s4_at_rest_equals_a_brute_force_double_loop_and_its_q0_limit_is_the_self_chi4(bd_at_rest):
    """At rest the cell is the cube of side L: S4(q) = N⁻¹ Σ_ij w_i w_j cos(q·(r_i − r_j)) over q = 2πn/L,
    an independent double loop over pairs; and N⁻¹ var(Σ w_i) = ρ k_BT χ4_self on the same origins."""
    from conftest import cli

    from lmpshear.kernels.overlap import origins_in, self_overlap
    from lmpshear.rundir import RunDir
    from lmpshear.store import Trajectory

    cli(
        "analyze",
        bd_at_rest,
        "--only",
        "structure",
        "--only",
        "overlap",
        "--only",
        "s4",
        "--no-figures",
        "--set",
        "s4_vectors=100000",
        "--set",
        "s4_q_max=2.0",
        check=True,
    )
    rd = RunDir(bd_at_rest)
    product, info = rd.result("s4"), rd.info()
    at = product["at"]["t_chi"]
    with Trajectory(rd.store) as traj:
        frames = np.nonzero(traj.times >= info.steady_time - 1e-9)[0]
        r = traj.unwrapped(list(frames))
        na = traj.nonaffine(list(frames))
        cell = traj.cell(int(frames[0]))
        n_particles = traj.n_particles
    L = cell.lx
    assert cell.xy == 0 and cell.ly == L == cell.lz
    lag = at["lag"]
    origins = origins_in(0, len(frames) - 1 - lag, info.analysis.max_origins)
    assert at["origins"] == len(origins)
    dq = 2 * np.pi / L
    grid = np.arange(-5, 6)
    n = np.array(
        [
            (a, b, c)
            for a in grid
            for b in grid
            for c in grid
            if (a, b, c) > (0, 0, 0) and np.linalg.norm((a, b, c)) * dq <= 2.0
        ]
    )
    q = n * dq
    bins = np.floor(np.linalg.norm(q, axis=1) / dq + 0.5).astype(int) - 1
    total = np.zeros(bins.max() + 1)
    count = np.zeros(bins.max() + 1)
    for o in origins:
        w = (((na[o + lag] - na[o]) ** 2).sum(axis=1) <= at_a(product) ** 2).astype(float)
        d = r[o][:, None, :] - r[o][None, :, :]  # every pair
        for k, qk in enumerate(q):
            total[bins[k]] += (w[:, None] * w[None, :] * np.cos(d @ qk)).sum() / n_particles
            count[bins[k]] += 1
    brute = total / count
    assert np.allclose(np.asarray(at["s4"])[: len(brute)], brute, rtol=1e-9)
    assert at["vectors"][: len(brute)] == count.astype(int).tolist()
    sums = np.array(
        [n_particles - np.count_nonzero(((na[o + lag] - na[o]) ** 2).sum(axis=1) > at_a(product) ** 2) for o in origins]
    )
    assert at["s4_zero"] == pytest.approx(sums.var() / n_particles)
    chi4_self = (
        cell.volume
        / (info.temperature * n_particles**2)
        * np.var([self_overlap(na[o + lag], na[o], at_a(product)) for o in origins])
    )
    assert at["s4_zero"] == pytest.approx(n_particles / cell.volume * info.temperature * chi4_self)


def at_a(product):
    return product["a"]


@pytest.mark.full
@pytest.mark.parametrize("preset", ["ka3d-tiny", "softdisk2d-tiny", "bd45-tiny"])
def test_the_s4_stage_on_the_three_systems(tmp_path, preset, tiny_run):
    """Products present; at t_χ every bin finite, ξ_4 and its error finite (a fit range that the tiny
    boxes can fill)."""
    import shutil

    from conftest import cli, prepare_and_run

    from lmpshear.rundir import RunDir

    run = tiny_run if preset == "ka3d-tiny" else prepare_and_run(tmp_path, preset)
    if preset == "ka3d-tiny":
        shutil.copytree(tiny_run, tmp_path / "run")
        run = tmp_path / "run"
    out = cli(
        "analyze",
        run,
        "--only",
        "structure",
        "--only",
        "overlap",
        "--only",
        "s4",
        "--no-figures",
        "--set",
        "s4_fit_q_max=3.5",
        "--set",
        "s4_q_max=4.0",
        check=True,
    )
    assert "s4:" in out.stdout and "xi_4" in out.stdout
    result = RunDir(run).result("s4")
    at = result["at"]["t_chi"]
    assert np.all(np.isfinite(at["s4"])) and np.all(np.isfinite(at["error"])) and at["origins"] >= 2
    assert set(at["directions"]) == (
        {"flow", "gradient"} if preset.startswith("softdisk") else {"flow", "gradient", "vorticity"}
    )
    fit = at["fits"]["oz"]
    assert np.isfinite(fit["xi"]) and np.isfinite(fit["xi_error"]) and fit["points"] >= 3
    assert result["summary"]["xi4_t_chi"] == fit["xi"]
