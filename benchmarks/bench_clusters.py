"""Convective-cluster analysis of a paper-size run: wall time, peak memory, and the traceback's cost
per frame against a naive per-voxel membership loop.

    python benchmarks/bench_clusters.py [--particles 16500] [--jumps 4000] [--windows 3]

The trajectory is synthetic (KA density 1.2, an affine shear at rate 0.015 plus thermal noise, frames
every 0.1 over three windows of t_χ = 10 beyond the traceback span, and jumps planted in a few
blobs on a uniform background), so the benchmark needs no simulation; the analysis does not care
where its inputs came from. The whole of :func:`convective_clusters` runs once to compile the numba
kernels and is timed on the second call; peak memory is the resident high-water mark of the process
above the data it was handed.

Traceback cost per frame: :func:`labels_at` maps every particle forward to t_ref and reads its node's
label (O(N)); the naive anchor tests every particle against every node of a region's voxel set,
O(N × voxels), as one would by carrying each voxel back in time. Both run on the same frame and
region, and their ratio is printed.

Two kernels of the sieve and the traceback, each beside its anchor on the same input:
:func:`merge_small` on a soft-disk null window (N = 20000 disks' worth of uniform jumps, ~10700,
smoothed by the kernel sieve on its 256² grid: thousands of noise basins) against rescanning the
grid after every merge (``tests/test_clusters.py``, the rule written the obvious way); and the
members' shear strain of one frame (300 of 20000 disks) against the numpy composition
:func:`affine_fit` ∘ :func:`carried_separations`.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from lmpshear.cell import Cell
from lmpshear.kernels.convective import convective_clusters
from lmpshear.kernels.sieve import (
    background_threshold,
    demarcate,
    kernel_density,
    labels_at,
    merge_small,
    region_lookup,
    watershed_basins,
)
from lmpshear.kernels.traceback import affine_fit, carried_separations, shear_strain
from lmpshear.spec import Analysis
from lmpshear.stages.clusters import convective_options

RATE, DT, T_CHI = 0.015, 0.1, 10.0


def synthetic_run(n: int, n_jumps: int, windows: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    L = (n / 1.2) ** (1 / 3)
    span = (2.0 + windows + 0.5) * T_CHI
    times = np.arange(0.0, span + 1e-9, DT)
    cells = []
    for t in times:
        tilt = (RATE * t * L + 0.5 * L) % L - 0.5 * L  # LAMMPS-like flips keep the tilt within ±L/2
        cells.append(Cell((0.0, 0.0, 0.0), L, L, L, tilt, 3))
    start = rng.uniform(0, L, size=(n, 3))
    unwrapped = np.empty((len(times), n, 3))
    noise = np.zeros((n, 3))
    for k, t in enumerate(times):  # affine flow of the start positions plus a slow random walk
        noise += rng.normal(scale=0.02, size=(n, 3))
        unwrapped[k] = start + noise
        unwrapped[k, :, 0] += RATE * t * unwrapped[k, :, 1]
    virial = rng.normal(size=(len(times), n))
    # jumps: a third uniform, the rest in blobs of radius ~2.5 (in the frame at their time)
    jt = rng.uniform(times[1], times[-1], size=n_jumps)
    pos = rng.uniform(0, L, size=(n_jumps, 3))
    blobs = rng.uniform(0, L, size=(8, 3))
    which = rng.integers(0, 8, size=n_jumps)
    clustered = rng.random(n_jumps) > 1 / 3
    pos[clustered] = blobs[which[clustered]] + rng.normal(scale=2.5, size=(int(clustered.sum()), 3))
    pos[:, 0] += RATE * jt * pos[:, 1]
    jumps = pd.DataFrame(
        {
            "particle": rng.integers(0, n, size=n_jumps),
            "time": jt,
            "frame": np.searchsorted(times, jt),
            "x": pos[:, 0],
            "y": pos[:, 1],
            "z": pos[:, 2],
            "dx": rng.normal(size=n_jumps),
            "dy": rng.normal(size=n_jumps),
            "dz": rng.normal(size=n_jumps),
        }
    )
    return times, cells, unwrapped, virial, jumps


def naive_members(r: np.ndarray, t: float, t_ref: float, cell_ref: Cell, nodes: np.ndarray, fine: int) -> np.ndarray:
    """The anchor: for every node of the region, every particle is tested against that voxel."""
    s = cell_ref.fractional(cell_ref.carry(r, np.full(len(r), t), RATE, t_ref))
    inside = np.zeros(len(r), dtype=bool)
    for node in nodes:  # O(voxels) passes over O(N) particles
        d = (s - node / fine + 0.5) % 1.0 - 0.5
        inside |= np.all(np.abs(d) <= 0.5 / fine, axis=1)
    return inside


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--particles", type=int, default=16500)
    ap.add_argument("--jumps", type=int, default=4000)
    ap.add_argument("--windows", type=int, default=3)
    args = ap.parse_args()

    times, cells, unwrapped, virial, jumps = synthetic_run(args.particles, args.jumps, args.windows)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"synthetic run: N = {args.particles}, {len(times)} frames, {len(jumps)} jumps, "
        f"t_chi = {T_CHI} ({int(T_CHI / DT)} frames), data {unwrapped.nbytes / 2**20:.0f} MiB"
    )
    kwargs = dict(coarse=10, **convective_options(Analysis(max_windows=args.windows)))
    t0 = time.perf_counter()
    convective_clusters(times, cells, unwrapped, virial, jumps, RATE, T_CHI, **kwargs)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = convective_clusters(times, cells, unwrapped, virial, jumps, RATE, T_CHI, **kwargs)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - base
    s = result["summary"]
    print(
        f"convective_clusters: {s['windows']} windows, {s['clusters']} clusters ({s['yielded']} yielded), "
        f"{len(result['contrast'])} contrast spheres"
    )
    print(
        f"  wall {wall:.1f} s (first call, with compilation: {first:.1f} s); peak memory above the data {peak:.0f} MiB"
    )

    # traceback: one frame, the largest region of the first window
    k_ref = int(np.argmin(np.abs(times - (times[0] + T_CHI))))
    sel = jumps[(jumps.time >= times[0]) & (jumps.time < times[k_ref])]
    events = cells[k_ref].carry(sel[["x", "y", "z"]].to_numpy(), sel.time.to_numpy(), RATE, times[k_ref])
    options = {k: kwargs[k] for k in ("fine", "tolerance", "stz_diameter", "min_stz", "prune_fine")}
    regions, fields = demarcate(events, cells[k_ref], 10, threshold=None, kernel_length=None, **options)
    reg = max(regions, key=lambda r: len(r.nodes))
    lookup = region_lookup(regions, 3, fields["fine"])
    k = max(k_ref - 20, 0)
    labels_at(unwrapped[k], times[k], RATE, times[k_ref], cells[k_ref], lookup)  # warm-up
    reps = 20
    t0 = time.perf_counter()
    for _ in range(reps):
        fast = labels_at(unwrapped[k], times[k], RATE, times[k_ref], cells[k_ref], lookup) == reg.label
    fast_time = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    naive = naive_members(unwrapped[k], times[k], times[k_ref], cells[k_ref], reg.nodes, fields["fine"])
    naive_time = time.perf_counter() - t0
    assert np.array_equal(fast, naive), "the two membership tests disagree"
    print(
        f"traceback, one frame, region of {len(reg.nodes)} voxels ({fast.sum()} members), "
        f"all {len(regions)} regions of the window labelled at once:"
    )
    print(
        f"  labels_at {1e3 * fast_time:.2f} ms/frame vs naive per-voxel loop {1e3 * naive_time:.0f} ms/frame "
        f"(one region): ratio {naive_time / fast_time:.0f}x"
    )
    kernels()


def kernels() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_clusters import _merge_small_by_rescanning

    rng = np.random.default_rng(3)
    L, d = (20000 / 0.8) ** 0.5, 1.24  # the soft disks' box and kernel length (g(r)'s first minimum)
    cell = Cell((0.0, 0.0, 0.0), L, L, 1.0, 0.0, 2)
    n = int(np.ceil(2 * L / d))
    rho = kernel_density(rng.random((10700, 3)), cell, n, d)
    basins, count = watershed_basins(rho, rho >= background_threshold(rho, 0.1))
    min_blocks = 2 * np.pi / 4 * 3.0**2 / (cell.volume / n**2)  # C' V_stz in blocks
    t0 = time.perf_counter()
    fast, kept = merge_small(basins, min_blocks)
    fast_time = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = _merge_small_by_rescanning(basins, min_blocks)
    slow_time = time.perf_counter() - t0
    assert np.array_equal(fast, slow), "the two merges disagree"
    print(f"merge_small on a soft-disk null window ({n}^2 grid, {count} basins -> {kept}):")
    print(
        f"  {1e3 * fast_time:.0f} ms vs rescanning after every merge {1e3 * slow_time:.0f} ms: "
        f"ratio {fast_time / slow_time:.3f}"
    )

    cell = Cell((0.0, 0.0, 0.0), L, L, 1.0, 10.0, 2)
    before = rng.uniform(0, L, (20000, 2))
    after = before + rng.normal(scale=0.1, size=before.shape)
    members = rng.choice(20000, 300, replace=False)

    def numpy_strain():
        return affine_fit(*carried_separations(before, after, members, cell, 1e-3), 2)[0, 1]

    compiled = shear_strain(before, after, members, cell, 1e-3, 2)
    assert np.isclose(compiled, numpy_strain(), rtol=1e-10), "the two strains disagree"
    reps = 2000
    t0 = time.perf_counter()
    for _ in range(reps):
        shear_strain(before, after, members, cell, 1e-3, 2)
    fast_time = (time.perf_counter() - t0) / reps
    t0 = time.perf_counter()
    for _ in range(reps):
        numpy_strain()
    slow_time = (time.perf_counter() - t0) / reps
    print(
        f"shear strain of 300 members over one frame: {1e6 * fast_time:.0f} us vs numpy {1e6 * slow_time:.0f} us: "
        f"ratio {fast_time / slow_time:.3f}"
    )


if __name__ == "__main__":
    main()
