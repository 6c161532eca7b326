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

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg

from lmpshear.cell import Cell
from lmpshear.errors import UserError
from lmpshear.neighbors import CellGrid, pairs_within
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
    def of(cls, system: System) -> "PairPotential":
        pot, s = system.potential, len(system.species)
        eps, sig, cut = np.zeros((s, s)), np.zeros((s, s)), np.zeros((s, s))
        if pot.style == "yukawa":
            d = np.array([sp.diameter for sp in system.species])
            sig = 0.5 * (d[:, None] + d[None, :])
            eps = pot.K * sig * np.exp(pot.z * sig)  # K e^{−z(r−d)}/(r/d) = A e^{−zr}/r
            cut[:] = pot.cutoff
            return cls("yukawa", eps, sig, cut, z=pot.z)
        for p in system.pairs():
            for a, b in ((p.a, p.b), (p.b, p.a)):
                eps[a, b], sig[a, b], cut[a, b] = p.epsilon, p.sigma, p.cutoff
        return cls(pot.style, eps, sig, cut, exponent=pot.exponent or 12)

    @property
    def longest_cutoff(self) -> float:
        return float(self.cutoff.max())

    def radial(self, r: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """φ(r), φ'(r), φ''(r) of pairs of species a, b at distances r, zero beyond r_c; φ is shifted to
        0 at r_c (a constant per pair, so that the energy is continuous for the minimiser)."""
        phi, d1, d2 = self._unshifted(r, a, b)
        phi_c = self._unshifted(self.cutoff[a, b], a, b)[0]
        inside = r < self.cutoff[a, b]
        return np.where(inside, phi - phi_c, 0.0), np.where(inside, d1, 0.0), np.where(inside, d2, 0.0)

    def _unshifted(self, r, a, b):
        eps, sig = self.epsilon[a, b], self.sigma[a, b]
        if self.style == "lj":
            s6 = (sig / r) ** 6
            phi = 4 * eps * (s6 * s6 - s6)
            d1 = 4 * eps * (-12 * s6 * s6 + 6 * s6) / r
            d2 = 4 * eps * (156 * s6 * s6 - 42 * s6) / r**2
        elif self.style == "ipl":
            n = self.exponent
            phi = eps * (sig / r) ** n
            d1 = -n * phi / r
            d2 = n * (n + 1) * phi / r**2
        else:
            zr = self.z * r
            phi = eps * np.exp(-zr) / r
            d1 = -phi * (zr + 1) / r
            d2 = phi * (zr * zr + 2 * zr + 2) / r**2
        return phi, d1, d2


@dataclass(frozen=True)
class Pairs:
    """Unordered pairs i < j within ``reach`` and their minimum-image separations d = r_j − r_i (n, D)."""

    i: np.ndarray
    j: np.ndarray
    d: np.ndarray


def find_pairs(positions: np.ndarray, cell: Cell, reach: float, among: np.ndarray | None = None) -> Pairs:
    """Pairs closer than ``reach``; with ``among`` (a boolean mask), only those with a particle in it."""
    dim = positions.shape[1]
    r = np.zeros((len(positions), 3))
    r[:, :dim] = positions
    grid = CellGrid.for_cell(cell, reach)
    r_in = cell.wrap(r)[0]
    i, j = pairs_within(r_in, grid.h, grid.h_inv, grid.lo, grid.n, grid.periodic_z, reach)
    keep = i < j
    if among is not None:
        keep &= among[i] | among[j]
    i, j = i[keep], j[keep]
    d = cell.minimum_image(r[j] - r[i])[:, :dim]
    return Pairs(i, j, d)


def separations(positions: np.ndarray, cell: Cell, pairs: Pairs) -> np.ndarray:
    """The pairs' minimum-image separations at new positions (the pair list is kept)."""
    dim = positions.shape[1]
    d = np.zeros((len(pairs.i), 3))
    d[:, :dim] = positions[pairs.j] - positions[pairs.i]
    return cell.minimum_image(d)[:, :dim]


def energy_and_forces(positions, types, cell: Cell, potential: PairPotential, pairs: Pairs | None = None):
    """Total pair energy and the forces (N, D)."""
    pairs = pairs or find_pairs(positions, cell, potential.longest_cutoff)
    d = separations(positions, cell, pairs)
    r = np.linalg.norm(d, axis=1)
    phi, d1, _ = potential.radial(r, types[pairs.i], types[pairs.j])
    f = (d1 / r)[:, None] * d  # φ'(r) n
    forces = np.zeros_like(positions, dtype=np.float64)
    np.add.at(forces, pairs.i, f)
    np.add.at(forces, pairs.j, -f)
    return float(phi.sum()), forces


def pair_stiffness(d: np.ndarray, r: np.ndarray, d1: np.ndarray, d2: np.ndarray) -> np.ndarray:
    """K = φ'' n nᵀ + φ'/r (1 − n nᵀ) of each pair, (n, D, D)."""
    n = d / r[:, None]
    nn = n[:, :, None] * n[:, None, :]
    eye = np.eye(d.shape[1])[None]
    return d2[:, None, None] * nn + (d1 / r)[:, None, None] * (eye - nn)


def hessian(positions, types, cell: Cell, potential: PairPotential, free: np.ndarray | None = None,
            pairs: Pairs | None = None) -> scipy.sparse.csr_matrix:
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
    h = scipy.sparse.coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                                shape=(size * dim, size * dim))
    return h.tocsr()


#: fresh L-BFGS starts when the line search stops short of the force tolerance
RESTARTS = 50
#: at most this many Newton steps to finish
NEWTON_STEPS = 8


@dataclass(frozen=True)
class RelaxResult:
    positions: np.ndarray  # (N, D), the frozen particles where they were
    energy: float
    largest_force: float  # on a free particle, at the end
    iterations: int
    displacement: float  # largest distance a free particle moved
    overlaps: int  # yukawa: pairs closer than their hard-core contact d_ij after the relaxation


def relax_frozen(positions, types, cell: Cell, potential: PairPotential, free: np.ndarray,
                 force_tolerance: float = 1e-8, max_iterations: int = 20000) -> RelaxResult:
    """The inherent structure of the ``free`` particles with every other particle frozen (L-BFGS on
    the pair energy, analytic gradient). The pair list is built with a skin and rebuilt if a free
    particle moves more than half of it."""
    positions = np.asarray(positions, dtype=np.float64)
    free = np.asarray(free, dtype=bool)
    if not free.any():
        raise UserError("relax_frozen: no free particles")
    skin = 0.3 * float(potential.sigma.min())
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

    # a force jumps where a pair crosses its cutoff (LJ is truncated, not smoothed): the line search can
    # give up there, and a fresh L-BFGS start from where it stopped goes on
    x, iterations = positions[free].ravel(), 0
    for _ in range(RESTARTS):
        out = scipy.optimize.minimize(fun, x, jac=True, method="L-BFGS-B",
                                      options={"maxiter": max_iterations - iterations, "gtol": force_tolerance,
                                               "ftol": 0.0, "maxcor": 30})
        progress = np.abs(out.x - x).max()
        x, iterations = out.x, iterations + int(out.nit)
        if np.abs(out.jac).max() <= force_tolerance or iterations >= max_iterations or progress == 0.0:
            break
    r = positions.copy()
    r[free] = x.reshape(-1, positions.shape[1])
    e, f = energy_and_forces(r, types, cell, potential, pairs_for(r))
    # near the minimum the energy differences L-BFGS works with reach round-off before the forces are
    # small: Newton steps with the exact Hessian finish quadratically (kept only while they help)
    for _ in range(NEWTON_STEPS):
        if np.abs(f[free]).max() <= force_tolerance:
            break
        h = hessian(r, types, cell, potential, free=free, pairs=pairs_for(r))
        try:
            step = scipy.sparse.linalg.spsolve(h.tocsc(), f[free].ravel())
        except RuntimeError:
            break
        trial = r.copy()
        trial[free] += step.reshape(-1, positions.shape[1])
        e_t, f_t = energy_and_forces(trial, types, cell, potential, pairs_for(trial))
        if not np.abs(f_t[free]).max() < np.abs(f[free]).max():
            break
        r, e, f = trial, e_t, f_t
    overlaps = 0
    if potential.style == "yukawa":
        p = pairs_for(r)
        dist = np.linalg.norm(separations(r, cell, p), axis=1)
        overlaps = int((dist < potential.sigma[types[p.i], types[p.j]]).sum())
    return RelaxResult(r, e, float(np.abs(f[free]).max()), iterations,
                       float(np.linalg.norm(r[free] - positions[free], axis=1).max()), overlaps)
