"""The potential energy landscape of a configuration in the sheared cell: pair energies, forces and the
analytic Hessian of the pair potentials in use, and the relaxation of a group of particles to its
inherent structure with every other particle frozen (the paper's "Calculation of PHM").

Pairs: each unordered pair (i, j) closer than its cutoff, with d = r_j − r_i the minimum image in the
cell at that time (Lees–Edwards through the tilted cell). With φ(r) the pair energy and n = d/r,

    force on j  = −φ'(r) n,                    force on i = +φ'(r) n,
    K(d)        = φ''(r) n nᵀ + φ'(r)/r (1 − n nᵀ),
    H_ii += K,  H_jj += K,  H_ij = H_ji = −K.

Potentials (as the engines run them, truncated at r_c; energies shifted to 0 there, which changes no
force and keeps the energy continuous for the minimiser):
  lj      4ε[(σ/r)¹² − (σ/r)⁶]            (KA: per-pair ε, σ and r_c)
  ipl     ε(σ/r)ⁿ                          (soft disks)
  yukawa  A e^{−zr}/r, A = K d_ij e^{z d_ij}  (the BD colloids). The hard core of the BD engine is a
          constraint, not a potential: it adds nothing to the energy, the forces or H. A relaxation
          that brings two cores closer than d_ij is reported (``RelaxResult.overlaps``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np
import scipy.linalg
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg

from lmpshear.cell import Cell
from lmpshear.errors import UserError
from lmpshear.neighbors import CellGrid, minimum_image, pairs_within
from lmpshear.spec import System


@dataclass(frozen=True)
class PairPotential:
    """Per species pair (a, b) tables of the parameters, and the radial functions."""

    style: str
    epsilon: np.ndarray  # (S, S); yukawa: the amplitude A
    sigma: np.ndarray  # (S, S); yukawa: the contact distance d_ab
    cutoff: np.ndarray  # (S, S) absolute
    exponent: int = 12  # ipl
    z: float = 0.0  # yukawa

    @classmethod
    def of(cls, system: System) -> PairPotential:
        s = len(system.species)
        eps, sig, cut = np.zeros((s, s)), np.zeros((s, s)), np.zeros((s, s))
        if system.potential.style == "yukawa":
            pot = system.yukawa
            d = np.array([sp.diameter for sp in system.species])
            sig = 0.5 * (d[:, None] + d[None, :])
            eps = pot.K * sig * np.exp(pot.z * sig)  # K e^{−z(r−d)}/(r/d) = A e^{−zr}/r
            cut[:] = pot.cutoff
            return cls("yukawa", eps, sig, cut, z=pot.z)
        for p in system.pairs():
            for a, b in ((p.a, p.b), (p.b, p.a)):
                eps[a, b], sig[a, b], cut[a, b] = p.epsilon, p.sigma, p.cutoff
        return cls(system.potential.style, eps, sig, cut, exponent=system.sigma_epsilon.exponent or 12)

    @property
    def longest_cutoff(self) -> float:
        return float(self.cutoff.max())

    @property
    def code(self) -> int:
        return STYLE_CODES[self.style]

    def tables(self) -> tuple:
        """What the kernels take: (style code, ε, σ, r_c, φ(r_c), n, z)."""
        return (self.code, self.epsilon, self.sigma, self.cutoff, self.at_cutoff, int(self.exponent), float(self.z))

    def radial(self, r: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """φ(r), φ'(r), φ''(r) of pairs of species a, b at distances r, zero beyond r_c; φ is shifted to
        0 at r_c (a constant per pair, so that the energy is continuous for the minimiser)."""
        r = np.asarray(r, dtype=np.float64)
        out = np.zeros((3, len(r)))
        _radial_kernel(
            r,
            np.asarray(a, dtype=np.int64),
            np.asarray(b, dtype=np.int64),  # type: ignore[call-arg]
            *self.tables(),
            out,
        )  # (numba's stub miscounts a starred argument)
        return out[0], out[1], out[2]

    @functools.cached_property
    def at_cutoff(self) -> np.ndarray:
        """φ(r_c) per species pair (S, S)."""
        out = np.zeros(self.cutoff.shape)
        for a, b in np.ndindex(*self.cutoff.shape):
            out[a, b] = _phi(
                self.code, self.cutoff[a, b], self.epsilon[a, b], self.sigma[a, b], int(self.exponent), float(self.z)
            )[0]
        return out


STYLE_CODES = {"lj": 0, "ipl": 1, "yukawa": 2}


@numba.njit(cache=True)
def _phi(style, r, eps, sig, n, z):
    """φ, φ', φ'' of one pair (unshifted): the one home of the potentials' formulas."""
    if style == 0:
        s6 = (sig / r) ** 6
        return (
            4 * eps * (s6 * s6 - s6),
            4 * eps * (-12 * s6 * s6 + 6 * s6) / r,
            4 * eps * (156 * s6 * s6 - 42 * s6) / r**2,
        )
    if style == 1:
        phi = eps * (sig / r) ** n
        return phi, -n * phi / r, n * (n + 1) * phi / r**2
    zr = z * r
    phi = eps * np.exp(-zr) / r
    return phi, -phi * (zr + 1) / r, phi * (zr * zr + 2 * zr + 2) / r**2


@numba.njit(cache=True)
def _radial_kernel(r, a, b, style, eps, sig, cut, at_cut, n, z, out):
    for p in range(len(r)):
        s, t = a[p], b[p]
        if r[p] < cut[s, t]:
            phi, d1, d2 = _phi(style, r[p], eps[s, t], sig[s, t], n, z)
            out[0, p], out[1, p], out[2, p] = phi - at_cut[s, t], d1, d2


@numba.njit(cache=True)
def _energy_forces_kernel(pos, i, j, types, h, h_inv, periodic_z, style, eps, sig, cut, at_cut, n, z, forces):
    """Σ φ (shifted) and the forces (accumulated into ``forces``) over the pairs, minimum images in the
    cell with rows h (positions (N, D), D = 2 or 3)."""
    dim = pos.shape[1]
    energy = 0.0
    d = np.zeros(3)
    for p in range(len(i)):
        a, b = i[p], j[p]
        for k in range(3):
            d[k] = pos[b, k] - pos[a, k] if k < dim else 0.0
        ds0 = d[0] * h_inv[0, 0] + d[1] * h_inv[1, 0] + d[2] * h_inv[2, 0]
        ds1 = d[0] * h_inv[0, 1] + d[1] * h_inv[1, 1] + d[2] * h_inv[2, 1]
        ds2 = d[0] * h_inv[0, 2] + d[1] * h_inv[1, 2] + d[2] * h_inv[2, 2]
        dx, dy, dz = minimum_image(ds0, ds1, ds2, h, periodic_z)
        r2 = dx * dx + dy * dy + dz * dz
        s, t = types[a], types[b]
        if r2 >= cut[s, t] * cut[s, t]:
            continue
        r = np.sqrt(r2)
        phi, d1, _ = _phi(style, r, eps[s, t], sig[s, t], n, z)
        energy += phi - at_cut[s, t]
        g = d1 / r  # force on a: +φ'(r) n
        forces[a, 0] += g * dx
        forces[a, 1] += g * dy
        forces[b, 0] -= g * dx
        forces[b, 1] -= g * dy
        if dim == 3:
            forces[a, 2] += g * dz
            forces[b, 2] -= g * dz
    return energy


@dataclass(frozen=True)
class Pairs:
    """Unordered pairs i < j within ``reach`` (their separations at any positions: :func:`separations`)."""

    i: np.ndarray
    j: np.ndarray


def find_pairs(positions: np.ndarray, cell: Cell, reach: float, among: np.ndarray | None = None) -> Pairs:
    """Pairs closer than ``reach``; with ``among`` (a boolean mask), only those with a particle in it
    (then by direct search from those particles, which is what a cluster in a large system needs)."""
    dim = positions.shape[1]
    if among is None:
        r = np.zeros((len(positions), 3))
        r[:, :dim] = positions
        grid = CellGrid.for_cell(cell, reach)
        i, j = pairs_within(cell.wrap(r)[0], grid.h, grid.h_inv, grid.lo, grid.n, grid.periodic_z, reach)
        keep = i < j
        i, j = i[keep], j[keep]
    else:
        h = cell.matrix()
        pos = np.zeros((len(positions), 3))
        pos[:, :dim] = positions
        i, j = _pairs_of(
            pos,
            np.flatnonzero(among),
            np.asarray(among, dtype=np.bool_),
            h,
            np.linalg.inv(h),
            cell.dimension == 3,
            reach * reach,
        )
    return Pairs(i, j)


@numba.njit(cache=True)
def _pairs_of(pos, chosen, among, h, h_inv, periodic_z, reach2):
    """Pairs (i < j) closer than √reach2 with at least one particle in ``chosen`` (direct search:
    the chosen are few, the others many)."""
    found = np.empty((0, 2), dtype=np.int64)
    for fill in range(2):
        count = 0
        for a in chosen:
            for b in range(pos.shape[0]):
                if b == a or (among[b] and b < a):  # a pair of two chosen particles once
                    continue
                d0, d1, d2 = pos[b, 0] - pos[a, 0], pos[b, 1] - pos[a, 1], pos[b, 2] - pos[a, 2]
                ds0 = d0 * h_inv[0, 0] + d1 * h_inv[1, 0] + d2 * h_inv[2, 0]
                ds1 = d0 * h_inv[0, 1] + d1 * h_inv[1, 1] + d2 * h_inv[2, 1]
                ds2 = d0 * h_inv[0, 2] + d1 * h_inv[1, 2] + d2 * h_inv[2, 2]
                dx, dy, dz = minimum_image(ds0, ds1, ds2, h, periodic_z)
                if dx * dx + dy * dy + dz * dz < reach2:
                    if fill:
                        found[count, 0], found[count, 1] = min(a, b), max(a, b)
                    count += 1
        if not fill:
            found = np.empty((count, 2), dtype=np.int64)
    return found[:, 0].copy(), found[:, 1].copy()


def separations(positions: np.ndarray, cell: Cell, pairs: Pairs) -> np.ndarray:
    """The pairs' minimum-image separations at new positions (the pair list is kept)."""
    return cell.minimum_image(positions[pairs.j] - positions[pairs.i])


def energy_and_forces(positions, types, cell: Cell, potential: PairPotential, pairs: Pairs | None = None):
    """Total pair energy (shifted to 0 at the cutoffs) and the forces (N, D)."""
    pairs = pairs or find_pairs(positions, cell, potential.longest_cutoff)
    h = cell.matrix()
    forces = np.zeros((len(positions), positions.shape[1]))
    energy = _energy_forces_kernel(
        np.ascontiguousarray(positions, dtype=np.float64),
        pairs.i,
        pairs.j,  # type: ignore[call-arg]
        np.asarray(types, dtype=np.int64),
        h,
        np.linalg.inv(h),
        cell.dimension == 3,
        *potential.tables(),
        forces,
    )
    return float(energy), forces


def pair_stiffness(d: np.ndarray, r: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """K = φ'' n nᵀ + φ'/r (1 − n nᵀ) of each pair, (n, D, D)."""
    n = d / r[:, None]
    nn = n[:, :, None] * n[:, None, :]
    eye = np.eye(d.shape[1])[None]
    return d2[:, None, None] * nn + (d1 / r)[:, None, None] * (eye - nn)


def hessian(
    positions, types, cell: Cell, potential: PairPotential, free: np.ndarray | None = None, pairs: Pairs | None = None
) -> scipy.sparse.csr_matrix:
    """The Hessian ∂²U/∂r∂r, (D N, D N) sparse, coordinates ordered (particle, axis); with ``free`` (a
    boolean mask) only the block of the free particles, in their order, the others held fixed."""
    n, dim = positions.shape
    pairs = pairs or find_pairs(positions, cell, potential.longest_cutoff, among=free)
    d = separations(positions, cell, pairs)
    r = np.linalg.norm(d, axis=1)
    _, d1, d2 = potential.radial(r, types[pairs.i], types[pairs.j])
    live = (d1 != 0) | (d2 != 0)
    i, j, k = pairs.i[live], pairs.j[live], pair_stiffness(d[live], r[live], d1[live], d2[live])
    index = np.arange(n) if free is None else np.where(free, np.cumsum(free) - 1, -1)
    size = n if free is None else int(free.sum())
    rows, cols, vals = [], [], []
    for a, b, sign in ((i, i, 1.0), (j, j, 1.0), (i, j, -1.0), (j, i, -1.0)):
        ia, ib = index[a], index[b]
        ok = (ia >= 0) & (ib >= 0)
        ra = (ia[ok, None, None] * dim + np.arange(dim)[None, :, None]).repeat(dim, axis=2)
        cb = (ib[ok, None, None] * dim + np.arange(dim)[None, None, :]).repeat(dim, axis=1)
        rows.append(ra.ravel())
        cols.append(cb.ravel())
        vals.append(sign * k[ok].ravel())
    h = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(size * dim, size * dim)
    )
    return h.tocsr()


#: fresh L-BFGS starts when the line search stops short of the force tolerance
RESTARTS = 50
#: at most this many Newton steps to finish, from a largest force of NEWTON_FROM
NEWTON_STEPS = 12
NEWTON_FROM = 1e-3
#: steps off a saddle (along its negative-curvature mode, the largest particle move SADDLE_STEP)
SADDLE_ESCAPES = 3
SADDLE_STEP = 0.05
#: up to this many coordinates a Hessian is solved and factorised dense
DENSE_LIMIT = 6000


@dataclass(frozen=True)
class RelaxResult:
    positions: np.ndarray  # (N, D), the frozen particles where they were
    energy: float
    largest_force: float  # on a free particle, at the end
    iterations: int
    lowest_curvature: float  # the free block's lowest Hessian eigenvalue: > 0 at a minimum
    displacement: float  # largest distance a free particle moved
    overlaps: int  # yukawa: pairs closer than their hard-core contact d_ij after the relaxation


def relax_frozen(
    positions,
    types,
    cell: Cell,
    potential: PairPotential,
    free: np.ndarray,
    force_tolerance: float = 1e-8,
    max_iterations: int = 20000,
) -> RelaxResult:
    """The inherent structure of the ``free`` particles with every other particle frozen (L-BFGS on
    the pair energy, analytic gradient). The pair list is built with a skin and rebuilt if a free
    particle moves more than half of it."""
    positions = np.asarray(positions, dtype=np.float64)
    free = np.asarray(free, dtype=bool)
    if not free.any():
        raise UserError("relax_frozen: no free particles")
    skin = 0.5 * float(potential.sigma.max())  # rebuilt only when a particle moves half of it
    state = {"anchor": positions[free].copy(), "pairs": None}

    def pairs_for(r):
        if state["pairs"] is None or np.abs(r[free] - state["anchor"]).max() > 0.5 * skin:
            state["pairs"] = find_pairs(r, cell, potential.longest_cutoff + skin, among=free)
            state["anchor"] = r[free].copy()
        return state["pairs"]

    def fun(x):
        r = positions.copy()
        r[free] = x.reshape(-1, positions.shape[1])
        e, f = energy_and_forces(r, types, cell, potential, pairs_for(r))
        return e, -f[free].ravel()

    def lbfgs(x, tolerance, used):
        # a force jumps where a pair crosses its cutoff (LJ is truncated, not smoothed): the line search
        # can give up there, and a fresh L-BFGS start from where it stopped goes on
        for _ in range(RESTARTS):
            out = scipy.optimize.minimize(
                fun,
                x,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": max_iterations - used, "gtol": tolerance, "ftol": 0.0, "maxcor": 30},
            )
            progress = np.abs(out.x - x).max()
            x, used = out.x, used + int(out.nit)
            if np.abs(out.jac).max() <= tolerance or used >= max_iterations or progress == 0.0:
                break
        return x, used

    def newton(r):
        # near the minimum Newton steps with the exact Hessian converge quadratically, where L-BFGS
        # works with energy differences at round-off (kept only while they lower the force)
        e, f = energy_and_forces(r, types, cell, potential, pairs_for(r))
        for _ in range(NEWTON_STEPS):
            if np.abs(f[free]).max() <= force_tolerance:
                break
            h = hessian(r, types, cell, potential, free=free, pairs=pairs_for(r))
            try:  # only where H is positive definite: Newton would as gladly converge to a saddle
                if h.shape[0] <= DENSE_LIMIT:
                    step = scipy.linalg.cho_solve(scipy.linalg.cho_factor(h.toarray()), f[free].ravel())
                else:
                    step = scipy.sparse.linalg.spsolve(h.tocsc(), f[free].ravel())
            except (np.linalg.LinAlgError, RuntimeError):
                break
            trial = r.copy()
            trial[free] += step.reshape(-1, positions.shape[1])
            e_t, f_t = energy_and_forces(trial, types, cell, potential, pairs_for(trial))
            if not np.abs(f_t[free]).max() < np.abs(f[free]).max():
                break
            r, e, f = trial, e_t, f_t
        return r, e, f

    def placed(x):
        r = positions.copy()
        r[free] = x.reshape(-1, positions.shape[1])
        return r

    # L-BFGS near the minimum, Newton steps to the tolerance; L-BFGS to the tolerance if Newton stalls
    x, iterations = lbfgs(positions[free].ravel(), NEWTON_FROM, 0)
    r, e, f = newton(placed(x))
    for _ in range(SADDLE_ESCAPES + 1):
        if np.abs(f[free]).max() > force_tolerance:
            x, iterations = lbfgs(r[free].ravel(), force_tolerance, iterations)
            r, e, f = newton(placed(x))
        # a stationary point with a negative curvature is a saddle: step off it along that direction
        lowest, mode = _lowest_curvature(hessian(r, types, cell, potential, free=free, pairs=pairs_for(r)))
        if lowest > 0:
            break
        r = r.copy()
        r[free] += SADDLE_STEP * mode.reshape(-1, positions.shape[1]) / np.abs(mode).max()
        e, f = energy_and_forces(r, types, cell, potential, pairs_for(r))
    overlaps = 0
    if potential.style == "yukawa":
        p = pairs_for(r)
        dist = np.linalg.norm(separations(r, cell, p), axis=1)
        overlaps = int((dist < potential.sigma[types[p.i], types[p.j]]).sum())
    return RelaxResult(
        r,
        e,
        float(np.abs(f[free]).max()),
        iterations,
        lowest,
        float(np.linalg.norm(r[free] - positions[free], axis=1).max()),
        overlaps,
    )


def _lowest_curvature(h) -> tuple[float, np.ndarray]:
    """The lowest eigenvalue of a symmetric H and its eigenvector."""
    if h.shape[0] <= DENSE_LIMIT:
        w, v = scipy.linalg.eigh(h.toarray(), subset_by_index=[0, 0])
    else:
        w, v = scipy.sparse.linalg.eigsh(h, k=1, which="SA")
    return float(w[0]), v[:, 0]
