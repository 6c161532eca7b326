"""Does ξ_c converge with the sieve's grain? ξ_c of one analysed run against the coarse grain (BD:
blocks of L/6 to L/15; MD: the kernel's d from 0.5 to 2 times g(r)'s first minimum) at the run's own
window, and against the window W (1 to 20 t_χ, the jump-count rule off) at the run's own grain;
beside each, what the same sieve finds on the nulls (jumps placed uniformly, particle labels
permuted) and the significance rule's clusters; and the run's resolution-free lengths (ξ_4 of the s4
stage, ξ_jj of the gjj stage) where they exist.

    python analysis/recipes/sieve_convergence.py RUNDIR -o OUT [--grains 6 8 10 12 15] [--windows 1 2 5 10 20]

Writes OUT/sieve_convergence.{json,csv,png} and prints the table and one sentence.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from lmpshear.drawing import legend_beside, plt, save_png
from lmpshear.rundir import RunDir
from lmpshear.stages import Context
from lmpshear.stages.clusters import clusters
from lmpshear.store import Trajectory


def sieve(rd: RunDir, info, change: dict) -> dict:
    """The clusters stage's summary with [analysis] keys changed (nothing written to the run)."""
    ctx = Context(rd, replace(info, analysis=replace(info.analysis, **change)))
    try:
        s = clusters(ctx)["summary"]
    finally:
        ctx.close()
    return {
        "window": s["window"],
        "coarse_block": s["coarse_block"],
        "kernel_length": s.get("kernel_length"),
        "xi_c": s["xi_c"],
        "xi_c_all": s["xi_c_all"],
        "clusters_per_window": s["clusters_per_window"],
        "kept_fraction": s["kept_fraction"],
        "jumps_per_block": s["mean_jumps_per_block"],
        "null_uniform_kept": s["null"]["uniform"]["kept_fraction"],
        "null_uniform_xi": s["null"]["uniform"]["xi_c"],
        "null_particles_kept": s["null"]["particles"]["kept_fraction"],
        "null_particles_xi": s["null"]["particles"]["xi_c"],
    }


def figure(table: pd.DataFrame, lengths: dict, kernel: bool, title: str, path: Path) -> Path:
    """ξ_c against the grain (left) and the window (right), both rules, the uniform null, ξ_4 and ξ_jj."""
    import textwrap

    paper = table[table.rule == "background"]
    grain, window = paper[paper.scan == "grain"], paper[paper.scan == "window"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    for rule, style in (("background", "o-"), ("significance", "s--")):
        t = table[(table.rule == rule) & (table.scan == "grain")]
        x = t.coarse_block if not kernel else t.kernel_length
        a.plot(x, t.xi_c, style, label=f"xi_c, yielded ({rule})")
        a.plot(x, t.xi_c_all, style, alpha=0.5, label=f"xi_c, all regions ({rule})")
        t = table[(table.rule == rule) & (table.scan == "window")]
        b.plot(t.multiple, t.xi_c, style, label=f"xi_c, yielded ({rule})")
        b.plot(t.multiple, t.xi_c_all, style, alpha=0.5, label=f"xi_c, all regions ({rule})")
    a.plot(x, grain.null_uniform_xi, "k:", label="uniform null (paper's rule)")
    b.plot(window.multiple, window.null_uniform_xi, "k:", label="uniform null (paper's rule)")
    for ax in (a, b):
        for name, value in lengths.items():
            if (
                name.startswith(("xi4_t_chi", "xi4_tau_alpha", "xi_jj_t_chi", "xi_jj_cluster_window"))
                and not name.endswith(("error", "oz4"))
                and np.isfinite(value)
            ):
                ax.axhline(value, lw=0.8, ls="-.", color="C3" if "xi4" in name else "C2", label=name)
        ax.set_xscale("log")
        if any(np.nanmax(np.asarray(line.get_ydata(), float), initial=0) > 0 for line in ax.get_lines()):
            ax.set_yscale("log")
        ax.set_ylabel("length (d0)")
        legend_beside(ax, fontsize=6)
    a.set_xlabel("kernel length d" if kernel else "coarse block edge (d0)")
    b.set_xlabel("window W / t_chi")
    fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=8)
    return save_png(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rundir")
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument(
        "--grains",
        type=float,
        nargs="+",
        help="BD: blocks per edge (default 6 8 10 12 15); MD: kernel scales (default 0.5 0.75 1 1.5 2)",
    )
    ap.add_argument("--windows", type=float, nargs="+", default=[1, 2, 5, 10, 20], help="W in units of t_chi")
    ap.add_argument("--replot", action="store_true", help="Only draw the figure again from OUT's JSON")
    args = ap.parse_args()
    if args.replot:
        saved = json.loads((Path(args.out) / "sieve_convergence.json").read_text())
        info = RunDir(args.rundir).info()
        print(
            figure(
                pd.DataFrame(saved["rows"]),
                saved["lengths"],
                saved["sieve"] == "kernel",
                f"{info.name}, rate {info.rate:g}: {saved['sentence']}",
                Path(args.out) / "sieve_convergence.png",
            )
        )
        return
    rd = RunDir(args.rundir)
    info = rd.info()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = rd.result("clusters")["summary"]
    kernel = info.analysis.cluster_sieve == "kernel"
    with Trajectory(rd.store) as traj:
        lx = traj.cell(0).lx  # the edge does not change under shear
    grains = args.grains or ([0.5, 0.75, 1.0, 1.5, 2.0] if kernel else [6, 8, 10, 12, 15])
    rows, started = [], time.perf_counter()
    own_window = {"cluster_window": base["window_multiple"], "min_jumps_per_block": 0.0}
    for g in grains:
        change = own_window | ({"kernel_scale": float(g)} if kernel else {"cluster_block": lx / g})
        for rule in ("background", "significance"):
            row = {"scan": "grain", "grain": g, "multiple": base["window_multiple"], "rule": rule}
            rows.append(row | sieve(rd, info, change | {"cluster_threshold": rule}))
            print(
                f"grain {g:g} ({rule}): xi_c = {rows[-1]['xi_c']:.3g} ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    own_grain = {"kernel_scale": info.analysis.kernel_scale} if kernel else {"cluster_block": base["coarse_block"]}
    for m in args.windows:
        for rule in ("background", "significance"):
            row = {"scan": "window", "grain": None, "multiple": m, "rule": rule}
            change = own_grain | {"cluster_window": float(m), "min_jumps_per_block": 0.0, "cluster_threshold": rule}
            rows.append(row | sieve(rd, info, change))
            print(
                f"window {m:g} t_chi ({rule}): xi_c = {rows[-1]['xi_c']:.3g} ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
    table = pd.DataFrame(rows)
    table.to_csv(out / "sieve_convergence.csv", index=False)
    lengths = {}
    if (s4 := rd.result("s4")) is not None:
        lengths |= {k: v for k, v in s4["summary"].items() if k.startswith("xi4")}
    if (gjj := rd.result("gjj")) is not None:
        lengths |= gjj["summary"]
    paper = table[table.rule == "background"]
    grain = paper[paper.scan == "grain"]
    window = paper[paper.scan == "window"]
    size = grain.coarse_block if not kernel else grain.kernel_length
    slope = float(np.polyfit(np.log(size), np.log(grain.xi_c_all), 1)[0]) if len(grain) > 1 else float("nan")
    wslope = (
        float(np.polyfit(np.log(window.window), np.log(window.xi_c_all), 1)[0]) if len(window) > 1 else float("nan")
    )
    verdict = (
        "it cannot be told whether xi_c converges with the sieve's grain (no regions at some grains)"
        if not np.isfinite(slope)
        else f"xi_c does {'not ' if abs(slope) > 0.2 else ''}converge with the sieve's grain"
    )
    sentence = (
        f"{verdict}: over a "
        f"{size.max() / size.min():.2g}-fold grain it grows as grain^{slope:.2f} (all regions), and over "
        f"{window.multiple.min():g}-{window.multiple.max():g} t_chi windows as W^{wslope:.2f}; the uniform null "
        f"keeps {grain.null_uniform_kept.mean():.2f} of the volume where the real jumps keep "
        f"{grain.kept_fraction.mean():.2f}."
    )
    summary = {
        "run": str(rd.path),
        "sieve": info.analysis.cluster_sieve,
        "grain_exponent": slope,
        "window_exponent": wslope,
        "lengths": lengths,
        "sentence": sentence,
        "seconds": time.perf_counter() - started,
        "rows": rows,
    }
    (out / "sieve_convergence.json").write_text(json.dumps(summary, indent=1, default=float))
    figure(table, lengths, kernel, f"{info.name}, rate {info.rate:g}: {sentence}", out / "sieve_convergence.png")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print(sentence)


if __name__ == "__main__":
    main()
