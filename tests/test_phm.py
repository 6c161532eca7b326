"""Hessians of the pair potentials in the sheared cell, the frozen-exterior relaxation and the
pseudo-harmonic modes (lmpshear.kernels.hessian, lmpshear.kernels.phm)."""

import numpy as np
import pytest
import scipy.linalg
import scipy.sparse

from lmpshear import config
from lmpshear.cell import Cell
from lmpshear.kernels import hessian as hs
from lmpshear.kernels import phm

SYSTEMS = {"ka3d-tiny": 1.2, "softdisk2d": None, "bd45-tiny": None}


def jittered(preset: str, per_side: int, tilt: float, seed: int = 1, jitter: float = 0.08):
    """A jittered lattice of the preset's mixture in a cell tilted by ``tilt`` L (so that pairs cross
    the sliding boundary), with its PairPotential and types."""
    system = config.load(preset).system
    dim = system.dimension
    n = per_side**dim
    density = system.number_density or (system.n_particles / system.volume)
    length = (n / density) ** (1 / dim)
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(per_side)] * dim, indexing="ij"), -1).reshape(-1, dim)
    r = (grid + 0.5 + rng.uniform(-jitter, jitter, grid.shape)) * (length / per_side)
    r[:, 0] += tilt * length * r[:, 1] / length  # the lattice of the tilted cell
    counts = np.array([sp.fraction for sp in system.species]) * n
    types = np.repeat(np.arange(len(counts)), np.round(counts).astype(int))[:n]
    types = rng.permutation(np.pad(types, (0, n - len(types))))
    cell = Cell((0.0, 0.0, 0.0), length, length, length if dim == 3 else 1.0, tilt * length, dim)
    return r, types, cell, hs.PairPotential.of(system)


def finite_difference_hessian_columns(r, types, cell, pot, columns, h=1e-6):
    out = []
    for c in columns:
        p, a = divmod(c, r.shape[1])
        plus, minus = r.copy(), r.copy()
        plus[p, a] += h
        minus[p, a] -= h
        fp = hs.energy_and_forces(plus, types, cell, pot)[1]
        fm = hs.energy_and_forces(minus, types, cell, pot)[1]
        out.append(-(fp - fm).ravel() / (2 * h))
    return np.array(out).T


@pytest.mark.parametrize("preset, per_side", [("ka3d-tiny", 7), ("softdisk2d", 14), ("bd45-tiny", 7)])
def test_the_hessian_is_the_derivative_of_the_forces_in_a_tilted_cell(preset, per_side):
    r, types, cell, pot = jittered(preset, per_side, tilt=0.31)
    h = hs.hessian(r, types, cell, pot)
    # particles at the sliding boundary (lowest and highest y) and a few others
    y = r[:, 1]
    chosen = np.concatenate([np.argsort(y)[:3], np.argsort(y)[-3:], [len(r) // 2]])
    columns = (chosen[:, None] * r.shape[1] + np.arange(r.shape[1])).ravel()
    fd = finite_difference_hessian_columns(r, types, cell, pot, columns)
    exact = h[:, columns].toarray()
    scale = np.abs(exact).max()
    assert np.abs(fd - exact).max() < 1e-5 * scale
    # pairs across the boundary take part (the rows of a bottom particle reach top particles)
    bottom, top = np.argsort(y)[0], set(np.argsort(y)[-len(r) // 4 :])
    partners = {c // r.shape[1] for c in h[bottom * r.shape[1]].indices}
    assert partners & top
    # forces are −∇U
    e0, f = hs.energy_and_forces(r, types, cell, pot)
    step = 1e-6
    for p in chosen[:3]:
        plus = r.copy()
        plus[p, 0] += step
        minus = r.copy()
        minus[p, 0] -= step
        de = hs.energy_and_forces(plus, types, cell, pot)[0] - hs.energy_and_forces(minus, types, cell, pot)[0]
        assert -de / (2 * step) == pytest.approx(f[p, 0], rel=1e-5, abs=1e-8 * np.abs(f).max())


@pytest.mark.parametrize("preset, per_side", [("ka3d-tiny", 6), ("softdisk2d", 12)])
def test_the_full_hessian_is_symmetric_with_zero_translation_modes(preset, per_side):
    r, types, cell, pot = jittered(preset, per_side, tilt=-0.2)
    h = hs.hessian(r, types, cell, pot)
    assert abs(h - h.T).max() < 1e-12 * abs(h).max()
    dim = r.shape[1]
    for a in range(dim):
        t = np.zeros_like(r)
        t[:, a] = 1.0
        assert np.abs(h @ t.ravel()).max() < 1e-9 * abs(h).max()


def relaxed_cluster(preset="ka3d-tiny", per_side=7, radius=2.0):
    r, types, cell, pot = jittered(preset, per_side, tilt=0.25, seed=3)
    centre = r.mean(axis=0)
    free = (
        np.linalg.norm(cell.minimum_image(np.pad(r - centre, ((0, 0), (0, 3 - r.shape[1]))))[:, : r.shape[1]], axis=1)
        < radius
    )
    relaxed = hs.relax_frozen(r, types, cell, pot, free)
    return relaxed, types, cell, pot, free, r


def test_the_frozen_relaxation_reaches_a_minimum_with_a_positive_definite_block():
    relaxed, types, cell, pot, free, start = relaxed_cluster()
    assert relaxed.largest_force < 1e-6 and relaxed.displacement > 1e-3
    assert np.array_equal(relaxed.positions[~free], start[~free])  # the exterior did not move
    h = hs.hessian(relaxed.positions, types, cell, pot, free=free)
    assert h.shape == (3 * free.sum(),) * 2
    scipy.linalg.cholesky(h.toarray())  # positive definite: raises otherwise
    # the free block is the full Hessian restricted to the free coordinates
    full = hs.hessian(relaxed.positions, types, cell, pot).toarray()
    idx = (np.where(free)[0][:, None] * 3 + np.arange(3)).ravel()
    assert np.abs(full[np.ix_(idx, idx)] - h.toarray()).max() < 1e-12 * np.abs(full).max()


def free_pairs(positions, cell, pot, free):
    """The interacting pairs of the free particles as free indices, −1 for a frozen partner."""
    p = hs.find_pairs(positions, cell, pot.longest_cutoff, among=free)
    index = np.where(free, np.cumsum(free) - 1, -1)
    return index[p.i], index[p.j]


def test_phm_cost_gradient_fixed_point_and_inverse_iteration():
    relaxed, types, cell, pot, free, _ = relaxed_cluster()
    h = hs.hessian(relaxed.positions, types, cell, pot, free=free)
    i, j = free_pairs(relaxed.positions, cell, pot, free)
    n = int(free.sum())
    rng = np.random.default_rng(0)
    z = rng.normal(size=(n, 3))
    grad = phm.cost_gradient(z, h, i, j)
    for k in rng.choice(z.size, 6, replace=False):
        e = np.zeros(z.size)
        e[k] = 1e-6
        e = e.reshape(z.shape)
        fd = (phm.cost(z + e, h, i, j) - phm.cost(z - e, h, i, j)) / 2e-6
        assert fd == pytest.approx(grad.ravel()[k], rel=1e-5, abs=1e-9 * np.abs(grad).max())
    modes = phm.search(h, i, j, 3, starts=6)
    assert modes and all(m.converged for m in modes)
    m = modes[0]
    hp, zp = h @ m.pi.ravel(), phm.zeta(m.pi, i, j).ravel()
    assert abs(hp @ zp) / (np.linalg.norm(hp) * np.linalg.norm(zp)) > 1 - 1e-9  # H π ∝ ζ(π)
    assert np.linalg.norm(phm.cost_gradient(m.pi, h, i, j)) < 1e-6 * phm.cost(m.pi, h, i, j)
    # a PHM is a local minimum of C: small random changes raise it
    c0 = phm.cost(m.pi, h, i, j)
    assert all(phm.cost(m.pi + 1e-3 * rng.normal(size=m.pi.shape), h, i, j) > c0 for _ in range(10))
    # with ζ(z) = z the same iteration returns the lowest eigenvector
    lowest = scipy.linalg.eigh(h.toarray(), subset_by_index=[0, 0])[1][:, 0]
    solve = phm.Solver(h)
    inv = phm.iterate(h, solve, i, j, rng.normal(size=(n, 3)), tol=1e-12, field=lambda p, i, j: p)
    assert abs(inv.pi.ravel() @ lowest) > 1 - 1e-8
    assert inv.stiffness == pytest.approx(scipy.linalg.eigvalsh(h.toarray(), subset_by_index=[0, 0])[0], rel=1e-8)


def spring_network(side=16, weak_centre=(5.0, 9.0), weak_radius=1.6, weak_factor=0.05, shift=(0.0, 0.0), order=None):
    """A triangular spring network (unit springs under tension 0.1, edges frozen) with its springs
    along one lattice direction weakened inside a disk: an anisotropic soft spot."""
    pts, index = [], {}
    for a in range(side):
        for b in range(side):
            index[a, b] = len(pts)
            pts.append((a + 0.5 * b, b * np.sqrt(3) / 2))
    pts = np.array(pts) + np.array(shift)
    bonds = []
    for (a, b), k in index.items():
        for da, db in ((1, 0), (0, 1), (-1, 1)):
            if (a + da, b + db) in index:
                bonds.append((k, index[a + da, b + db], (da, db)))
    n = len(pts)
    order = np.arange(n) if order is None else order  # particle k is stored at order[k]
    pos = np.empty_like(pts)
    pos[order] = pts
    edge = np.array([a in (0, side - 1) or b in (0, side - 1) for (a, b) in index])
    free = np.empty(n, bool)
    free[order] = ~edge
    h = np.zeros((2 * n, 2 * n))
    pairs = []
    centre = np.array(weak_centre) + np.array(shift)
    for p, q, direction in bonds:
        p, q = order[p], order[q]
        d = pos[q] - pos[p]
        mid = pos[p] + 0.5 * d
        k = weak_factor if (direction == (1, 0) and np.linalg.norm(mid - centre) < weak_radius) else 1.0
        nn = np.outer(d, d) / (d @ d)
        block = k * nn + 0.1 * (np.eye(2) - nn)
        for x, y, s in ((p, p, 1), (q, q, 1), (p, q, -1), (q, p, -1)):
            h[2 * x : 2 * x + 2, 2 * y : 2 * y + 2] += s * block
        pairs.append((p, q))
    idx = np.where(free, np.cumsum(free) - 1, -1)
    keep = np.repeat(free, 2)
    pairs = np.array(pairs)
    i, j = idx[pairs[:, 0]], idx[pairs[:, 1]]
    both_frozen = (i < 0) & (j < 0)
    return pos, free, scipy.sparse.csr_matrix(h[np.ix_(keep, keep)]), i[~both_frozen], j[~both_frozen], centre


def core(mode, positions_free):
    return positions_free[np.argmax((mode.pi**2).sum(axis=1))]


def test_a_planted_soft_spot_is_found_from_random_starts_whatever_the_labels_and_origin():
    pos, free, h, i, j, centre = spring_network()
    modes = phm.search(h, i, j, 2, starts=0, random_starts=8, seed=4)
    soft = modes[0]
    assert np.linalg.norm(core(soft, pos[free]) - centre) < 2.0
    assert soft.participation < 0.15  # localised
    # the same network translated, and with its particles relabelled
    order = np.random.default_rng(2).permutation(len(pos))
    pos2, free2, h2, i2, j2, centre2 = spring_network(shift=(3.3, -1.7), order=order)
    soft2 = phm.search(h2, i2, j2, 2, starts=0, random_starts=8, seed=9)[0]
    assert soft2.stiffness == pytest.approx(soft.stiffness, rel=1e-7)
    assert np.linalg.norm(core(soft2, pos2[free2]) - centre2) < 2.0


def lammps_with(r, types, cell, preset):
    """A LAMMPS instance holding the configuration (ids in our order) with the preset's pair style."""
    from lmpshear import mpi
    from lmpshear.engines.lammps_input import _pair_block

    spec = config.load(preset)
    lmp = mpi.require_lammps().lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])  # no log.lammps here
    z = f"0 {cell.lz}" if cell.dimension == 3 else "-0.5 0.5"
    lmp.commands_string(
        f"units lj\ndimension {cell.dimension}\natom_modify map array sort 0 0\n"
        f"region box prism 0 {cell.lx} 0 {cell.ly} {z} {cell.xy} 0 0\n"
        f"create_box {len(spec.system.species)} box\nmass * 1.0"
    )
    inside = cell.wrap(np.pad(r, ((0, 0), (0, 3 - r.shape[1]))))[0]
    lmp.create_atoms(len(r), list(range(1, len(r) + 1)), [int(t) + 1 for t in types], inside.ravel().tolist())
    if spec.system.potential.style == "yukawa":  # not an MD engine potential: LAMMPS's yukawa, A e^{-zr}/r
        pot = hs.PairPotential.of(spec.system)
        lmp.command(f"pair_style yukawa {pot.z} {pot.longest_cutoff}")
        for a in range(len(spec.system.species)):
            for b in range(a, len(spec.system.species)):
                lmp.command(f"pair_coeff {a + 1} {b + 1} {float(pot.epsilon[a, b])!r}")
    else:
        lmp.commands_string("\n".join(_pair_block(spec)))
    return lmp


def lammps_array(lmp, name, dim):
    return np.array(lmp.numpy.extract_atom(name))[: lmp.get_natoms(), :dim].copy()


@pytest.mark.parametrize("preset, per_side", [("ka3d-tiny", 7), ("softdisk2d", 14), ("bd45-tiny", 7)])
def test_forces_and_the_hessian_block_agree_with_lammps(preset, per_side, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r, types, cell, pot = jittered(preset, per_side, tilt=0.3)
    dim = r.shape[1]
    lmp = lammps_with(r, types, cell, preset)
    lmp.command("run 0")
    _, f = hs.energy_and_forces(r, types, cell, pot)
    assert np.abs(lammps_array(lmp, "f", dim) - f).max() < 1e-9 * np.abs(f).max()
    # LAMMPS dynamical_matrix (PHONON package; masses 1, so it is H) of a group's block
    group = np.arange(12)
    lmp.command(f"group block id 1:{len(group)}")
    lmp.command("dynamical_matrix block regular 1e-6 file dynmat.dat")
    theirs = np.loadtxt("dynmat.dat").reshape(3 * len(group), 3 * len(group))
    if dim == 2:  # LAMMPS writes x, y, z for every atom; z is empty in 2D
        keep = (np.arange(3 * len(group)) % 3) < 2
        theirs = theirs[np.ix_(keep, keep)]
    free = np.zeros(len(r), bool)
    free[group] = True
    ours = hs.hessian(r, types, cell, pot, free=free).toarray()
    assert np.abs(theirs - ours).max() < 1e-5 * np.abs(ours).max()


def test_the_frozen_relaxation_agrees_with_lammps_setforce_and_minimize(tmp_path, monkeypatch):
    """From an inherent structure shaken inside a sphere (as a thermal configuration is near one), both
    relax the sphere with the rest frozen into the same minimum."""
    monkeypatch.chdir(tmp_path)
    r, types, cell, pot = jittered("ka3d-tiny", 7, tilt=0.25, seed=3)
    lmp = lammps_with(r, types, cell, "ka3d-tiny")
    lmp.command("minimize 0.0 1.0e-8 100000 1000000")
    start = lammps_array(lmp, "x", 3)
    free = np.linalg.norm(cell.minimum_image(start - start[0]), axis=1) < 2.0
    start[free] += np.random.default_rng(5).normal(scale=0.04, size=(free.sum(), 3))
    ours = hs.relax_frozen(start, types, cell, pot, free)
    lmp = lammps_with(start, types, cell, "ka3d-tiny")
    frozen_ids = " ".join(str(k + 1) for k in np.where(~free)[0])
    lmp.commands_string(
        f"group frozen id {frozen_ids}\nfix hold frozen setforce 0.0 0.0 0.0\n"
        "min_style cg\nminimize 0.0 1.0e-10 100000 1000000"
    )
    d = cell.minimum_image(lammps_array(lmp, "x", 3) - ours.positions)
    assert ours.largest_force < 1e-8 and ours.displacement > 0.02
    assert np.abs(d[~free]).max() < 1e-12  # frozen in both
    assert np.abs(d[free]).max() < 1e-6


def test_a_mode_core_and_its_extensional_axis():
    """π = ε (r − r0) + a z-directed bump at r0: the core is the particle at r0, the fitted strain is
    ε whatever the mode's sign, and the extensional axis is ε's (30° here)."""
    rng = np.random.default_rng(7)
    cell = Cell((0.0, 0.0, 0.0), 10.0, 10.0, 10.0, 2.0, 3)
    r = rng.uniform(0, 10, size=(1000, 3))
    r0 = r[0]
    dr = cell.minimum_image(r - r0)
    theta = np.radians(30.0)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    eps = np.zeros((3, 3))
    eps[:2, :2] = 0.01 * rot @ np.diag([1.0, -1.0]) @ rot.T
    pi = dr @ eps.T
    pi[:, 2] += np.exp(-(dr**2).sum(axis=1) / 0.5)
    free = np.ones(len(r), bool)
    for sign in (1.0, -1.0):
        mode = phm.Mode(sign * pi / np.linalg.norm(pi), 1.0, 1, True)
        c = phm.core_of(mode, r, free, cell, radius=1.5)
        assert c.particle == 0 and not c.touches_frozen
        assert c.extension_angle == pytest.approx(30.0, abs=1e-6)
        assert np.allclose(c.strain[:2, :2], eps[:2, :2] / np.linalg.norm(pi), atol=1e-9)
    near = np.where(np.linalg.norm(dr, axis=1) < 1.0)[0][1:3]
    free[near] = False
    mode = phm.Mode(pi[free] / np.linalg.norm(pi[free]), 1.0, 1, True)
    assert phm.core_of(mode, r, free, cell, radius=1.5).touches_frozen


@pytest.mark.full
def test_cluster_modes_do_not_depend_on_labels_origin_or_periodic_images():
    r, types, cell, pot = jittered("ka3d-tiny", 7, tilt=0.25, seed=3)
    start = hs.relax_frozen(r, types, cell, pot, np.ones(len(r), bool)).positions  # near an inherent structure
    start += np.random.default_rng(2).normal(scale=0.03, size=start.shape)
    members = np.where(np.linalg.norm(cell.minimum_image(start - start[5]), axis=1) < 2.2)[0]
    ref = phm.cluster_modes(start, types, cell, pot, members, starts=6)
    assert ref.modes and ref.relaxed.largest_force < 1e-8
    assert all(c.particle in set(members) for c in ref.cores)
    kappas = [m.stiffness for m in ref.modes]
    # relabelled, translated, and a member moved to another periodic image (across the sliding boundary)
    order = np.random.default_rng(8).permutation(len(start))
    moved = start[order] + np.array([1.3, -0.7, 2.1])
    inverse = np.argsort(order)
    new_members = inverse[members]
    moved[new_members[0]] += cell.matrix()[1]  # + b = (xy, ly, 0)
    other = phm.cluster_modes(moved, types[order], cell, pot, new_members, starts=6)
    assert [m.stiffness for m in other.modes] == pytest.approx(kappas, rel=1e-6)
    assert order[other.cores[0].particle] == ref.cores[0].particle
    assert other.cores[0].extension_angle == pytest.approx(ref.cores[0].extension_angle, abs=1e-4)


@pytest.mark.full
def test_a_shell_around_the_cluster_relaxes_with_it_and_only_the_cluster_s_modes_are_kept():
    """phm_shell: the particles within the shell of a member (brute force, through the sliding boundary)
    relax and vibrate too, everything beyond stays where it was, the relaxed state is force-free, and
    every mode kept has its core on a member; no shell is the frozen exterior of before."""
    r, types, cell, pot = jittered("ka3d-tiny", 7, tilt=0.25, seed=3)
    start = hs.relax_frozen(r, types, cell, pot, np.ones(len(r), bool)).positions
    start += np.random.default_rng(2).normal(scale=0.03, size=start.shape)
    members = np.where(np.linalg.norm(cell.minimum_image(start - start[5]), axis=1) < 2.2)[0]
    bare = phm.cluster_modes(start, types, cell, pot, members, starts=6)
    assert sorted(bare.free) == sorted(members)
    shell = 1.2
    near = {
        j
        for j in range(len(start))
        for i in members
        if np.linalg.norm(cell.minimum_image(start[j] - start[i])) <= shell
    }
    found = phm.cluster_modes(start, types, cell, pot, members, starts=6, shell=shell)
    assert set(found.free) == near | set(members) and len(near) > len(members)
    frozen = np.setdiff1d(np.arange(len(start)), found.free)
    assert np.array_equal(found.relaxed.positions[frozen], start[frozen])
    assert found.relaxed.largest_force < 1e-8 and found.relaxed.lowest_curvature > 0
    assert found.modes and len(found.modes) == len(found.cores)
    assert all(c.particle in set(members) for c in found.cores)
    assert all(m.pi.shape == (len(found.free), 3) for m in found.modes)


def test_the_relaxation_steps_off_a_saddle():
    """A particle midway between two fixed LJ partners 2.8 apart sits where every force vanishes, a
    maximum along their axis: the relaxation leaves it for the minimum nearer one of them, where the
    two pulls balance, φ'(d) = φ'(2.8 − d)."""
    import scipy.optimize

    pot = hs.PairPotential.of(config.load("ka3d-tiny").system)
    cell = Cell((0.0, 0.0, 0.0), 10.0, 10.0, 10.0, 0.0, 3)
    r = np.array([[3.6, 5.0, 5.0], [5.0, 5.0, 5.0], [6.4, 5.0, 5.0]])
    types = np.zeros(3, dtype=np.int64)
    free = np.array([False, True, False])
    out = hs.relax_frozen(r, types, cell, pot, free)
    assert out.lowest_curvature > 0 and out.largest_force < 1e-8
    slope = lambda x: pot.radial(np.array([x]), [0], [0])[1][0]  # noqa: E731
    balance = scipy.optimize.brentq(lambda x: slope(x) - slope(2.8 - x), 1.0, 1.39, xtol=1e-14)
    d = np.sort(np.abs(out.positions[1, 0] - r[[0, 2], 0]))
    assert 2 ** (1 / 6) < balance < 1.39 and d[0] == pytest.approx(balance, rel=1e-8)
    assert np.allclose(out.positions[1, 1:], 5.0)
