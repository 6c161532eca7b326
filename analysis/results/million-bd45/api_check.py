"""The Python API on the 10^6-particle run: products as objects, the cage jumps as a DataFrame of
millions of rows (its peak memory against its own size: read once, renamed in place, not copied
again), the cluster table, one frame of the trajectory. Prints one JSON object.

    python analysis/results/million-bd45/api_check.py RUNDIR
"""

import json
import sys
import time
import tracemalloc

import numpy as np

import lmpshear

run = lmpshear.Run(sys.argv[1])
out = {"particles": run.spec.system.n_particles, "eta": run.viscosity.eta, "t_chi": run.overlap.t_chi}
out["xi_c"] = run.clusters.summary["xi_c"]
started = time.perf_counter()
tracemalloc.start()
jumps = run.jumps
size, peak = jumps.memory_usage(deep=True).sum(), tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
out |= {
    "jumps": len(jumps),
    "jumps_seconds": round(time.perf_counter() - started, 1),
    "jumps_frame_MB": round(size / 1e6, 1),
    "jumps_peak_over_frame": round(peak / size, 2),
    "jump_columns": list(jumps.columns),
}
table = run.clusters.table
out |= {"clusters": len(table), "cluster_columns": list(table.columns[:5])}
with run.trajectory() as traj:
    last = traj.nonaffine([len(traj) - 1])[0]
    out |= {"frames": len(traj), "mean_nonaffine_sq_last": float((last**2).sum(axis=1).mean())}
assert out["jumps"] == run.cagejumps.jumps and np.isfinite(out["eta"])
print(json.dumps(out, indent=1, ensure_ascii=False))
