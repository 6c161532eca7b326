"""`lmpshear report` (flow curve and λ, clusters vs rate, STZ panels, Table I's λ/(D+1) and ν_c) made
from committed results folders (what `analysis/collect.py` copies out of a run), not from run
directories: Table I can be made again without the trajectories, and from rates that were run in
different sessions (whose run directories did not survive together).

    python analysis/recipes/results_report.py analysis/results/bd425-N20000/rate-* -o OUT

Writes OUT/{flowcurve,clusters_vs_rate,table1}.{json,csv,png} and stz_vs_rate.png, as `lmpshear
report` does; `table1.py` and `rate_panels.py` read OUT like any report folder.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from lmpshear import config
from lmpshear.report import AnalysedRun, lengths_of, spec_system, write_report
from lmpshear.rundir import Product


def collected_run(folder: Path) -> AnalysedRun:
    """One results folder as the report reads a run: viscosity.json, clusters_summary.json with
    clusters_table.csv (the yielded clusters are the rows with a t2), phm_summary.json, facilitation.json,
    s4.json, gjj.json and overlap.json (t_χ's error)."""

    def load(name: str) -> dict | None:
        path = folder / name
        return json.loads(path.read_text()) if path.exists() else None

    if not (folder / "viscosity.json").exists():
        raise SystemExit(f"{folder}: no viscosity.json (not a results folder of analysis/collect.py)")
    v = Product.read(folder / "viscosity.json").result
    spec = config.load(folder / "config.toml", init_file_needed=False)  # a finished run's spec
    run = AnalysedRun(str(folder), v["rate"], v["eta"], v["eta_error"], spec_system(spec))
    clusters = load("clusters_summary.json")
    if clusters is not None:
        table = pd.read_csv(folder / "clusters_table.csv")
        run.clusters = clusters["summary"]
        run.volumes = table.loc[table["t2"].notna(), "volume"].to_numpy()
        phm = load("phm_summary.json")  # summary, radii, matched, chance: what the panels read
        run.phm = phm and {"spots": phm["summary"]["spots"]} | phm
        if (folder / "facilitation.json").exists():
            run.facilitation = Product.read(folder / "facilitation.json").result
    run.lengths = lengths_of(
        *[
            Product.read(folder / f"{name}.json").result if (folder / f"{name}.json").exists() else None
            for name in ("s4", "gjj")
        ],
        run.clusters,
    )
    if (folder / "overlap.json").exists():
        run.t_chi_error = Product.read(folder / "overlap.json").result.get("t_chi_error", float("nan"))
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", type=Path, help="results folders, one per rate (collect.py's OUTDIR)")
    ap.add_argument("-o", "--out", type=Path, required=True)
    ap.add_argument("--min-rate", type=float)
    ap.add_argument("--max-rate", type=float)
    args = ap.parse_args()
    write_report([collected_run(f) for f in args.folders], args.out, args.min_rate, args.max_rate)


if __name__ == "__main__":
    main()
