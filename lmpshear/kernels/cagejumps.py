"""Cage jumps by the recursive split of Candelier et al. (the paper's eq. 11), on the path r̃(t).

A particle's path of n frames is cut at c into S1 = frames [0, c) and S2 = [c, n), and scored by

    p(c) = ζ(c) [⟨d1²⟩_{S2} ⟨d2²⟩_{S1}]^{1/2},   ζ(c) = [c/n (1 − c/n)]^{1/2}

with d_k the distance to the centroid of S_k. With m_k and q_k the centroid and mean-square
spread of S_k, ⟨d1²⟩_{S2} = q2 + |m1 − m2|² and ⟨d2²⟩_{S1} = q1 + |m1 − m2|², so prefix sums of r̃
and |r̃|² score every cut of a segment in O(n). If max_c p(c) ≥ l_c² the segment is cut at the
first c where the maximum is reached, and both parts are split again; otherwise it is one cage.

Discrete conventions (the paper's are continuous):
- t_c/T is c/n: c counts the frames of S1, n those of the segment (t_c = T/2 is the middle cut);
- a cut leaves at least ``min_segment`` frames on each side (default 1, eq. 11 as written), so a
  segment shorter than 2·min_segment is not split;
- a jump "at frame c" happens between frames c − 1 and c: its time and lab position are the
  midpoints of those two frames; its vector is the mean r̃ of the cage after minus that of the cage
  before (the final segments on either side of the cut).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def _score_squared(cs, cs2, lo, c, hi):
    """p(c)² (no square roots in the hot loop; the maximum is at the same cut)."""
    n1 = c - lo
    n2 = hi - c
    r1, r2 = 1.0 / n1, 1.0 / n2
    q1 = (cs2[c] - cs2[lo]) * r1
    q2 = (cs2[hi] - cs2[c]) * r2
    d2 = 0.0
    for k in range(cs.shape[1]):
        m1 = (cs[c, k] - cs[lo, k]) * r1
        m2 = (cs[hi, k] - cs[c, k]) * r2
        q1 -= m1 * m1
        q2 -= m2 * m2
        d2 += (m1 - m2) * (m1 - m2)
    q1 = max(q1, 0.0)  # roundoff
    q2 = max(q2, 0.0)
    n = n1 + n2
    return n1 * n2 / (n * n) * (q2 + d2) * (q1 + d2)


@numba.njit(cache=True)
def _prefix_sums(path, cs, cs2):
    """Fill Σ_{t<k} x_t and Σ_{t<k} |x_t|² for k = 0..n, on the path shifted to start at the origin."""
    n, dim = path.shape
    cs[0, :] = 0.0
    cs2[0] = 0.0
    for t in range(n):
        sq = 0.0
        for k in range(dim):
            v = path[t, k] - path[0, k]
            cs[t + 1, k] = cs[t, k] + v
            sq += v * v
        cs2[t + 1] = cs2[t] + sq


@numba.njit(cache=True)
def split_scores(path):
    """p(c) for c = 1..n−1 of one path (n, dim): entry c − 1 is the cut before frame c."""
    n, dim = path.shape
    cs, cs2 = np.empty((n + 1, dim)), np.empty(n + 1)
    _prefix_sums(path, cs, cs2)
    out = np.empty(n - 1)
    for c in range(1, n):
        out[c - 1] = np.sqrt(_score_squared(cs, cs2, 0, c, n))
    return out


@numba.njit(cache=True)
def _segment(path, threshold, min_segment, marks, cs, cs2, stack):
    """Mark the first frame of every cage after the first (marks[c] = 1), leaving the path's prefix
    sums in ``cs``, ``cs2``; ``stack`` is (n + 1, 2) scratch. Buffers are the caller's: reused."""
    _prefix_sums(path, cs, cs2)
    n = path.shape[0]
    stack[0, 0], stack[0, 1] = 0, n
    top = 1
    while top > 0:
        top -= 1
        lo, hi = stack[top, 0], stack[top, 1]
        if hi - lo < 2 * min_segment:
            continue
        best_c, best_p2 = -1, -1.0
        for c in range(lo + min_segment, hi - min_segment + 1):
            p2 = _score_squared(cs, cs2, lo, c, hi)
            if p2 > best_p2:
                best_p2, best_c = p2, c
        if best_p2 >= threshold * threshold:
            marks[best_c] = 1
            stack[top, 0], stack[top, 1] = lo, best_c
            stack[top + 1, 0], stack[top + 1, 1] = best_c, hi
            top += 2


BLOCK = 32  # particles gathered together: (frames, N, dim) rows are read 32 particles at a time


@numba.njit(cache=True)
def _gather(nonaffine, i0, i1):
    """Paths of particles i0..i1-1 as (particles, frames, dim), read frame-row by frame-row."""
    n_frames, _, dim = nonaffine.shape
    paths = np.empty((i1 - i0, n_frames, dim))
    for t in range(n_frames):
        for i in range(i0, i1):
            for d in range(dim):
                paths[i - i0, t, d] = nonaffine[t, i, d]
    return paths


@numba.njit(parallel=True, cache=True)
def _detect(nonaffine, threshold, min_segment, cap):
    """One pass: each particle's jump frames and vectors (the first ``cap`` of them) and its count.

    The vectors come from the prefix sums of the split: mean of the cage after minus mean before."""
    n_frames, n_particles, dim = nonaffine.shape
    count = np.zeros(n_particles, dtype=np.int64)
    frames = np.zeros((n_particles, cap), dtype=np.int64)
    vectors = np.zeros((n_particles, cap, dim))
    n_blocks = (n_particles + BLOCK - 1) // BLOCK
    for b in numba.prange(n_blocks):
        i0, i1 = b * BLOCK, min((b + 1) * BLOCK, n_particles)
        paths = _gather(nonaffine, i0, i1)
        marks = np.zeros(n_frames + 1, dtype=np.uint8)
        cs, cs2 = np.empty((n_frames + 1, dim)), np.empty(n_frames + 1)
        stack = np.empty((n_frames + 1, 2), dtype=np.int64)
        for i in range(i0, i1):
            marks[:] = 0
            _segment(paths[i - i0], threshold, min_segment, marks, cs, cs2, stack)
            marks[n_frames] = 1  # the end closes the last cage
            previous, current, k = 0, -1, 0
            for t in range(1, n_frames + 1):
                if not marks[t]:
                    continue
                if current >= 0 and k < cap:
                    frames[i, k] = current
                    for d in range(dim):
                        before = (cs[current, d] - cs[previous, d]) / (current - previous)
                        after = (cs[t, d] - cs[current, d]) / (t - current)
                        vectors[i, k, d] = after - before
                if current >= 0:
                    k += 1
                    previous = current
                current = t
            count[i] = k
    return count, frames, vectors


@dataclass(frozen=True)
class CageJumps:
    """One row per jump, sorted by particle then frame."""

    particle: np.ndarray
    frame: np.ndarray  # first frame of the new cage
    time: np.ndarray
    position: np.ndarray  # (jumps, dim) lab (unwrapped) position at the jump
    vector: np.ndarray  # (jumps, dim) non-affine jump vector between cage centres
    threshold: float
    n_particles: int
    n_frames: int

    def __len__(self) -> int:
        return len(self.particle)

    def to_frame(self):
        import pandas as pd

        axes = "xyz"[: self.position.shape[1]]
        data = {"particle": self.particle, "frame": self.frame, "time": self.time}
        data |= {a: self.position[:, k] for k, a in enumerate(axes)}
        data |= {f"d{a}": self.vector[:, k] for k, a in enumerate(axes)}
        return pd.DataFrame(data)


def cage_jumps(
    nonaffine,
    unwrapped,
    times: np.ndarray,
    threshold: float,
    min_segment: int = 1,
    particles_per_block: int | None = None,
) -> CageJumps:
    """Detect cage jumps of every particle. Arrays are (frames, N, dim) (numpy, or the window's streamed
    arrays); ``threshold`` is l_c². The paths are read ``particles_per_block`` particles at a time (all at
    once if None): each particle's detection is its own, so the blocks change nothing but memory."""
    if min_segment < 1:
        raise ValueError("min_segment must be at least 1")
    n_frames, n_particles, dim = nonaffine.shape
    step = n_particles if particles_per_block is None else max(1, int(particles_per_block))
    counts, frames, vectors = [], [], []
    for i0 in range(0, n_particles, step):
        paths = np.ascontiguousarray(nonaffine[:, i0 : i0 + step], dtype=np.float64)
        cap = 64
        while True:
            count, found, moved = _detect(paths, float(threshold), int(min_segment), cap)
            if count.max(initial=0) <= cap:
                break
            cap = int(count.max())  # rare: a particle with more jumps than the buffer holds
        keep = np.arange(cap)[None, :] < count[:, None]
        counts.append(count)
        frames.append(found[keep])
        vectors.append(moved[keep])
        del paths
    count = np.concatenate(counts)
    frame = np.concatenate(frames)
    vector = np.concatenate(vectors).reshape(-1, dim)
    total = len(frame)
    particle = np.repeat(np.arange(n_particles), count)
    position = 0.5 * (unwrapped[frame - 1, particle] + unwrapped[frame, particle]) if total else np.empty((0, dim))
    times = np.asarray(times, dtype=np.float64)
    time = 0.5 * (times[frame - 1] + times[frame]) if total else np.empty(0)
    return CageJumps(particle, frame, time, position, vector, float(threshold), n_particles, n_frames)


def reference_jump_frames(path: np.ndarray, threshold: float, min_segment: int = 1) -> list[int]:
    """The same recursion in plain numpy, one particle at a time: the reference for tests and the
    benchmark's anchor. Returns the sorted first frames of the cages after the first."""
    path = np.asarray(path, dtype=np.float64) - path[0]
    jumps = []

    def split(lo: int, hi: int) -> None:
        n = hi - lo
        if n < 2 * min_segment:
            return
        seg = path[lo:hi]
        cs = np.cumsum(seg, axis=0)
        cs2 = np.cumsum((seg * seg).sum(axis=1))
        c = np.arange(min_segment, n - min_segment + 1)
        n1, n2 = c.astype(float), (n - c).astype(float)
        m1 = cs[c - 1] / n1[:, None]
        m2 = (cs[-1] - cs[c - 1]) / n2[:, None]
        q1 = np.maximum(cs2[c - 1] / n1 - (m1 * m1).sum(axis=1), 0.0)
        q2 = np.maximum((cs2[-1] - cs2[c - 1]) / n2 - (m2 * m2).sum(axis=1), 0.0)
        d2 = ((m1 - m2) ** 2).sum(axis=1)
        p = np.sqrt(n1 * n2) / n * np.sqrt((q2 + d2) * (q1 + d2))
        best = int(np.argmax(p))
        if p[best] >= threshold:
            cut = lo + int(c[best])
            jumps.append(cut)
            split(lo, cut)
            split(cut, hi)

    split(0, len(path))
    return sorted(jumps)


def carried_jumps(table, start: float, end: float, cell, rate: float, t_ref: float, particles=None):
    """The jumps of a span of time, carried to t_ref: the rows of ``table`` (a cage-jump DataFrame) with
    start ≤ time < end, of ``particles`` if given, and their lab positions carried by the affine flow
    to t_ref and wrapped into ``cell`` (the cell at t_ref): (positions (n, 3), rows).

    The one convention for a span: half-open, so consecutive spans share no jump. A jump's time is the
    midpoint of the two frames it falls between, half a frame from every frame time, so a span whose
    ends are frame times holds the same jumps open or closed."""
    times = table["time"].to_numpy()
    keep = (times >= start) & (times < end)
    if particles is not None:
        keep &= np.isin(table["particle"].to_numpy(), particles)
    rows = table[keep]
    axes = ["x", "y", "z"][: cell.dimension]
    return cell.carry(rows[axes].to_numpy(dtype=np.float64), rows["time"].to_numpy(dtype=np.float64), rate, t_ref), rows


def null_jumps(windows: list, cells: list, unwrapped: np.ndarray, rate: float, rng) -> dict:
    """Each window's jumps as two null models place them, in the window's cell at t_ref. ``windows``:
    (t_ref, index of its cell, carried positions, jump rows whose ``frame`` indexes ``unwrapped``). "uniform"
    (uniform in the cell) and "particles" (particle labels permuted at random: each jump at the position
    its particle's image has at the jump's own frame, carried to t_ref like the real ones; a particle's
    repeated jumps stay together, the correlation between different particles is gone)."""
    out: dict[str, list[np.ndarray]] = {"uniform": [], "particles": []}
    dim = cells[0].dimension
    relabel = rng.permutation(unwrapped.shape[1])
    for t_ref, k, events, rows in windows:
        cell = cells[k]
        r = np.zeros((len(events), 3))
        r[:, :dim] = rng.random((len(events), dim))
        out["uniform"].append(np.asarray(cell.lo) + r @ cell.matrix())
        frames = rows.frame.to_numpy(dtype=np.int64)
        image = relabel[rows.particle.to_numpy(dtype=np.int64)]
        out["particles"].append(cell.carry(unwrapped[frames, image], rows.time.to_numpy(dtype=np.float64), rate, t_ref))
    return out
