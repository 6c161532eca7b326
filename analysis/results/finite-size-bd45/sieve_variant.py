"""The clusters stage of a finished run again with another coarse block (the paper's L/10 or L/20 of
this box), its summary written beside the run's collected products:

    python analysis/results/finite-size-bd45/sieve_variant.py RUNDIR BLOCK OUTDIR

runs `lmpshear analyze RUNDIR --only clusters --set cluster_block=BLOCK --no-figures` (which replaces
the run's clusters.json: collect the run first) and writes OUTDIR/clusters_block-BLOCK.json (parameters,
summary and the bootstrap uncertainties of analysis/collect.py), with the stage's wall time.
"""

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # analysis/collect.py
from collect import uncertainty  # noqa: E402

from lmpshear.rundir import Product, atomic_write_json  # noqa: E402

rundir, block, out = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
started = time.perf_counter()
subprocess.run(
    [
        sys.executable,
        "-m",
        "lmpshear",
        "analyze",
        str(rundir),
        "--only",
        "clusters",
        "--set",
        f"cluster_block={block}",
        "--no-figures",
    ],
    check=True,
)
wall = time.perf_counter() - started
stored = Product.read(rundir / "clusters.json")
assert abs(stored.params["cluster_block"] - block) < 1e-12, stored.params
atomic_write_json(
    out / f"clusters_block-{block:g}.json",
    {
        "params": stored.params,
        "summary": stored.result["summary"],
        "uncertainty": uncertainty(stored.result),
        "wall_seconds": wall,
    },
)
print(f"{out / f'clusters_block-{block:g}.json'}: xi_c = {stored.result['summary']['xi_c']:.4g} ({wall:.0f} s)")
