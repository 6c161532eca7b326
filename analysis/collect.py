"""Copy the small products of an analysed run into a results folder (never the trajectory).

    python analysis/collect.py RUNDIR OUTDIR

Writes OUTDIR/{viscosity,structure,msd,overlap,cagejumps,s4,gjj,facilitation}.json as they are, phm_summary.json
(the phm stage without its per-particle arrays, with bootstrap errors of the matching ratios), clusters_summary.json
(the clusters stage's summary, parameters, per-window sieve diagnostics and uncertainties: a bootstrap
over the yielded clusters for σ_c,y, ξ_c and t_y, the standard error of P̄_c from blocks of one window
length, and η_c's from both), clusters_table.csv (one row per cluster), the run's config.toml and
manifest.json, and the per-run figures
(`lmpshear figures`).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from lmpshear.run_figures import run_figures
from lmpshear.rundir import Product, atomic_write_json


def collect(rundir: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in (
        "viscosity.json",
        "structure.json",
        "msd.json",
        "overlap.json",
        "cagejumps.json",
        "s4.json",
        "gjj.json",
        "config.toml",
        "manifest.json",
    ):
        if (rundir / name).exists():
            shutil.copy2(rundir / name, out / name)
    clusters = rundir / "clusters.json"
    if clusters.exists():
        stored = Product.read(clusters)
        result = stored.result
        atomic_write_json(
            out / "clusters_summary.json",
            {
                "params": stored.params,
                "summary": result["summary"],
                "uncertainty": uncertainty(result),
                "sieve": result["sieve"],
            },
        )
        pd.DataFrame(result["clusters"]).drop(columns=["centre"]).to_csv(out / "clusters_table.csv", index=False)
        for path in run_figures(rundir, out):
            print(f"figure: {path}")
    if (rundir / "phm.json").exists():
        stored = Product.read(rundir / "phm.json")
        result = stored.result
        light = [
            {k: v for k, v in c.items() if k not in ("members_list", "positions", "soft_modes", "jumps")}
            for c in result["clusters"]
        ]
        atomic_write_json(
            out / "phm_summary.json",
            {"params": stored.params, "summary": result["summary"], "uncertainty": phm_uncertainty(result)}
            | {
                k: result[k]
                for k in ("radii", "matched", "chance", "matched_all", "chance_all", "spots")
                if k in result
            }
            | {"clusters": light},
        )
    if (rundir / "facilitation.json").exists():
        shutil.copy2(rundir / "facilitation.json", out / "facilitation.json")
    print(f"collected {rundir} -> {out}")


def phm_uncertainty(result: dict, samples: int = 2000, seed: int = 0) -> dict:
    """Bootstrap over clusters of the pooled matching ratios at every radius (spots are counted per
    cluster, so clusters are the independent units)."""
    rows = [c for c in result["clusters"] if "match" in c]
    if len(rows) < 2:
        return {}
    rng = np.random.default_rng(seed)
    out = {}
    for key in ("match", "match_all"):
        n = np.array([c[key]["n_spots"] for c in rows], dtype=float)
        for name in ("spots_matched", "chance"):
            hits = np.array([np.array(c[key][name]) * c[key]["n_spots"] for c in rows])
            draws = rng.integers(0, len(rows), size=(samples, len(rows)))
            ratio = hits[draws].sum(axis=1) / np.maximum(n[draws].sum(axis=1), 1)[:, None]
            out[f"{key}.{name}"] = ratio.std(axis=0, ddof=1).tolist()
    return out


def uncertainty(result: dict, samples: int = 2000, seed: int = 0) -> dict:
    """Standard errors of the summary's P̄_c, σ_c,y, ξ_c and η_c (see the module docstring)."""
    from lmpshear.kernels.sieve import radius_of_volume

    s = result["summary"]
    rng = np.random.default_rng(seed)
    yielded = [r for r in result["clusters"] if "t2" in r]
    if not yielded or not s.get("P_c_span"):
        return {}
    stress = np.array([r["stress_at_yield"] for r in yielded]) * (2.0 if s["atomic_stress"] == "paper" else 1.0)
    volume = np.array([r["volume"] for r in yielded])
    dim = len(yielded[0]["centre"])
    draws = rng.integers(0, len(yielded), size=(samples, len(yielded)))
    sigma_se = float(stress[draws].mean(axis=1).std(ddof=1))
    xi_se = float(radius_of_volume(volume[draws].mean(axis=1), dim).std(ddof=1))
    t_y = np.array([r["t2"] - r["t0"] for r in yielded])
    t_y_se = float(t_y[draws].mean(axis=1).std(ddof=1))
    whole = result["P_c"]["all"]
    t = np.array(whole["t"])
    p = np.array(whole[s["p_c_clusters"]])
    lo, hi = s["P_c_span"]
    inside = (t >= lo - 1e-9) & (t <= hi + 1e-9)
    blocks = np.floor((t[inside] - lo) / s["window"]).astype(int)
    means = np.array([p[inside][blocks == b].mean() for b in np.unique(blocks)])
    p_se = float(means.std(ddof=1) / np.sqrt(len(means))) if len(means) > 1 else float("nan")
    eta_se = float(abs(s["eta_c"]) * np.hypot(p_se / s["P_c_mean"], sigma_se / s["sigma_c_y"]))
    return {
        "P_c_mean": p_se,
        "P_c_blocks": len(means),
        "sigma_c_y": sigma_se,
        "xi_c": xi_se,
        "eta_c": eta_se,
        "t_y": t_y_se,
    }


if __name__ == "__main__":
    collect(Path(sys.argv[1]), Path(sys.argv[2]))
