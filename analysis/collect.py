"""Copy the small products of an analysed run into a results folder (never the trajectory).

    python analysis/collect.py RUNDIR OUTDIR

Writes OUTDIR/{viscosity,structure,msd,overlap,cagejumps}.json as they are, clusters_summary.json
(the clusters stage's summary, parameters and per-window sieve diagnostics), clusters_table.csv (one
row per cluster), the run's config.toml and manifest.json, and the per-run figures
(`lmpshear figures`).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pandas as pd

from lmpshear.analysis.figures import run_figures
from lmpshear.rundir import atomic_write_json


def collect(rundir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in ("viscosity.json", "structure.json", "msd.json", "overlap.json", "cagejumps.json", "config.toml",
                 "manifest.json"):
        if (rundir / name).exists():
            shutil.copy2(rundir / name, out / name)
    clusters = rundir / "clusters.json"
    if clusters.exists():
        stored = json.loads(clusters.read_text())
        result = stored["result"]
        atomic_write_json(out / "clusters_summary.json", {"params": stored["params"], "summary": result["summary"],
                                                          "sieve": result["sieve"]})
        pd.DataFrame(result["clusters"]).drop(columns=["centre"]).to_csv(out / "clusters_table.csv", index=False)
        for path in run_figures(rundir, out):
            print(f"figure: {path}")
    print(f"collected {rundir} -> {out}")


if __name__ == "__main__":
    collect(Path(sys.argv[1]), Path(sys.argv[2]))
