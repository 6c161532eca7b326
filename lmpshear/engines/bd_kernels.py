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

Pairs. All pair lists are half lists (each pair once): the outer list, CSR, built by a cell search
in a wrapped configuration, and the Verlet and contact lists pruned from it (begin/end per
particle). Each pair carries its lattice image n = (n_a, n_b, n_c): the separation is
r_i − r_j − n·H(t), where H(t)'s tilt grows continuously from its value at the build (it is not
flipped), so the lists need no rebuild at a flip and positions are not re-wrapped between builds.
A particle's pairs come in runs of one image (the cell search walks runs of bins). A pair is one int32, the
partner j in the low bits and the image code 9(n_a + 1) + 3(n_b + 1) + (n_c + 1) above
``IMAGE_SHIFT``; n·H of each code comes from a 27-row table made once per force call.

Yukawa, V(r) = K exp[−z (r − d_ij)]/(r/d_ij) = A_ij e^{−z r}/r with A_ij = K d_ij e^{z d_ij}, which
factorises as ½ K (d_i + d_j) a_i a_j, a_i = e^{z d_i/2}. The pair terms are evaluated from the
formula, with e^{−x} in plain arithmetic (:func:`_exp_neg`) so that the loop over a particle's
partners compiles to SIMD code. Precision: "double" does everything in float64; "mixed" (the
default) takes each separation in float64, then evaluates the pair terms and sums them per particle
in float32 (twice the SIMD width), adding the particle sums in float64: forces agree with float64 to
~1e-5 relative (Newton's third law to float32 rounding), far below the Brownian noise of a step. Per-particle
virial shear stress × volume,
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
    rec = np.zeros(
        len(diameter), dtype=np.dtype([("x", "f8"), ("y", "f8"), ("z", "f8"), ("amp", t), ("amp_d", t)], align=True)
    )
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
def _scan_chunk(lo_bin, hi_bin, X, Y, Z, start, n, m, h, reach2, longest, pairs, offsets):
    """Append the partners within reach of the particles of bins [lo_bin, hi_bin) to ``pairs`` as
    far as it has room; returns the count (past the room when it ran out, so the caller learns the
    size needed). Per run, the distances are one vectorised loop, then the appends are branch-free."""
    runs = (m[0] + 1) * (2 * m[1] + 1) * (2 * m[2] + 2)
    run_lo, run_hi, run_code = np.empty(runs, np.int64), np.empty(runs, np.int64), np.empty(runs, np.int64)
    run_shift = np.empty((runs, 3))
    d2 = np.empty(longest)
    at = 0
    for here in range(lo_bin, hi_bin):
        k_runs = _runs(here, n, m, h, start, run_lo, run_hi, run_shift, run_code)
        for i in range(start[here], start[here + 1]):
            was = at
            xi, yi, zi = X[i], Y[i], Z[i]
            for k in range(k_runs):
                lo = i + 1 if k == 0 else run_lo[k]
                count = run_hi[k] - lo
                if count <= 0:
                    continue
                sx, sy, sz = xi - run_shift[k, 0], yi - run_shift[k, 1], zi - run_shift[k, 2]
                xs, ys, zs = X[lo : run_hi[k]], Y[lo : run_hi[k]], Z[lo : run_hi[k]]  # views: no index checks
                for t in range(count):
                    d2[t] = (sx - xs[t]) ** 2 + (sy - ys[t]) ** 2 + (sz - zs[t]) ** 2
                code = run_code[k] | lo
                for t in range(count):
                    if at < pairs.shape[0]:
                        pairs[at] = code + t
                    at += d2[t] < reach2
            offsets[i + 1] = at - was
    return at


@numba.njit(parallel=True, cache=True)
def _scan_chunks(bin_bounds, X, Y, Z, start, n, m, h, reach2, longest, buf, offsets, used):
    for c in numba.prange(CHUNKS):
        used[c] = _scan_chunk(
            bin_bounds[c], bin_bounds[c + 1], X, Y, Z, start, n, m, h, reach2, longest, buf[c], offsets
        )


@numba.njit(cache=True)
def _joined(buf, used, bounds, counts):
    """CSR offsets and pairs from the chunks' buffers (chunk order = particle order)."""
    offsets = np.cumsum(counts)
    pairs = np.empty(offsets[-1], dtype=np.int32)
    for c in range(CHUNKS):
        pairs[offsets[bounds[c]] : offsets[bounds[c + 1]]] = buf[c, : used[c]]
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
def build_pair_lists(r, lo, h, h_inv, n, m, reach, room):
    """Half list (each pair once) of the pairs within ``reach``, in CSR form (offsets, pairs): the
    pairs of i are pairs[offsets[i]:offsets[i + 1]], each partner | image code << IMAGE_SHIFT
    (separation r_i − r_j − n·H, see the module notes). The particles must be wrapped into the cell
    (a particle on a face is moved here to the image its bin says) and sorted by bin of this grid:
    ``n`` bins per axis, neighbours within ``m`` bins (m_k ≥ reach n_k / w_k; m = 0 along a
    non-periodic axis). One pass over ``CHUNKS`` ranges of bins, each into a buffer of ``room``
    pairs (an estimate); a chunk that runs out of room counts on, and the pass is repeated once
    with buffers of the size counted."""
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
    offsets = np.zeros(N + 1, dtype=np.int64)
    used = np.zeros(CHUNKS, dtype=np.int64)
    for _attempt in range(2):
        buf = np.empty((CHUNKS, room), dtype=np.int32)
        _scan_chunks(bin_bounds, X, Y, Z, start, n, m, h, reach * reach, longest, buf, offsets, used)
        if used.max() <= room:
            break
        room = used.max()
    return _joined(buf, used, start[bin_bounds], offsets)


@numba.njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
def prune_pair_lists(r, diameter, offsets, pairs, shifts, reach, skin, yukawa, contacts):
    """The Verlet lists the forces and the hard core use, taken from a longer half list (CSR
    ``offsets``, ``pairs``, separations with ``shifts``): with ``yukawa`` the pairs within
    ``reach``, with ``contacts`` those within d_ij + ``skin`` (else an empty list). Each comes as
    (begin, end, pairs): the pairs of i are pairs[begin[i]:end[i]], in the order of the long list.
    The Verlet list keeps the layout of the long list (each chunk's pairs from where the long list
    has them: no compaction pass over most of the pairs); the contact list, a few pairs per
    particle, is compacted (the hard-core sweeps read it many times)."""
    N = r.shape[0]
    bounds = np.searchsorted(offsets, np.linspace(0, offsets[N], CHUNKS + 1))  # equal pair counts
    bounds[0], bounds[CHUNKS] = 0, N
    reach2 = reach * reach
    contact2 = (diameter.max() + skin) ** 2  # no pair beyond is a contact
    begin_y, end_y = np.zeros(N, np.int64), np.zeros(N, np.int64)
    begin_c, end_c = np.zeros(N, np.int64), np.zeros(N, np.int64)
    out_y = np.empty(pairs.shape[0] if yukawa else 0, np.int32)
    out_c = np.empty(pairs.shape[0] if contacts else 0, np.int32)
    last_c = np.empty(CHUNKS, np.int64)
    for c in numba.prange(CHUNKS):
        at_y = at_c = offsets[bounds[c]]
        for i in range(bounds[c], bounds[c + 1]):
            begin_y[i], begin_c[i] = at_y, at_c
            di, image = diameter[i], -1
            sx = sy = sz = 0.0
            for q in pairs[offsets[i] : offsets[i + 1]]:
                j, s = q & PARTNER, q >> IMAGE_SHIFT
                if s != image:  # pairs come in runs of one image: r_i − n·H changes rarely
                    sx, sy, sz, image = r[i, 0] - shifts[s, 0], r[i, 1] - shifts[s, 1], r[i, 2] - shifts[s, 2], s
                d2 = (sx - r[j, 0]) ** 2 + (sy - r[j, 1]) ** 2 + (sz - r[j, 2]) ** 2
                if yukawa:  # a branch-free append: the slot is written, then kept or not
                    out_y[at_y] = q
                    at_y += d2 < reach2
                if contacts and d2 < contact2:  # rare: a short-range pair
                    near = 0.5 * (di + diameter[j]) + skin
                    if d2 < near * near:
                        out_c[at_c] = q
                        at_c += 1
            end_y[i], end_c[i] = at_y, at_c
        last_c[c] = at_c
    at = 0
    for c in range(CHUNKS):  # compact the contact list
        first = offsets[bounds[c]]
        count = last_c[c] - first
        out_c[at : at + count] = out_c[first : first + count]  # at <= first: a forward copy is safe
        begin_c[bounds[c] : bounds[c + 1]] -= first - at
        end_c[bounds[c] : bounds[c + 1]] -= first - at
        at += count
    return begin_y, end_y, out_y, begin_c, end_c, out_c[:at].copy()


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
def yukawa_forces(r, particles, diameter, begin, end, pairs, shifts, K, consts, work, full):
    """Forces (N, 3) from the pair list (pairs of i: pairs[begin[i]:end[i]]); with ``full`` also S_i
    (N,), the energy and Σ_pairs r_ij·f_ij (else zeros).

    ``particles`` (record array, fields x y z amp amp_d) carries positions (copied from r here) and
    a_i = e^{z d_i/2}, a_i d_i in one cache line per particle. For each i the partners' separations
    are gathered into contiguous buffers in the working precision (that of z); the pair terms then
    run as one vectorised loop; the partners' reactions are scattered back after it. ``consts`` is
    :func:`work_constants`, ``work`` an empty array of the working precision."""
    z, z256, rc2, one, zero, taylor = consts
    N = r.shape[0]
    for i in numba.prange(N):
        particles[i].x, particles[i].y, particles[i].z = r[i, 0], r[i, 1], r[i, 2]
    counts = end - begin
    bounds = np.searchsorted(np.cumsum(counts), np.linspace(0, counts.sum(), CHUNKS + 1))  # equal pair counts
    bounds[0], bounds[CHUNKS] = 0, N
    cap = max(1, counts.max())
    fbuf = np.zeros((CHUNKS, N, 3))
    wbuf = np.zeros((CHUNKS, N)) if full else np.zeros((CHUNKS, 1))
    energy = np.zeros(CHUNKS)
    trace = np.zeros(CHUNKS)
    for c in numba.prange(CHUNKS):
        f, w = fbuf[c], wbuf[c]
        bx, by, bz = np.empty(cap, work.dtype), np.empty(cap, work.dtype), np.empty(cap, work.dtype)
        bc, bw = np.empty(cap, work.dtype), np.empty(cap, work.dtype)
        for i in range(bounds[c], bounds[c + 1]):
            o, n = begin[i], end[i] - begin[i]
            xi, yi, zi = particles[i].x, particles[i].y, particles[i].z
            ai, di = 0.5 * K * particles[i].amp, diameter[i]
            mine = pairs[o : o + n]  # a view: its index needs no wraparound check
            image = -1
            sx = sy = sz = 0.0
            for t in range(n):  # gather (a_ij = ½K a_i a_j (d_i + d_j))
                q = mine[t]
                pj = particles[q & PARTNER]
                s = q >> IMAGE_SHIFT
                if s != image:  # pairs come in runs of one image: r_i − n·H changes rarely
                    sx, sy, sz, image = xi - shifts[s, 0], yi - shifts[s, 1], zi - shifts[s, 2], s
                bx[t] = sx - pj.x
                by[t] = sy - pj.y
                bz[t] = sz - pj.z
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
def _near_contact(r, diameter, begin, end, pairs, shifts, margin, out):
    """The pairs of the contact list closer than d_ij + margin, in list order, as (i, pair) rows of
    ``out``; returns their number."""
    k = 0
    for i in range(r.shape[0]):
        for m in range(begin[i], end[i]):
            j, s = pairs[m] & PARTNER, pairs[m] >> IMAGE_SHIFT
            dx = r[i, 0] - r[j, 0] - shifts[s, 0]
            dy = r[i, 1] - r[j, 1] - shifts[s, 1]
            dz = r[i, 2] - r[j, 2] - shifts[s, 2]
            near = 0.5 * (diameter[i] + diameter[j]) + margin
            if dx * dx + dy * dy + dz * dz < near * near:
                out[k, 0], out[k, 1] = i, pairs[m]
                k += 1
    return k


@numba.njit(cache=True)
def resolve_overlaps(r, unwrapped, nonaffine, diameter, mobility, begin, end, pairs, shifts, tol, margin, max_sweeps):
    """Jacobi sweeps over the contact list until no pair overlaps by more than tol·d_ij: in each
    sweep every overlapping pair is pushed apart along its line of centres by its overlap, shared
    in proportion to the mobilities, all pairs' pushes computed first and then applied together
    (to r, the unwrapped path and r̃).

    Only pairs that can overlap are swept: those closer than d_ij + ``margin`` when last selected
    (the selection is made again from the whole list once twice the longest path of a particle since
    then reaches ``margin``), and after the first sweep only those with a particle pushed in the
    sweep before (the others kept their separation, so overlap by at most tol·d_ij still). Pairs
    left out push nothing, so this is exact: the same pushes, in the same order, as sweeping all.

    Returns (sweeps, pairs pushed summed over sweeps, Σ x_ij f_ij,y dt, Σ r_ij·f_ij dt, worst):
    the sums over the implied contact forces f_ij = Δ_ij/((μ_i + μ_j) dt), Δ_ij the pushes, and
    the worst relative overlap left (above ``tol`` only when ``max_sweeps`` ran out)."""
    N = r.shape[0]
    near = np.empty(((end - begin).sum(), 2), np.int64)
    move = np.zeros((N, 3))
    path = np.zeros(N)  # path length of each particle since the selection
    longest = 0.0
    touched = np.empty(N, np.int64)  # pushed in this sweep ...
    is_touched = np.zeros(N, np.bool_)
    was_list = np.empty(N, np.int64)  # ... and in the one before
    was = np.zeros(N, np.bool_)
    n_was = 0
    count = _near_contact(r, diameter, begin, end, pairs, shifts, margin, near)
    every = True  # sweep every selected pair (the first sweep after a selection)
    sweeps = pushed = 0
    virial = trace = 0.0
    worst = 0.0
    while True:
        worst = 0.0
        n_touched = 0
        for k in range(count):
            i, q = near[k, 0], near[k, 1]
            j, s = q & PARTNER, q >> IMAGE_SHIFT
            if not (every or was[i] or was[j]):
                continue
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
            for p in (i, j):
                if not is_touched[p]:
                    is_touched[p] = True
                    touched[n_touched] = p
                    n_touched += 1
            move[i, 0] += mobility[i] * scale * dx
            move[i, 1] += mobility[i] * scale * dy
            move[i, 2] += mobility[i] * scale * dz
            move[j, 0] -= mobility[j] * scale * dx
            move[j, 1] -= mobility[j] * scale * dy
            move[j, 2] -= mobility[j] * scale * dz
            virial += scale * dx * dy
            trace += scale * d2
        if worst <= tol or sweeps == max_sweeps:
            return sweeps, pushed, virial, trace, worst
        sweeps += 1
        for t in range(n_was):
            was[was_list[t]] = False
        for t in range(n_touched):  # apply the pushes (the others are zero)
            i = touched[t]
            for e in range(3):
                r[i, e] += move[i, e]
                unwrapped[i, e] += move[i, e]
                nonaffine[i, e] += move[i, e]
            path[i] += np.sqrt(move[i, 0] ** 2 + move[i, 1] ** 2 + move[i, 2] ** 2)
            longest = max(longest, path[i])
            move[i, 0] = move[i, 1] = move[i, 2] = 0.0
            is_touched[i] = False
            was[i] = True
        touched, was_list, n_was = was_list, touched, n_touched
        every = False
        if 2.0 * longest >= margin:  # a pair not selected may have come within d_ij
            count = _near_contact(r, diameter, begin, end, pairs, shifts, margin, near)
            path[:] = 0.0
            longest = 0.0
            every = True


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
def largest_moves(now, before):
    """m_1 + m_2, the two largest |now_i − before_i| (of different particles): the most any pair's
    separation can have changed by (the lists' staleness test, without temporaries)."""
    m1 = m2 = 0.0
    for i in range(now.shape[0]):
        d2 = (now[i, 0] - before[i, 0]) ** 2 + (now[i, 1] - before[i, 1]) ** 2 + (now[i, 2] - before[i, 2]) ** 2
        if d2 > m2:
            m1, m2 = (d2, m1) if d2 > m1 else (m1, d2)
    return np.sqrt(m1) + np.sqrt(m2)
