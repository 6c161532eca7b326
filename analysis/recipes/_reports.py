"""Reading the per-system report folders that `lmpshear report` writes (ROOT/report/LABEL for a
campaign): flowcurve.json, clusters_vs_rate.csv and table1.json. Shared by the recipes."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass
class SystemReport:
    folder: Path
    flow: dict
    clusters: pd.DataFrame | None
    table1: dict | None

    @property
    def label(self) -> str:
        return (self.table1 or {}).get("system") or self.flow.get("system") or self.folder.name


def recipe_arguments(doc: str):
    """The recipes' command line: campaign files or report folders, and -o OUT (made)."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", nargs="+", help="campaign files or report folders")
    ap.add_argument("-o", "--out", type=Path, default=Path("."))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    return find_reports(args.reports), args.out


def find_reports(paths: list[str]) -> list[SystemReport]:
    """Report folders named, or found below a named folder or a campaign's ROOT/report."""
    out = []
    for p in map(Path, paths):
        if p.suffix == ".toml":
            from lmpshear import campaign

            p = campaign.load(p).report_dir
        folders = [p] if (p / "flowcurve.json").exists() else sorted(q.parent for q in p.glob("*/flowcurve.json"))
        if not folders:
            sys.exit(f"no report (flowcurve.json) in {p}: run `lmpshear report` first")
        for f in folders:
            clusters = f / "clusters_vs_rate.csv"
            table1 = f / "table1.json"
            out.append(
                SystemReport(
                    f,
                    json.loads((f / "flowcurve.json").read_text()),
                    pd.read_csv(clusters) if clusters.exists() else None,
                    json.loads(table1.read_text()) if table1.exists() else None,
                )
            )
    return out


def pm(value, error, digits=3) -> str:
    """'v ± e' with NaN shown as '—'."""
    if value is None or value != value:
        return "—"
    if error is None or error != error:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}g} ± {error:.2g}"


def percent(fraction) -> str:
    """A fraction as 'p.p%' (two significant digits below 1%), NaN as '—'."""
    if fraction is None or fraction != fraction:
        return "—"
    return f"{100 * fraction:.1f}%" if fraction >= 0.01 or fraction == 0 else f"{100 * fraction:.2g}%"
