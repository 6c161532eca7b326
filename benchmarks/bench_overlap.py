"""The collective overlap Q (one origin and lag, the overlap stage's inner call) beside its anchor,
scipy's periodic k-d tree pair count (``cKDTree.count_neighbors`` with ``boxsize``), on the same
points: a KA-density liquid (ρ = 1.2) with Gaussian displacements of 0.2 σ, a = 0.3.

    python benchmarks/bench_overlap.py [--n 16500] [--repeat 20]

The anchor needs an orthorhombic box, so the ratio is taken on an unsheared cell; the sheared cell's
time (tilt 0.3 L, what the stage meets) is printed beside it. Both counts must agree, and do.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.spatial import cKDTree

from lmpshear.cell import Cell
from lmpshear.kernels.overlap import collective_overlap


def best_of(fn, repeat: int) -> tuple[float, int]:
    value = fn()  # compile
    best = np.inf
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16500)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    L, a = (args.n / 1.2) ** (1 / 3), 0.3
    origin = np.zeros((args.n, 3))
    moved = rng.normal(0.0, 0.2, (args.n, 3))  # r̃(t0 + t) − r̃(t0)
    cell = Cell((0.0, 0.0, 0.0), L, L, L, 0.3 * L)
    r = rng.random((args.n, 3)) @ cell.matrix()
    ours, q = best_of(lambda: collective_overlap(r, moved, origin, cell, a), args.repeat)
    print(f"N = {args.n}, tilt 0.3 L: lmpshear {ours * 1e3:.1f} ms (Q = {q})")
    cell = Cell((0.0, 0.0, 0.0), L, L, L, 0.0)
    r = rng.random((args.n, 3)) * L
    ours, q = best_of(lambda: collective_overlap(r, moved, origin, cell, a), args.repeat)
    tree = lambda: cKDTree(r % L, boxsize=L).count_neighbors(cKDTree((r - moved) % L, boxsize=L), a)  # noqa: E731
    anchor, q_anchor = best_of(tree, max(1, args.repeat // 4))
    assert q == q_anchor, (q, q_anchor)
    print(
        f"unsheared: lmpshear {ours * 1e3:.1f} ms, cKDTree {anchor * 1e3:.1f} ms (Q = {q_anchor}); "
        f"ratio lmpshear / cKDTree {ours / anchor:.2f}"
    )


if __name__ == "__main__":
    main()
