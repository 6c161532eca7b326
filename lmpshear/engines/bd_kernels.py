"""Numba kernels of the Brownian-dynamics engine (hard-sphere Yukawa colloids, Lees–Edwards shear).

Units: d_0 = d_b (big diameter), k_BT = 1, τ_0 = d_b²/D_0 with D_0 the big particle's dilute
self-diffusion, so each particle's mobility is μ_i = D_i (D_i in units of D_0).

Lees–Edwards boundaries are the deforming triclinic cell of :mod:`lmpshear.neighbors` (tilt
xy = γ̇ t L_y, flipped by −L_x when it passes L_x/2, as LAMMPS does): the same lattice of images.

Step (overdamped Euler–Maruyama, then the potential-free hard-core step of Heyes & Melrose):

    r_i ← r_i + D_i F_i dt + √(2 D_i dt) ξ_i + γ̇ (y_i − y_lo) dt e_x

followed by :func:`resolve_overlaps`: every overlapping pair (r < d_ij) is moved apart along its
line of centres, each particle by half the overlap; the moves of all pairs are applied together
(Jacobi sweeps, so the kernel is parallel and its result independent of the thread count) and
repeated until no pair overlaps by more than ``tol``·d_ij.

Yukawa: V(r) = K exp[−z (r − d_ij)]/(r/d_ij) for d_ij ≤ r < r_c, zero beyond (truncated, not
shifted); inside d_ij (which the hard core removes before the next force evaluation) the force is
taken at contact. Per-particle virial shear stress × volume, as in the LAMMPS store:
S_i = −½ Σ_j x_ij f_ij,y (r_ij = r_i − r_j, f_ij the force on i), so Σ_i S_i / V = σ_xy^vir.
"""

from __future__ import annotations

import numba
import numpy as np

from lmpshear.neighbors import bin_of, binned, fractional, minimum_image


@numba.njit(cache=True, inline="always")
def _yukawa_pair(d2, dij, K, z):
    """(|F|/r, V) of one pair at squared distance d2 (the force on i is |F|/r · r_ij)."""
    dist = np.sqrt(d2)
    rr = max(dist, dij)  # inside contact: the force at contact (the hard core removes such pairs)
    v = K * np.exp(-z * (rr - dij)) * dij / rr
    return v * (z + 1.0 / rr) / dist, v


@numba.njit(parallel=True, cache=True)
def yukawa_forces_listed(r, diameter, h, h_inv, lo, periodic_z, offsets, partners, K, z, cutoff):
    """Forces (N, 3), per-particle virial shear stress × volume S_i (N,) and the potential energy,
    over a Verlet list (CSR: the partners of i are partners[offsets[i]:offsets[i + 1]])."""
    s = fractional(r, lo, h_inv)
    N = r.shape[0]
    force = np.zeros((N, 3))
    virial = np.zeros(N)
    energy = np.zeros(N)
    rc2 = cutoff * cutoff
    for i in numba.prange(N):
        fx = fy = fz = w = e = 0.0
        for m in range(offsets[i], offsets[i + 1]):
            j = partners[m]
            dx, dy, dz = minimum_image(s[i, 0] - s[j, 0], s[i, 1] - s[j, 1], s[i, 2] - s[j, 2], h, periodic_z)
            d2 = dx * dx + dy * dy + dz * dz
            if d2 >= rc2:
                continue
            f, v = _yukawa_pair(d2, 0.5 * (diameter[i] + diameter[j]), K, z)
            fx += f * dx
            fy += f * dy
            fz += f * dz
            w -= 0.5 * dx * f * dy
            e += 0.5 * v
        force[i, 0], force[i, 1], force[i, 2] = fx, fy, fz
        virial[i] = w
        energy[i] = e
    return force, virial, energy.sum()


@numba.njit(parallel=True, cache=True)
def _overlap_moves(r, diameter, h, h_inv, lo, n, periodic_z, tol):
    """Each particle's half-overlap pushes, the worst relative overlap, and the pushes' virial."""
    s, order, start, table = binned(r, lo, h_inv, n)
    N = r.shape[0]
    move = np.zeros((N, 3))
    worst = np.zeros(N)
    virial = np.zeros(N)  # −½ Σ_j x_ij Δ_ij,y (a displacement; the caller divides by D_i dt)
    for i in numba.prange(N):
        here = bin_of(s[i, 0], s[i, 1], s[i, 2], n)
        for k in range(table.shape[1]):
            c = table[here, k]
            for m in range(start[c], start[c + 1]):
                j = order[m]
                if j == i:
                    continue
                dij = 0.5 * (diameter[i] + diameter[j])
                dx, dy, dz = minimum_image(s[i, 0] - s[j, 0], s[i, 1] - s[j, 1], s[i, 2] - s[j, 2], h, periodic_z)
                d2 = dx * dx + dy * dy + dz * dz
                if d2 >= dij * dij:
                    continue
                dist = np.sqrt(d2)
                overlap = (dij - dist) / dij
                if overlap > worst[i]:
                    worst[i] = overlap
                if overlap <= tol:
                    continue
                push = 0.5 * (dij - dist) / max(dist, 1e-12 * dij)
                move[i, 0] += push * dx
                move[i, 1] += push * dy
                move[i, 2] += push * dz
                virial[i] -= 0.5 * dx * push * dy
    return move, worst.max(), virial


def resolve_overlaps(r, diameter, grid, tol: float = 1e-6, max_sweeps: int = 10000):
    """Move overlapping pairs apart until none overlaps by more than tol·d_ij (in place).

    Returns (sweeps, per-particle collision virial displacement sum). ``grid`` is a CellGrid whose
    bins are at least the largest diameter wide."""
    total = np.zeros(r.shape[0])
    for sweep in range(max_sweeps):
        move, worst, virial = _overlap_moves(r, diameter, grid.h, grid.h_inv, grid.lo, grid.n, grid.periodic_z, tol)
        if worst <= tol:
            return sweep, total
        r += move
        total += virial
    raise RuntimeError(f"hard-core overlaps not resolved after {max_sweeps} sweeps (worst {worst:.3g})")


@numba.njit(parallel=True, cache=True)
def brownian_move(r, force, diffusion, dt, rate, y_lo, noise, dimension):
    """One Euler–Maruyama step with the affine flow; ``noise`` is (N, 3) standard normal."""
    for i in numba.prange(r.shape[0]):
        amp = np.sqrt(2.0 * diffusion[i] * dt)
        streaming = rate * (r[i, 1] - y_lo) * dt
        for k in range(dimension):
            r[i, k] += diffusion[i] * force[i, k] * dt + amp * noise[i, k]
        r[i, 0] += streaming
