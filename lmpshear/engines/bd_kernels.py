"""Numba kernels of the Brownian-dynamics engine (hard-sphere Yukawa colloids, Lees–Edwards shear).

Units: d_0 = d_b (big diameter), τ_0 = d_b²/D_0 with D_0 the big particle's dilute self-diffusion;
particle i has diffusion D_i and mobility μ_i = D_i / k_BT.

Step (overdamped Euler–Maruyama with the affine flow, then the potential-free hard core)::

    δ_i = μ_i F_i dt + √(2 D_i dt) ξ_i          (the non-affine move)
    r_i ← r_i + δ_i + γ̇ y_i dt e_x               (y from the cell's bottom, y_lo = 0)

Hard core (Heyes & Melrose; Foss & Brady): every pair closer than d_ij is moved apart along its
line of centres by the overlap, shared in proportion to the mobilities (so the implied contact
forces Δr_i/(μ_i dt) are equal and opposite); all pairs' moves are applied together (Jacobi
sweeps) and repeated until no pair overlaps by more than tol·d_ij.

Pairs. Both pair lists are half lists (i < j) in CSR form, built in a wrapped configuration with
each pair's lattice image n = (n_a, n_b, n_c): the separation is r_i − r_j − n·H(t), where H(t)'s
tilt grows continuously from its value at the build (it is not flipped), so the list needs no
rebuild at a flip and positions are not re-wrapped between builds.

Yukawa, V(r) = K exp[−z (r − d_ij)]/(r/d_ij) = A_ij e^{−z r}/r with A_ij = K d_ij e^{z d_ij}, which
factorises as ½ K (d_i + d_j) a_i a_j, a_i = e^{z d_i/2}. Force and energy come from tables of
e^{−zr}(z + 1/r)/r² and e^{−zr}/r, linear in r² (``TABLE_SIZE`` points, relative error < 1e-6
above r_lo = 0.75 d_min, exact formula below). Per-particle virial shear stress × volume, as in the
LAMMPS store: S_i = −½ Σ_j x_ij f_ij,y (f_ij the force on i), so Σ_i S_i / V = σ_xy^vir.

Determinism. The force loop runs over ``CHUNKS`` ranges of i (equal pair counts, fixed by the list),
each into its own buffer, summed in chunk order: the result is bit-identical for any number of
threads.
"""

from __future__ import annotations

import numba
import numpy as np

from lmpshear.neighbors import bin_of, binned

CHUNKS = 8
TABLE_SIZE = 1 << 16


def yukawa_tables(z: float, cutoff: float, r_lo: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(force table, energy table, r_lo², 1/spacing) on r² ∈ [r_lo², cutoff²]."""
    r2 = np.linspace(r_lo * r_lo, cutoff * cutoff, TABLE_SIZE + 1)
    r2 = np.append(r2, r2[-1] + (r2[1] - r2[0]))  # one point past the end for the interpolation
    r = np.sqrt(r2)
    e = np.exp(-z * r) / r
    return e * (z + 1.0 / r) / r, e, float(r2[0]), float(1.0 / (r2[1] - r2[0]))


@numba.njit(cache=True, inline="always")
def _nearest_image(ds):
    """(ds − n, n) with n the integer nearest to a fractional difference ds ∈ (−1, 1)."""
    if ds > 0.5:
        return ds - 1.0, 1
    if ds < -0.5:
        return ds + 1.0, -1
    return ds, 0


@numba.njit(cache=True, inline="always")
def _scan(i, s, start, table, n, h, diameter, periodic_z, reach2, skin, fill, at_y, part_y, img_y, at_c, part_c,
          img_c):
    """Visit the partners j > i of particle i (later bins only); count them, or with ``fill`` store
    them from positions at_y (Yukawa list) and at_c (contact list). Returns the end positions."""
    here = bin_of(s[i, 0], s[i, 1], s[i, 2], n)
    for k in range(table.shape[1]):
        c = table[here, k]
        if c < here:
            continue
        for j in range(max(start[c], i + 1), start[c + 1]):
            a0, n0 = _nearest_image(s[i, 0] - s[j, 0])
            a1, n1 = _nearest_image(s[i, 1] - s[j, 1])
            a2, n2 = _nearest_image(s[i, 2] - s[j, 2]) if periodic_z else (0.0, 0)
            dx = a0 * h[0, 0] + a1 * h[1, 0] + a2 * h[2, 0]
            dy = a0 * h[0, 1] + a1 * h[1, 1] + a2 * h[2, 1]
            dz = a0 * h[0, 2] + a1 * h[1, 2] + a2 * h[2, 2]
            d2 = dx * dx + dy * dy + dz * dz
            if d2 >= reach2:
                continue
            if fill:
                part_y[at_y] = j
                img_y[at_y, 0], img_y[at_y, 1], img_y[at_y, 2] = n0, n1, n2
            at_y += 1
            near = 0.5 * (diameter[i] + diameter[j]) + skin
            if d2 < near * near:
                if fill:
                    part_c[at_c] = j
                    img_c[at_c, 0], img_c[at_c, 1], img_c[at_c, 2] = n0, n1, n2
                at_c += 1
    return at_y, at_c


@numba.njit(parallel=True, cache=True)
def _count_pairs(s, start, table, n, h, diameter, periodic_z, reach2, skin, counts_y, counts_c):
    none_i = np.empty(0, dtype=np.int32)
    none_n = np.empty((0, 3), dtype=np.int8)
    for i in numba.prange(s.shape[0]):
        counts_y[i + 1], counts_c[i + 1] = _scan(i, s, start, table, n, h, diameter, periodic_z, reach2, skin,
                                                 False, 0, none_i, none_n, 0, none_i, none_n)


@numba.njit(parallel=True, cache=True)
def _fill_pairs(s, start, table, n, h, diameter, periodic_z, reach2, skin, off_y, part_y, img_y, off_c, part_c,
                img_c):
    for i in numba.prange(s.shape[0]):
        _scan(i, s, start, table, n, h, diameter, periodic_z, reach2, skin, True, off_y[i], part_y, img_y,
              off_c[i], part_c, img_c)


@numba.njit(cache=True)
def build_pair_lists(r, diameter, lo, h, h_inv, n, divisions, periodic_z, reach, skin):
    """Half lists (i < j) of the pairs within ``reach`` (Yukawa) and within d_ij + skin (contacts).

    Each list is CSR (offsets, partners, images): the partners of i are partners[offsets[i]:
    offsets[i + 1]], and images (int8, (M, 3)) give the separation r_i − r_j − n·H. The particles
    must be sorted by bin of this grid: then every j > i lies in i's bin or a later one, and the
    earlier bins are skipped unread (half the work)."""
    s, order, start, table = binned(r, lo, h_inv, n, divisions)
    N = r.shape[0]
    for k in range(N):
        if order[k] != k:
            raise ValueError("build_pair_lists: particles are not sorted by bin")
    off_y = np.zeros(N + 1, dtype=np.int64)
    off_c = np.zeros(N + 1, dtype=np.int64)
    _count_pairs(s, start, table, n, h, diameter, periodic_z, reach * reach, skin, off_y, off_c)
    off_y = np.cumsum(off_y)
    off_c = np.cumsum(off_c)
    part_y = np.empty(off_y[N], dtype=np.int32)
    part_c = np.empty(off_c[N], dtype=np.int32)
    img_y = np.empty((off_y[N], 3), dtype=np.int8)
    img_c = np.empty((off_c[N], 3), dtype=np.int8)
    _fill_pairs(s, start, table, n, h, diameter, periodic_z, reach * reach, skin, off_y, part_y, img_y, off_c,
                part_c, img_c)
    return off_y, part_y, img_y, off_c, part_c, img_c


@numba.njit(cache=True, inline="always")
def _separation(r, i, j, images, m, h):
    n0, n1, n2 = images[m, 0], images[m, 1], images[m, 2]
    dx = r[i, 0] - r[j, 0] - (n0 * h[0, 0] + n1 * h[1, 0])
    dy = r[i, 1] - r[j, 1] - n1 * h[1, 1]
    dz = r[i, 2] - r[j, 2] - n2 * h[2, 2]
    return dx, dy, dz


@numba.njit(parallel=True, cache=True, fastmath=True)
def yukawa_forces(r, diameter, amp, offsets, partners, images, h, ftab, vtab, r2_lo, inv_dr2, K, z, cutoff,
                  full):
    """Forces (N, 3); with ``full`` also S_i (N,), the energy and Σ_pairs r_ij·f_ij (else zeros)."""
    N = r.shape[0]
    rc2 = cutoff * cutoff
    bounds = np.searchsorted(offsets, np.linspace(0, offsets[N], CHUNKS + 1))  # equal pair counts
    bounds[0], bounds[CHUNKS] = 0, N
    fbuf = np.zeros((CHUNKS, N, 3))
    wbuf = np.zeros((CHUNKS, N)) if full else np.zeros((CHUNKS, 1))
    energy = np.zeros(CHUNKS)
    trace = np.zeros(CHUNKS)
    for c in numba.prange(CHUNKS):
        f = fbuf[c]
        w = wbuf[c]
        for i in range(bounds[c], bounds[c + 1]):
            fx = fy = fz = 0.0
            ai = 0.5 * K * amp[i]
            di = diameter[i]
            for m in range(offsets[i], offsets[i + 1]):
                j = partners[m]
                dx, dy, dz = _separation(r, i, j, images, m, h)
                d2 = dx * dx + dy * dy + dz * dz
                if d2 >= rc2:
                    continue
                a = ai * amp[j] * (di + diameter[j])
                if d2 >= r2_lo:
                    x = (d2 - r2_lo) * inv_dr2
                    k = int(x)
                    t = x - k
                    ff = a * (ftab[k] + (ftab[k + 1] - ftab[k]) * t)
                else:  # closer than the table reaches: the formula itself
                    dist = np.sqrt(d2)
                    e = np.exp(-z * dist) / dist
                    ff = a * e * (z + 1.0 / dist) / dist
                fx += ff * dx
                fy += ff * dy
                fz += ff * dz
                f[j, 0] -= ff * dx
                f[j, 1] -= ff * dy
                f[j, 2] -= ff * dz
                if full:
                    sxy = 0.5 * dx * ff * dy
                    w[i] -= sxy
                    w[j] -= sxy
                    trace[c] += ff * d2
                    if d2 >= r2_lo:
                        energy[c] += a * (vtab[k] + (vtab[k + 1] - vtab[k]) * t)
                    else:
                        energy[c] += a * np.exp(-z * np.sqrt(d2)) / np.sqrt(d2)
            f[i, 0] += fx
            f[i, 1] += fy
            f[i, 2] += fz
    force = np.zeros((N, 3))
    virial = np.zeros(N)
    for i in numba.prange(N):
        for c in range(CHUNKS):
            force[i, 0] += fbuf[c, i, 0]
            force[i, 1] += fbuf[c, i, 1]
            force[i, 2] += fbuf[c, i, 2]
            if full:
                virial[i] += wbuf[c, i]
    return force, virial, energy.sum(), trace.sum()


@numba.njit(cache=True)
def overlap_moves(r, diameter, mobility, offsets, partners, images, h, tol, move):
    """One Jacobi sweep over the contact list: fills ``move`` (zeroed here) with each particle's
    share of its overlaps; returns the worst relative overlap, the number of pairs pushed apart, and
    Σ_pairs x_ij f_ij,y and Σ_pairs r_ij·f_ij of the implied contact forces f_ij = Δ_ij/((μ_i + μ_j) dt),
    times dt (Δ_ij the change of the pair's separation)."""
    move[:] = 0.0
    worst = 0.0
    pushed = 0
    virial = 0.0
    trace = 0.0
    for i in range(r.shape[0]):
        for m in range(offsets[i], offsets[i + 1]):
            j = partners[m]
            dx, dy, dz = _separation(r, i, j, images, m, h)
            dij = 0.5 * (diameter[i] + diameter[j])
            d2 = dx * dx + dy * dy + dz * dz
            if d2 >= dij * dij:
                continue
            dist = np.sqrt(d2)
            overlap = (dij - dist) / dij
            worst = max(worst, overlap)
            if overlap <= tol:
                continue
            pushed += 1
            scale = (dij - dist) / max(dist, 1e-12 * dij) / (mobility[i] + mobility[j])
            move[i, 0] += mobility[i] * scale * dx
            move[i, 1] += mobility[i] * scale * dy
            move[i, 2] += mobility[i] * scale * dz
            move[j, 0] -= mobility[j] * scale * dx
            move[j, 1] -= mobility[j] * scale * dy
            move[j, 2] -= mobility[j] * scale * dz
            virial += scale * dx * dy
            trace += scale * d2
    return worst, pushed, virial, trace


@numba.njit(parallel=True, cache=True)
def brownian_move(r, unwrapped, nonaffine, force, mobility, temperature, dt, rate, noise, dimension):
    """One Euler–Maruyama step: the same non-affine move δ for the working positions, the
    unwrapped path and r̃; the affine streaming γ̇ y dt for the first two (each with its own y)."""
    for i in numba.prange(r.shape[0]):
        amp = np.sqrt(2.0 * mobility[i] * temperature * dt)
        r[i, 0] += rate * r[i, 1] * dt  # streaming at the start-of-step y (Itô)
        unwrapped[i, 0] += rate * unwrapped[i, 1] * dt
        for k in range(dimension):
            step = mobility[i] * force[i, k] * dt + amp * noise[i, k]
            r[i, k] += step
            unwrapped[i, k] += step
            nonaffine[i, k] += step
