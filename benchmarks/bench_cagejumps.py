"""Cage-jump detection and χ4 on a paper-size trajectory: lmpshear's numba kernels vs plain numpy.

    python benchmarks/bench_cagejumps.py [--particles 16500] [--frames 5000] [--numpy-particles 300]

The trajectory is synthetic (cages with planted jumps plus thermal noise, KA density 1.2), so the
benchmark needs no simulation. Each measurement runs in a fresh process that builds the data, warms
the numba kernels up on a small array (compile time stays out of the timing) and reports its best
wall time of three and the peak resident memory above the data it was handed. The numpy anchor is the same
recursion written per particle (``reference_jump_frames``); it runs on a subset of particles and its
rate in particle-frames per second is compared with the numba one on the full set.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue as queue_module
import resource
import time

import numpy as np

REPEAT = 3  # best of three for both implementations


def make_trajectory(n: int, frames: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.empty((frames, n, 3))
    centre = np.zeros((n, 3))
    for t in range(frames):  # frame by frame: no second full-size temporary
        jump = rng.random(n) < 0.002
        centre[jump] += rng.normal(scale=0.6, size=(int(jump.sum()), 3))
        x[t] = centre + rng.normal(scale=0.07, size=(n, 3))
    return x


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _worker(task: str, n: int, frames: int, subset: int, queue) -> None:
    from lmpshear.cell import Cell
    from lmpshear.kernels.cagejumps import cage_jumps, reference_jump_frames
    from lmpshear.kernels.overlap import log_lags, origins_in, susceptibility

    x = make_trajectory(n, frames)
    times = np.arange(frames) * 0.1
    threshold = 0.05
    if task == "numba":
        cage_jumps(x[:50, :20], x[:50, :20], times[:50], threshold)  # compile outside the timing
        base = _rss_mb()
        walls = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            jumps = cage_jumps(x, x, times, threshold)
            walls.append(time.perf_counter() - t0)
        wall = min(walls)
        queue.put(
            {
                "task": task,
                "wall": wall,
                "particle_frames": n * frames,
                "jumps": len(jumps),
                "peak_extra_mb": _rss_mb() - base,
            }
        )
    elif task == "numpy":
        base = _rss_mb()
        walls = []
        for _ in range(REPEAT):
            t0 = time.perf_counter()
            count = sum(len(reference_jump_frames(x[:, i], threshold)) for i in range(subset))
            walls.append(time.perf_counter() - t0)
        wall = min(walls)
        queue.put(
            {
                "task": task,
                "wall": wall,
                "particle_frames": subset * frames,
                "jumps": count,
                "peak_extra_mb": _rss_mb() - base,
            }
        )
    elif task == "numba-subset":  # the same particles as the numpy anchor: must find the same jumps
        jumps = cage_jumps(np.ascontiguousarray(x[:, :subset]), x[:, :subset], times, threshold)
        ref = [reference_jump_frames(x[:, i], threshold) for i in range(subset)]
        same = all(jumps.frame[jumps.particle == i].tolist() == ref[i] for i in range(subset))
        queue.put({"task": task, "identical_to_numpy": same})
    elif task == "chi4":
        L = (n / 1.2) ** (1 / 3)
        rng = np.random.default_rng(2)
        lattice = rng.random((n, 3)) * L
        rate, dt = 0.015, 0.1
        cells = [Cell((0.0, 0.0, 0.0), L, L, L, ((rate * dt * k + 0.5) % 1.0 - 0.5) * L) for k in range(frames)]
        susceptibility(
            lattice[None, :200] + x[:3, :200],
            x[:3, :200],
            cells[:3],
            times[:3],
            0.45,
            0.25,
            np.array([0, 1]),
            np.array([1]),
        )  # compile outside the timing
        base = _rss_mb()
        t0 = time.perf_counter()
        positions = x + lattice  # the positions at every frame (a view would do for a real store)
        origins, lags = origins_in(0, frames - 2, 50), log_lags(frames - 1, 40)
        s = susceptibility(positions, x, cells, times, 0.45, 0.25, origins, lags)
        wall = time.perf_counter() - t0
        evaluations = int(s.n_origins.sum())
        queue.put(
            {
                "task": task,
                "wall": wall,
                "overlap_evaluations": evaluations,
                "particle_evaluations_per_s": evaluations * n / wall,
                "peak_extra_mb": _rss_mb() - base,
            }
        )


def measure(task: str, n: int, frames: int, subset: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_worker, args=(task, n, frames, subset, queue))
    proc.start()
    while True:
        try:
            result = queue.get(timeout=5)
            break
        except queue_module.Empty:
            if not proc.is_alive():
                raise SystemExit(f"benchmark task {task} failed (exit code {proc.exitcode})") from None
    proc.join()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=16500)
    ap.add_argument("--frames", type=int, default=5000)
    ap.add_argument("--numpy-particles", type=int, default=300)
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    n, f, sub = args.particles, args.frames, args.numpy_particles
    print(f"trajectory: {n} particles x {f} frames ({n * f * 24 / 2**30:.2f} GiB of float64 positions)")
    fast = measure("numba", n, f, sub)
    slow = measure("numpy", n, f, sub)
    check = measure("numba-subset", n, f, sub)
    chi4 = measure("chi4", n, f, sub)
    rate_fast = fast["particle_frames"] / fast["wall"]
    rate_slow = slow["particle_frames"] / slow["wall"]
    print(
        f"cage jumps, numba (all {n} particles): {fast['wall']:.2f} s, {rate_fast:.3g} particle-frames/s, "
        f"{fast['jumps']} jumps, peak memory +{fast['peak_extra_mb']:.0f} MB"
    )
    print(
        f"cage jumps, numpy ({sub} particles):   {slow['wall']:.2f} s, {rate_slow:.3g} particle-frames/s, "
        f"peak memory +{slow['peak_extra_mb']:.0f} MB"
    )
    print(
        f"ratio numba/numpy: {rate_fast / rate_slow:.1f}x  (same jumps on the common particles: "
        f"{check['identical_to_numpy']})"
    )
    print(
        f"chi4 (collective + self, {chi4['overlap_evaluations']} origin-lag pairs): {chi4['wall']:.1f} s, "
        f"{chi4['particle_evaluations_per_s']:.3g} particle-evaluations/s, peak memory +{chi4['peak_extra_mb']:.0f} MB"
    )
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(
                {"numba": fast, "numpy": slow, "check": check, "chi4": chi4, "ratio": rate_fast / rate_slow},
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
