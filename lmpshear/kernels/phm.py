"""Pseudo-harmonic modes (PHM): soft, localised modes of a relaxed configuration, the paper's STZs
(eq. 15–18; Richard, Kapteijns, Giannini, Manning and Lerner, PRL 126, 015501 (2021)).

A PHM π is a local minimum of C(z) = (H:zz)² / Σ_⟨ij⟩ (z_ij·z_ij)², z_ij = z_j − z_i over interacting
pairs. C is stationary where H z ∝ ζ(z), ζ_k = Σ_⟨ij⟩ (δ_jk − δ_ik)(z_ij·z_ij) z_ij, so PHMs are the
fixed points of F(π) = H⁻¹ζ(π) / |H⁻¹ζ(π)| (eq. 17–18, since ζ·H⁻²·ζ = |H⁻¹ζ|²). Only H is needed:
one factorisation, then a solve per iteration. Frozen particles (z = 0) still count in the pairs
they share with free ones. With ζ(z) = z the iteration is inverse iteration: the lowest eigenvector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from lmpshear.kernels import hessian
from lmpshear.kernels.hessian import DENSE_LIMIT, RelaxResult


class Solver:
    """x = H⁻¹ b for one symmetric positive-definite H, factorised once."""

    def __init__(self, h):
        self.size = h.shape[0]
        if self.size <= DENSE_LIMIT:
            dense = h.toarray() if scipy.sparse.issparse(h) else np.asarray(h)
            self._solve = lambda b, f=scipy.linalg.cho_factor(dense): scipy.linalg.cho_solve(f, b)
        else:
            self._solve = scipy.sparse.linalg.factorized(scipy.sparse.csc_matrix(h))

    def __call__(self, b: np.ndarray) -> np.ndarray:
        return self._solve(b)


def _padded(z: np.ndarray) -> np.ndarray:
    """z with an extra zero row: pair indices −1 (a frozen partner) read it."""
    return np.vstack([z, np.zeros((1, z.shape[1]))])


def zeta(z: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """ζ(z) (n, D) over pairs (i, j) of free-particle indices (−1: a frozen partner, z = 0 there)."""
    zp = _padded(np.asarray(z, dtype=np.float64))
    n = len(zp)
    out = np.zeros_like(zp)
    _zeta_kernel(zp, np.asarray(i) % n, np.asarray(j) % n, out)  # index −1: the padding row, dropped
    return out[:-1]


@numba.njit(cache=True)
def _zeta_kernel(z, i, j, out):
    dim = z.shape[1]
    for p in range(len(i)):
        a, b = i[p], j[p]
        s = 0.0
        for k in range(dim):
            d = z[b, k] - z[a, k]
            s += d * d
        for k in range(dim):
            w = s * (z[b, k] - z[a, k])
            out[b, k] += w
            out[a, k] -= w


def _quartic(z, i, j) -> float:
    zp = _padded(z)
    zij = zp[j] - zp[i]
    return float(((zij * zij).sum(axis=1) ** 2).sum())


def cost(z: np.ndarray, h, i, j) -> float:
    """C(z) of eq. 15, z (n, D) over the free particles."""
    flat = z.ravel()
    return float((flat @ (h @ flat)) ** 2 / _quartic(z, i, j))


def cost_gradient(z: np.ndarray, h, i, j) -> np.ndarray:
    """∇C = 4 [(H:zz) Q H z − (H:zz)² ζ(z)] / Q², Q = Σ (z_ij·z_ij)²."""
    flat = z.ravel()
    hz = h @ flat
    k = flat @ hz
    q = _quartic(z, i, j)
    return (4 * (k * q * hz - k * k * zeta(z, i, j).ravel()) / q**2).reshape(z.shape)


@dataclass(frozen=True)
class Mode:
    """One converged PHM over the free particles, normalised (|π| = 1)."""

    pi: np.ndarray  # (n_free, D)
    stiffness: float  # κ = H:ππ
    iterations: int
    converged: bool

    @property
    def participation(self) -> float:
        """(Σ|π_k|²)² / (n Σ|π_k|⁴): 1 for a uniform mode, ~1/n for one particle."""
        a2 = (self.pi * self.pi).sum(axis=1)
        return float(a2.sum() ** 2 / (len(a2) * (a2 * a2).sum()))


def iterate(h, solve, i, j, start: np.ndarray, tol: float = 1e-10, max_iterations: int = 5000, field=zeta) -> Mode:
    """Iterate π ← H⁻¹ field(π) / |H⁻¹ field(π)| from ``start`` (n, D) until it moves less than
    ``tol``. ``field`` is ζ; with ``lambda z, i, j: z`` this is inverse iteration."""
    pi = start / np.linalg.norm(start)
    change = float("inf")
    for it in range(1, max_iterations + 1):  # noqa: B007  (it: the iterations done, returned)
        y = np.asarray(solve(field(pi, i, j).ravel())).reshape(pi.shape)
        new = y / np.linalg.norm(y)
        change = float(np.linalg.norm(new - pi))
        pi = new
        if change < tol:
            break
    flat = pi.ravel()
    return Mode(pi, float(flat @ (h @ flat)), it, bool(change < tol))


def lowest_modes(h, k: int, solve=None) -> np.ndarray:
    """The k lowest eigenvectors of H, (k, size)."""
    size = h.shape[0]
    k = min(k, size - 2)
    if size <= DENSE_LIMIT:
        dense = h.toarray() if scipy.sparse.issparse(h) else np.asarray(h)
        return scipy.linalg.eigh(dense, subset_by_index=[0, k - 1])[1].T
    op = scipy.sparse.linalg.LinearOperator(h.shape, matvec=solve or Solver(h), dtype=np.float64)
    return scipy.sparse.linalg.eigsh(h, k=k, sigma=0, OPinv=op, which="LM")[1].T


def search(
    h,
    i,
    j,
    dimension: int,
    starts: int = 12,
    random_starts: int = 0,
    seed: int = 0,
    tol: float = 1e-10,
    duplicate_overlap: float = 0.95,
) -> list[Mode]:
    """PHMs from the ``starts`` lowest eigenvectors of H and ``random_starts`` random vectors, the
    unconverged dropped and duplicates (|π_a·π_b| > ``duplicate_overlap``) removed, softest first."""
    solve = Solver(h)
    size = h.shape[0]
    vectors = list(lowest_modes(h, starts, solve)) if starts else []
    vectors += list(np.random.default_rng(seed).normal(size=(random_starts, size)))
    modes: list[Mode] = []
    for v in vectors:
        m = iterate(h, solve, i, j, v.reshape(-1, dimension), tol=tol)
        if m.converged and all(abs((m.pi * o.pi).sum()) < duplicate_overlap for o in modes):
            modes.append(m)
    return sorted(modes, key=lambda m: m.stiffness)


@dataclass(frozen=True)
class Core:
    """Where a mode lives and how it deforms there."""

    particle: int  # index (among all particles) of the largest |π_k|
    position: np.ndarray  # (D,)
    strain: np.ndarray  # (D, D) symmetric local strain of π around the core (sign: ε_xy ≥ 0)
    extension_angle: float  # degrees in [0, 180): the extensional axis of the shear-plane strain, from +x
    touches_frozen: bool  # a frozen particle lies within the core radius: the cluster edge shapes the mode

    def as_dict(self) -> dict:
        return {
            "particle": self.particle,
            "position": self.position.tolist(),
            "strain": self.strain.tolist(),
            "extension_angle": self.extension_angle,
            "touches_frozen": self.touches_frozen,
        }


def core_of(mode: Mode, positions: np.ndarray, free: np.ndarray, cell, radius: float) -> Core:
    """The mode's core and the best affine strain of π over the free particles within ``radius`` of
    it (least squares of π_j − π_c ≈ F (r_j − r_c); ε = sym F). A mode and its negative are one
    mode: the sign is fixed so that the core shears with the flow (ε_xy ≥ 0), and the extensional
    axis is then read in the shear plane (an STZ loaded by the flow extends near 45°)."""
    dim = positions.shape[1]
    index = np.where(free)[0]
    a2 = (mode.pi * mode.pi).sum(axis=1)
    c = int(np.argmax(a2))
    d = cell.minimum_image(positions - positions[index[c]])
    near = np.linalg.norm(d[index], axis=1) < radius
    dr, dpi = d[index][near], mode.pi[near] - mode.pi[c]
    f = np.linalg.lstsq(dr, dpi, rcond=None)[0].T  # π_j − π_c = F dr_j
    eps = 0.5 * (f + f.T)
    if eps[0, 1] < 0:
        eps = -eps
    w, v = np.linalg.eigh(eps[:2, :2])
    axis = v[:, np.argmax(w)]
    angle = float(np.degrees(np.arctan2(axis[1], axis[0])) % 180.0)
    touches = bool((np.linalg.norm(d[~free], axis=1) < radius).any())
    return Core(int(index[c]), positions[index[c]].copy(), eps[:dim, :dim], angle, touches)


class NotAMinimum(ValueError):
    """The frozen relaxation did not reach a minimum: PHMs are defined about one."""


@dataclass(frozen=True)
class ClusterModes:
    """The PHMs of one cluster about its inherent structure (exterior frozen), softest first."""

    relaxed: RelaxResult
    modes: list[Mode]
    cores: list[Core]
    free: np.ndarray  # the particles that relaxed (ascending), one per row of each mode: members, and a shell


def within(points: np.ndarray, of: np.ndarray, cell, distance: float, chunk: int = 2048) -> np.ndarray:
    """Which ``points`` lie within ``distance`` of any of ``of`` (minimum image; brute force in chunks)."""
    out = np.zeros(len(points), dtype=bool)
    for lo in range(0, len(points), chunk):
        d = cell.minimum_image(points[lo : lo + chunk, None, :] - of[None, :, :])
        out[lo : lo + chunk] = ((d * d).sum(axis=-1) <= distance * distance).any(axis=1)
    return out


def cluster_modes(
    positions: np.ndarray,
    types: np.ndarray,
    cell,
    potential,
    members: np.ndarray,
    starts: int = 12,
    core_radius: float = 1.5,
    tol: float = 1e-10,
    shell: float = 0.0,
) -> ClusterModes:
    """Freeze everything but ``members`` (indices), relax them to their inherent structure, and find
    the PHMs of the restricted Hessian from its ``starts`` lowest eigenvectors. ``shell`` > 0: the
    particles within that distance of a member relax and vibrate too (the frozen exterior begins
    that much farther out), and only the modes whose core is a member are kept, the cluster's own."""
    from dataclasses import replace

    members = np.asarray(members)
    # only the frozen particles that can reach a free one matter: those within the cluster's radius
    # plus the shell and the cutoff (and room for the relaxation) of its centre; the rest is skipped
    d = cell.minimum_image(positions - positions[members[0]])
    centre = d[members].mean(axis=0)
    dist = np.linalg.norm(cell.minimum_image(d - centre), axis=1)
    near = np.flatnonzero(dist <= dist[members].max() + shell + potential.longest_cutoff + 1.0)
    member = np.isin(near, members)
    free = member | within(d[near], d[members], cell, shell) if shell > 0 else member
    sub = positions[near]
    relaxed = hessian.relax_frozen(sub, types[near], cell, potential, free)
    if relaxed.lowest_curvature <= 0:
        raise NotAMinimum(
            f"the relaxation ended where H has a curvature {relaxed.lowest_curvature:.3g} <= 0 "
            f"(largest force {relaxed.largest_force:.2g}): no PHMs about a saddle"
        )
    pairs = hessian.find_pairs(relaxed.positions, cell, potential.longest_cutoff, among=free)
    h = hessian.hessian(relaxed.positions, types[near], cell, potential, free=free, pairs=pairs)
    index = np.where(free, np.cumsum(free) - 1, -1)
    modes = search(h, index[pairs.i], index[pairs.j], positions.shape[1], starts=starts, tol=tol)
    cores = [core_of(m, relaxed.positions, free, cell, core_radius) for m in modes]
    kept = [k for k, c in enumerate(cores) if member[c.particle]]
    full = positions.copy()
    full[near] = relaxed.positions
    return ClusterModes(
        replace(relaxed, positions=full),
        [modes[k] for k in kept],
        [replace(cores[k], particle=int(near[cores[k].particle])) for k in kept],
        near[free],
    )
