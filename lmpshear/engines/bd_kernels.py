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

Pairs. Both pair lists are half lists (each pair once) in CSR form, built in a wrapped configuration with
each pair's lattice image n = (n_a, n_b, n_c): the separation is r_i − r_j − n·H(t), where H(t)'s
tilt grows continuously from its value at the build (it is not flipped), so the list needs no
rebuild at a flip and positions are not re-wrapped between builds. A pair is one int32, the
partner j in the low bits and the image code 9(n_a + 1) + 3(n_b + 1) + (n_c + 1) above
``IMAGE_SHIFT``; n·H of each code comes from a 27-row table made once per force call.

Yukawa, V(r) = K exp[−z (r − d_ij)]/(r/d_ij) = A_ij e^{−z r}/r with A_ij = K d_ij e^{z d_ij}, which
factorises as ½ K (d_i + d_j) a_i a_j, a_i = e^{z d_i/2}. The pair terms are evaluated from the
formula, with e^{−x} in plain arithmetic (:func:`_exp_neg`) so that the loop over a particle's
partners compiles to SIMD code. Precision: "double" does everything in float64; "mixed" (the
default) takes each separation in float64, then evaluates the pair terms and sums them per particle
in float32 (twice the SIMD width), adding the particle sums in float64: forces agree with float64 to
~1e-5 relative (Newton's third law to float32 rounding), far below the Brownian noise of a step. Per-particle virial shear stress × volume,
as in the LAMMPS store: S_i = −½ Σ_j x_ij f_ij,y (f_ij the force on i), so Σ_i S_i / V = σ_xy^vir.

Determinism. The force loop runs over ``CHUNKS`` ranges of i (equal pair counts, fixed by the list),
each into its own buffer, summed in chunk order: the result is bit-identical for any number of
threads.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from lmpshear.neighbors import bin_particles, fractional

CHUNKS = 8
IMAGE_SHIFT = 26  # a pair is stored as one int32: partner | image code << IMAGE_SHIFT
PARTNER = (1 << IMAGE_SHIFT) - 1


def particle_records(diameter: np.ndarray, z: float, precision: str) -> np.ndarray:
    """Per-particle data the force loop reads for each partner, one record each: position and
    a_i = e^{z d_i/2}, a_i d_i (in the working precision)."""
    t = {"mixed": "f4", "double": "f8"}[precision]
    rec = np.zeros(len(diameter), dtype=np.dtype([("x", "f8"), ("y", "f8"), ("z", "f8"), ("amp", t),
                                                  ("amp_d", t)], align=True))
    rec["amp"] = np.exp(0.5 * z * diameter)
    rec["amp_d"] = rec["amp"] * diameter
    return rec


@numba.njit(cache=True)
def _runs(here, n, m, h, start, run_lo, run_hi, run_shift, run_code):
    """The half stencil of bin ``here`` = (a, b, c) as runs of particles: the bins (a + da, b + db,
    c + dc), |d| ≤ m, with (da, db) > (0, 0) lexicographically or (da, db) = (0, 0) and dc ≥ 0.
    Bins along c are consecutive in memory, so a row of them is one particle range, split where it
    wraps; each run has one lattice image w (a particle j of the run sits at r_j + w·H). Every
    bin pair is met once, from one side, whatever the bin counts (axes with few bins are met again
    in other images, which is right: each pair is within reach in at most one image). The first
    run starts at bin ``here``. Returns the number of runs."""
    a, b, c = here // (n[1] * n[2]), (here // n[2]) % n[1], here % n[2]
    k = 0
    for da in range(m[0] + 1):
        for db in range(-m[1], m[1] + 1):
            if da == 0 and db < 0:
                continue
            aa, bb = a + da, b + db
            w0, w1 = aa // n[0], bb // n[1]
            row = ((aa - w0 * n[0]) * n[1] + bb - w1 * n[1]) * n[2]
            cc = c if (da == 0 and db == 0) else c - m[2]
            while cc <= c + m[2]:
                w2 = cc // n[2]
                last = min(c + m[2], (w2 + 1) * n[2] - 1)
                run_lo[k] = start[row + cc - w2 * n[2]]
                run_hi[k] = start[row + last - w2 * n[2] + 1]
                for e in range(3):
                    run_shift[k, e] = w0 * h[0, e] + w1 * h[1, e] + w2 * h[2, e]
                run_code[k] = (9 * (w0 + 1) + 3 * (w1 + 1) + w2 + 1) << IMAGE_SHIFT
                k += 1
                cc = last + 1
    return k


@numba.njit(cache=True, fastmath=True, error_model="numpy")
def _scan_chunk(lo_bin, hi_bin, X, Y, Z, diameter, start, n, m, h, reach2, skin, contacts, longest, pairs_y, pairs_c,
                off_y, off_c):
    """Append the partners of the particles of bins [lo_bin, hi_bin) to the Yukawa list (within
    reach) and, with ``contacts``, to the contact list (within d_ij + skin), as far as each has
    room; returns the counts (past the room when it ran out, so the caller learns the size needed).
    Per run, the distances are one vectorised loop, then the appends are branch-free."""
    runs = (m[0] + 1) * (2 * m[1] + 1) * (2 * m[2] + 2)
    run_lo, run_hi, run_code = np.empty(runs, np.int64), np.empty(runs, np.int64), np.empty(runs, np.int64)
    run_shift = np.empty((runs, 3))
    d2 = np.empty(longest)
    near2 = np.empty(longest)
    at_y = at_c = 0
    for here in range(lo_bin, hi_bin):
        k_runs = _runs(here, n, m, h, start, run_lo, run_hi, run_shift, run_code)
        for i in range(start[here], start[here + 1]):
            was_y, was_c = at_y, at_c
            xi, yi, zi, di = X[i], Y[i], Z[i], diameter[i]
            for k in range(k_runs):
                lo = i + 1 if k == 0 else run_lo[k]
                count = run_hi[k] - lo
                if count <= 0:
                    continue
                sx, sy, sz = xi - run_shift[k, 0], yi - run_shift[k, 1], zi - run_shift[k, 2]
                xs, ys, zs = X[lo:run_hi[k]], Y[lo:run_hi[k]], Z[lo:run_hi[k]]  # views: no index checks
                for t in range(count):
                    d2[t] = (sx - xs[t]) ** 2 + (sy - ys[t]) ** 2 + (sz - zs[t]) ** 2
                code = run_code[k] | lo
                for t in range(count):
                    if at_y < pairs_y.shape[0]:
                        pairs_y[at_y] = code + t
                    at_y += d2[t] < reach2
                if contacts:
                    ds = diameter[lo:run_hi[k]]
                    for t in range(count):
                        near2[t] = (0.5 * (di + ds[t]) + skin) ** 2
                    for t in range(count):
                        if at_c < pairs_c.shape[0]:
                            pairs_c[at_c] = code + t
                        at_c += d2[t] < near2[t]
            off_y[i + 1], off_c[i + 1] = at_y - was_y, at_c - was_c
    return at_y, at_c


@numba.njit(parallel=True, cache=True)
def _scan_chunks(bin_bounds, X, Y, Z, diameter, start, n, m, h, reach2, skin, contacts, longest, buf_y, buf_c, off_y,
                 off_c, used):
    for c in numba.prange(CHUNKS):
        used[c, 0], used[c, 1] = _scan_chunk(bin_bounds[c], bin_bounds[c + 1], X, Y, Z, diameter, start, n, m, h,
                                             reach2, skin, contacts, longest, buf_y[c], buf_c[c], off_y, off_c)


@numba.njit(cache=True)
def _joined(buf, used, bounds, counts):
    """CSR offsets and pairs from the chunks' buffers (chunk order = particle order)."""
    offsets = np.cumsum(counts)
    pairs = np.empty(offsets[-1], dtype=np.int32)
    for c in range(CHUNKS):
        pairs[offsets[bounds[c]]:offsets[bounds[c + 1]]] = buf[c, :used[c]]
    return offsets, pairs


@numba.njit(cache=True)
def _onto_bins(r, s, lo, h, h_inv):
    """Move (by a lattice vector) each position whose wrapped fractional coordinates ``s`` put it
    in a bin on the other side of the cell: a particle on a face, where rounding decides."""
    for i in range(r.shape[0]):
        for k in range(3):
            u = (r[i, 0] - lo[0]) * h_inv[0, k] + (r[i, 1] - lo[1]) * h_inv[1, k] + (r[i, 2] - lo[2]) * h_inv[2, k]
            image = np.rint(u - s[i, k])
            if image != 0.0:
                for e in range(3):
                    r[i, e] -= image * h[k, e]


@numba.njit(cache=True)
def build_pair_lists(r, diameter, lo, h, h_inv, n, m, reach, skin, contacts, room_y, room_c):
    """Half lists (each pair once) of the pairs within ``reach`` (Yukawa) and, with ``contacts``,
    within d_ij + skin (else the contact list is empty).

    Each list is CSR (offsets, pairs): the pairs of i are pairs[offsets[i]:offsets[i + 1]], each
    partner | image code << IMAGE_SHIFT (separation r_i − r_j − n·H, see the module notes). The
    particles must be wrapped into the cell (a particle on a face is moved here to the image its bin
    says) and sorted by bin of this grid: ``n`` bins per axis, neighbours within ``m`` bins
    (m_k ≥ reach n_k / w_k; m = 0 along a non-periodic axis). One pass over ``CHUNKS`` ranges of
    bins, each into a buffer of ``room_y``/``room_c`` pairs (an estimate); a chunk that runs out of
    room counts on, and the pass is repeated once with buffers of the size counted."""
    N = r.shape[0]
    if N > PARTNER:
        raise ValueError("build_pair_lists: too many particles for the packed pair format")
    s = fractional(r, lo, h_inv)
    order, start = bin_particles(s, n)
    for k in range(N):
        if order[k] != k:
            raise ValueError("build_pair_lists: particles are not sorted by bin")
    _onto_bins(r, s, lo, h, h_inv)
    X, Y, Z = r[:, 0].copy(), r[:, 1].copy(), r[:, 2].copy()
    longest = 1
    for c in range(start.shape[0] - 1):
        longest = max(longest, start[c + 1] - start[c])
    longest *= 2 * m[2] + 1
    bin_bounds = np.linspace(0, start.shape[0] - 1, CHUNKS + 1).astype(np.int64)
    bounds = start[bin_bounds]
    off_y = np.zeros(N + 1, dtype=np.int64)
    off_c = np.zeros(N + 1, dtype=np.int64)
    used = np.zeros((CHUNKS, 2), dtype=np.int64)
    room_c = room_c if contacts else 0
    for _attempt in range(2):
        buf_y = np.empty((CHUNKS, room_y), dtype=np.int32)
        buf_c = np.empty((CHUNKS, room_c), dtype=np.int32)
        _scan_chunks(bin_bounds, X, Y, Z, diameter, start, n, m, h, reach * reach, skin, contacts, longest, buf_y,
                     buf_c, off_y, off_c, used)
        if used[:, 0].max() <= room_y and used[:, 1].max() <= room_c:
            break
        room_y, room_c = used[:, 0].max(), used[:, 1].max()
    off_y, pairs_y = _joined(buf_y, used[:, 0], bounds, off_y)
    off_c, pairs_c = _joined(buf_c, used[:, 1], bounds, off_c)
    return off_y, pairs_y, off_c, pairs_c


@numba.njit(cache=True)
def image_shifts(h):
    """(27, 3) lattice vectors n·H of the image codes 9(n_a + 1) + 3(n_b + 1) + (n_c + 1)."""
    out = np.empty((27, 3))
    for code in range(27):
        n0, n1, n2 = code // 9 - 1, (code // 3) % 3 - 1, code % 3 - 1
        for k in range(3):
            out[code, k] = n0 * h[0, k] + n1 * h[1, k] + n2 * h[2, k]
    return out


@numba.njit(cache=True, inline="always")
def _exp_neg(u, c):
    """e^{−256 u} for 0 ≤ u ≲ 0.1 in plain arithmetic, so that loops calling it vectorise: Taylor to
    degree 7 of e^{−u}, squared eight times (relative error < 1e-10 for 256 u ≤ 25, < 1e-13 for
    256 u ≤ 10; the pair term at z r = 25 is 1e-11 of its contact value)."""
    p = ((((((c[7] * u + c[6]) * u + c[5]) * u + c[4]) * u + c[3]) * u + c[2]) * u + c[1]) * u + c[0]
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    p = p * p
    return p * p


def work_constants(precision: str, z: float, cutoff: float) -> tuple:
    """(z, z/256, r_c², 1, 0, Taylor coefficients of e^{−u}) in the working precision."""
    t = {"mixed": np.float32, "double": np.float64}[precision]
    taylor = tuple(t((-1.0) ** k / math.factorial(k)) for k in range(8))
    return t(z), t(z / 256.0), t(cutoff * cutoff), t(1.0), t(0.0), taylor


@numba.njit(cache=True, inline="always")
def _pair(dx, dy, dz, coef, z, z256, rc2, one, zero, taylor):
    """(F/r, V) of one pair, zero beyond the cutoff: V = a e^{−zr}/r, F/r = V (z + 1/r)/r."""
    d2 = dx * dx + dy * dy + dz * dz
    rinv = one / np.sqrt(d2)
    v = coef * _exp_neg(z256 * d2 * rinv, taylor) * rinv
    v = v if d2 < rc2 else zero
    return v * (z + rinv) * rinv, v, d2


@numba.njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def yukawa_forces(r, particles, diameter, offsets, pairs, shifts, K, consts, work, full):
    """Forces (N, 3); with ``full`` also S_i (N,), the energy and Σ_pairs r_ij·f_ij (else zeros).

    ``particles`` (record array, fields x y z amp amp_d) carries positions (copied from r here) and
    a_i = e^{z d_i/2}, a_i d_i in one cache line per particle. For each i the partners' separations
    are gathered into contiguous buffers in the working precision (that of z); the pair terms then
    run as one vectorised loop; the partners' reactions are scattered back after it. ``consts`` is
    :func:`work_constants`, ``work`` an empty array of the working precision."""
    z, z256, rc2, one, zero, taylor = consts
    N = r.shape[0]
    for i in numba.prange(N):
        particles[i].x, particles[i].y, particles[i].z = r[i, 0], r[i, 1], r[i, 2]
    bounds = np.searchsorted(offsets, np.linspace(0, offsets[N], CHUNKS + 1))  # equal pair counts
    bounds[0], bounds[CHUNKS] = 0, N
    cap = 1
    for i in range(N):
        cap = max(cap, offsets[i + 1] - offsets[i])
    fbuf = np.zeros((CHUNKS, N, 3))
    wbuf = np.zeros((CHUNKS, N)) if full else np.zeros((CHUNKS, 1))
    energy = np.zeros(CHUNKS)
    trace = np.zeros(CHUNKS)
    for c in numba.prange(CHUNKS):
        f, w = fbuf[c], wbuf[c]
        bx, by, bz = np.empty(cap, work.dtype), np.empty(cap, work.dtype), np.empty(cap, work.dtype)
        bc, bw = np.empty(cap, work.dtype), np.empty(cap, work.dtype)
        for i in range(bounds[c], bounds[c + 1]):
            o, n = offsets[i], offsets[i + 1] - offsets[i]
            xi, yi, zi = particles[i].x, particles[i].y, particles[i].z
            ai, di = 0.5 * K * particles[i].amp, diameter[i]
            mine = pairs[o:o + n]  # a view: its index needs no wraparound check
            for t in range(n):  # gather (a_ij = ½K a_i a_j (d_i + d_j))
                q = mine[t]
                pj = particles[q & PARTNER]
                s = q >> IMAGE_SHIFT
                bx[t] = xi - pj.x - shifts[s, 0]
                by[t] = yi - pj.y - shifts[s, 1]
                bz[t] = zi - pj.z - shifts[s, 2]
                bc[t] = ai * (di * pj.amp + pj.amp_d)
            fx = fy = fz = zero  # summed in the working precision: float64 sums cost a conversion per pair
            if full:
                wi = ei = ti = zero
                for t in range(n):
                    dx, dy, dz = bx[t], by[t], bz[t]
                    ff, v, d2 = _pair(dx, dy, dz, bc[t], z, z256, rc2, one, zero, taylor)
                    bx[t], by[t], bz[t], bw[t] = ff * dx, ff * dy, ff * dz, 0.5 * dx * ff * dy
                    fx, fy, fz, wi = fx + bx[t], fy + by[t], fz + bz[t], wi + bw[t]
                    ei += v
                    ti += ff * d2
                w[i] -= wi
                energy[c] += ei
                trace[c] += ti
            else:
                for t in range(n):
                    dx, dy, dz = bx[t], by[t], bz[t]
                    ff, v, d2 = _pair(dx, dy, dz, bc[t], z, z256, rc2, one, zero, taylor)
                    bx[t], by[t], bz[t] = ff * dx, ff * dy, ff * dz
                    fx, fy, fz = fx + bx[t], fy + by[t], fz + bz[t]
            for t in range(n):  # scatter the reactions
                j = mine[t] & PARTNER
                f[j, 0] -= bx[t]
                f[j, 1] -= by[t]
                f[j, 2] -= bz[t]
                if full:
                    w[j] -= bw[t]
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
def overlap_moves(r, diameter, mobility, offsets, pairs, shifts, tol, move):
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
            j, s = pairs[m] & PARTNER, pairs[m] >> IMAGE_SHIFT
            dx = r[i, 0] - r[j, 0] - shifts[s, 0]
            dy = r[i, 1] - r[j, 1] - shifts[s, 1]
            dz = r[i, 2] - r[j, 2] - shifts[s, 2]
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


@numba.njit(cache=True)
def max_move(now, before):
    """max_i |now_i − before_i| (the Verlet lists' staleness test, without temporaries)."""
    worst = 0.0
    for i in range(now.shape[0]):
        d2 = (now[i, 0] - before[i, 0]) ** 2 + (now[i, 1] - before[i, 1]) ** 2 + (now[i, 2] - before[i, 2]) ** 2
        worst = max(worst, d2)
    return np.sqrt(worst)
