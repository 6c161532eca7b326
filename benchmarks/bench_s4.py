"""The s4 stage beside its anchor, the overlap stage (χ4), on one analysed run: wall time and peak
memory of each, computed on the same steady window read once.

    python benchmarks/bench_s4.py RUNDIR [--repeat 2]

The overlap anchor is the χ4 computation of the overlap stage (collective and self, every lag of the
stage); s4 is S4(q) at t_χ and at τ_α with the stage's defaults (origins, q-vectors per bin). Each
runs once to compile its numba kernels and is then timed (best of ``--repeat``); peak memory is
tracemalloc's high-water mark above the arrays both are handed (numpy reports its buffers to it).
The ratio s4 / overlap is printed for both.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from lmpshear.rundir import RunDir
from lmpshear.stages import Context
from lmpshear.stages.dynamics import overlap
from lmpshear.stages.lengths import s4


def measure(fn, ctx, repeat: int) -> tuple[float, float]:
    fn(ctx)  # compile
    best, peak = np.inf, 0.0
    for _ in range(repeat):
        tracemalloc.start()
        started = time.perf_counter()
        fn(ctx)
        best = min(best, time.perf_counter() - started)
        peak = max(peak, tracemalloc.get_traced_memory()[1] / 2**20)
        tracemalloc.stop()
    return best, peak


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rundir")
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    rd = RunDir(args.rundir)
    ctx = Context(rd, rd.info())
    window = ctx.steady
    data = window.unwrapped.nbytes + window.nonaffine.nbytes  # read once, shared by both
    print(f"{rd.path}: N = {ctx.traj.n_particles}, {len(window)} steady frames ({data / 2**20:.0f} MiB of positions)")
    t_o, m_o = measure(overlap, ctx, args.repeat)
    t_s, m_s = measure(s4, ctx, args.repeat)
    print(f"overlap (chi4, the anchor): {t_o:.1f} s, peak +{m_o:.0f} MiB")
    print(f"s4 (S4 at t_chi and tau_alpha): {t_s:.1f} s, peak +{m_s:.0f} MiB")
    print(f"ratio s4 / overlap: time {t_s / t_o:.2f}, memory {m_s / m_o:.2f}")
    ctx.close()


if __name__ == "__main__":
    main()
