"""The time scale of the cluster windows on a finished, analysed run (the fidelity issue's first question).

    python analysis/validation/tchi_probe.py RUNDIR --out DIR [--a 0.2 0.3 0.4 0.5 0.6 0.7]
                                            [--origins 120] [--windows 1 2 5 10] [--paper-frames 100]

1. χ4(t) (eq. 14, collective, with the paper's shear correction) for several overlap radii a, with
   jackknife error bars over blocks of time origins, and t_χ(a) with its error.
2. The self-intermediate scattering function F_s(q, t) = ⟨cos(q Δr̃_α)⟩ (non-affine displacements,
   averaged over the three axes) at q = 2π/r₁, r₁ the first peak of g(r): τ_α where F_s = 1/e.
3. The MSD beside a² and the given l_c²: an overlap radius with a² below the cage size measures
   rattling inside the cage, not its escape.
4. The cluster analysis (the `clusters` stage itself) with windows of 1, 2, 5, 10 t_χ and of
   ``--paper-frames`` Δt (the paper's "Δt ≈ 0.01 t_χ"), taken literally (min_jumps_per_block = 0), and
   with the run's own [analysis] rule: P̄_c, ξ_c, η_c/η (both conventions of eq. 2), t_y, ρ_th, jumps per
   block, dispersion index; then C' = 2, 3, 4 at the run's rule (the paper: ξ_c = 6.461, 6.627, 6.902).

Writes DIR/tchi_probe.json and DIR/tchi_probe.png.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from lmpshear.drawing import plt, save_png
from lmpshear.kernels.fourpoint import crossing
from lmpshear.kernels.overlap import log_lags, origins_in, susceptibility
from lmpshear.rundir import RunDir, atomic_write_json
from lmpshear.stages import Context
from lmpshear.stages.clusters import clusters as _clusters


def self_scattering(nonaffine: np.ndarray, origins: np.ndarray, lags: np.ndarray, q: float) -> np.ndarray:
    out = []
    for lag in lags:
        use = origins[origins + lag < len(nonaffine)]
        out.append(np.mean([np.cos(q * (nonaffine[o + lag] - nonaffine[o])).mean() for o in use]))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("rundir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--a", type=float, nargs="+", default=[0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    ap.add_argument("--origins", type=int, default=120)
    ap.add_argument("--lags", type=int, default=40)
    ap.add_argument("--windows", type=float, nargs="+", default=[1, 2, 5, 10])
    ap.add_argument("--paper-frames", type=int, default=100)
    ap.add_argument("--cprime", type=float, nargs="+", default=[2, 3, 4])
    args = ap.parse_args()
    rd = RunDir(args.rundir)
    info = rd.info()
    ctx = Context(rd, info)
    window = ctx.steady
    times = window.times
    dt = float(times[1] - times[0])
    positions, nonaffine, cells = window.unwrapped, window.nonaffine, window.cells
    origins = origins_in(0, len(window) - 2, args.origins)
    lags = log_lags(len(window) - 1, args.lags)
    out = {
        "run": str(rd.path),
        "rate": info.rate,
        "frames": len(window),
        "sample_interval": dt,
        "steady_duration": float(times[-1] - times[0]),
        "origins": len(origins),
        "overlap": {},
    }
    started = time.perf_counter()
    for a in args.a:
        s = susceptibility(positions, nonaffine, cells, times, info.temperature, a, origins, lags)
        out["overlap"][f"{a:g}"] = {
            "t": s.times.tolist(),
            "chi4": s.chi4.tolist(),
            "chi4_error": s.chi4_error.tolist(),
            "q": s.q.tolist(),
            "chi4_self": s.chi4_self.tolist(),
            "t_chi": s.t_chi,
            "t_chi_error": s.t_chi_error,
            "chi4_max": float(s.chi4.max()),
            "q_at_t_chi": float(s.q[np.argmax(s.chi4)]),
            "n_origins": s.n_origins.tolist(),
        }
        print(
            f"a = {a:g}: t_chi = {s.t_chi:.4g} +/- {s.t_chi_error:.2g} ({s.t_chi / dt:.3g} frames), chi4 max "
            f"{s.chi4.max():.3g} +/- {s.chi4_error[np.argmax(s.chi4)]:.2g}, Q/N there {s.q[np.argmax(s.chi4)]:.3g} "
            f"({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    structure = ctx.product("structure")
    r, g = np.array(structure["r"]), np.array(structure["g"])
    r1 = float(r[np.argmax(g)])
    q = 2 * np.pi / r1
    lag_t = times[lags] - times[0]
    fs = self_scattering(nonaffine, origins, lags, q)
    tau_alpha = crossing(lag_t, fs, np.exp(-1))
    msd = ctx.product("msd")
    out["self_scattering"] = {"q": q, "r1": r1, "t": lag_t.tolist(), "F_s": fs.tolist(), "tau_alpha": tau_alpha}
    out["msd"] = {
        "t": msd["times"],
        "msd": msd["msd"],
        "cage_size": msd["cage_size"],
        "cage_size_measured": msd.get("cage_size_measured"),
    }
    print(f"F_s(q = {q:.3g}) = 1/e at tau_alpha = {tau_alpha:.4g} ({tau_alpha / dt:.3g} frames)", flush=True)

    t_chi = ctx.product("overlap")["t_chi"]
    eta = ctx.product("viscosity")["eta"]
    scan = []
    multiples = list(args.windows) + [args.paper_frames * dt / t_chi]
    variants = (
        [("literal", {"cluster_window": float(m), "min_jumps_per_block": 0.0}) for m in multiples]
        + [("rule", {})]
        + [("cprime", {"min_stz": float(c)}) for c in args.cprime]
    )
    for k, (kind, change) in enumerate(variants):
        c = Context(rd, replace(info, analysis=replace(info.analysis, **change)))
        res = _clusters(c)
        c.close()
        s = res["summary"]
        row = {
            "kind": kind,
            "change": change,
            "window": s["window"],
            "multiple_of_t_chi": s["window"] / t_chi,
            "paper_frames": kind == "literal" and k == len(multiples) - 1,
            "window_rule": s["window_rule"],
            "min_stz": c.info.analysis.min_stz,
            "windows": s["windows"],
            "clusters": s["clusters"],
            "yielded": s["yielded"],
            "P_c_mean_all": s["P_c_mean_all"],
            "P_c_mean_yielded": s["P_c_mean_yielded"],
            "xi_c": s["xi_c"],
            "xi_c_all": s["xi_c_all"],
            "sigma_c_y": s["sigma_c_y"],
            "eta_c": s["eta_c"],
            "eta": eta,
            "eta_c_over_eta": s["eta_c"] / eta,
            "eta_c_over_eta_paper_eq2": s["by_convention"]["paper"][f"eta_c_{s['p_c_clusters']}"] / eta,
            "t_y": s["t_y"],
            "threshold": s["threshold"],
            "mean_jumps_per_block": s["mean_jumps_per_block"],
            "jumps_per_particle_per_window": s["jumps_per_particle_per_window"],
            "kept_fraction": s["kept_fraction"],
            "dispersion_index": s["dispersion_index"],
            "dispersion_z": s["dispersion_z"],
            "warnings": s["warnings"],
        }
        scan.append(row)
        print(
            f"{kind} {change}: window {s['window']:.4g} ({row['multiple_of_t_chi']:.3g} t_chi), {s['windows']} "
            f"windows, {s['clusters']} clusters ({s['yielded']} yielded), P_c all/yielded {s['P_c_mean_all']:.3g}/"
            f"{s['P_c_mean_yielded']:.3g}, xi_c {s['xi_c']:.3g}, eta_c/eta {row['eta_c_over_eta']:.3g} (printed eq. 2: "
            f"{row['eta_c_over_eta_paper_eq2']:.3g}), t_y {s['t_y']:.3g}, rho_th {s['threshold']:.3g}, "
            f"{s['mean_jumps_per_block']:.3g} jumps/block, dispersion {s['dispersion_index']:.3g} "
            f"(z {s['dispersion_z']:.3g}) ({time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    out["window_scan"] = scan
    ctx.close()
    dest = Path(args.out)
    dest.mkdir(parents=True, exist_ok=True)
    atomic_write_json(dest / "tchi_probe.json", out)
    print(f"wrote {dest / 'tchi_probe.json'} and {figure(out, dest / 'tchi_probe.png')}")


def figure(out: dict, path: Path) -> Path:
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    for k, (a, o) in enumerate(out["overlap"].items()):
        axes[0].errorbar(
            o["t"],
            o["chi4"],
            yerr=o["chi4_error"],
            color=f"C{k}",
            lw=0.8,
            capsize=1.5,
            label=rf"a = {a}: $t_\chi$ = {o['t_chi']:.3g} $\pm$ {o['t_chi_error']:.2g}",
        )
    axes[0].set_xscale("log")
    axes[0].set_xlabel("t")
    axes[0].set_ylabel(r"$\chi_4(t)$ (eq. 14)")
    axes[0].legend(fontsize=7)
    axes[0].set_title("(a) dynamic susceptibility, jackknife errors", loc="left", fontsize=9)
    sc, m = out["self_scattering"], out["msd"]
    axes[1].plot(sc["t"], sc["F_s"], "k", label=rf"$F_s(q={sc['q']:.2f}, t)$: $\tau_\alpha$ = {sc['tau_alpha']:.3g}")
    axes[1].axhline(np.exp(-1), color="0.6", ls=":", lw=0.8)
    for k, (a, o) in enumerate(out["overlap"].items()):
        axes[1].plot(o["t"], o["q"], color=f"C{k}", lw=0.8, label=f"Q(t)/N, a = {a}")
    axes[1].set_xscale("log")
    axes[1].set_xlabel("t")
    axes[1].legend(fontsize=7)
    twin = axes[1].twinx()
    twin.loglog(m["t"], m["msd"], "C7--", lw=1)
    twin.axhline(m["cage_size"], color="C7", ls=":", lw=0.8)
    twin.set_ylabel(r"MSD (dashed), $l_c^2$ (dotted)", color="C7")
    axes[1].set_title("(b) overlap, self-scattering, MSD", loc="left", fontsize=9)
    scan = [r for r in out["window_scan"] if r["kind"] == "literal"]
    w = [r["window"] for r in scan]
    for key, label, c in (
        ("P_c_mean_all", r"$\bar P_c$ (all)", "C0"),
        ("eta_c_over_eta", r"$\eta_c/\eta$", "C3"),
        ("kept_fraction", "kept volume fraction", "C2"),
    ):
        axes[2].plot(w, [r[key] for r in scan], "o-", color=c, label=label)
    two = axes[2].twinx()
    two.plot(w, [r["xi_c"] for r in scan], "s--", color="C1", label=r"$\xi_c$")
    two.plot(w, [r["mean_jumps_per_block"] for r in scan], "^:", color="C4", label="jumps per block")
    two.set_yscale("log")
    axes[2].set_xscale("log")
    axes[2].set_xlabel("window length W")
    axes[2].axvline(scan[-1]["window"], color="0.6", ls=":", lw=0.8)
    rule = [r for r in out["window_scan"] if r["kind"] == "rule"]
    if rule:
        axes[2].axvline(rule[0]["window"], color="C3", ls="--", lw=0.8)
    axes[2].legend(fontsize=7, loc="upper left")
    two.legend(fontsize=7, loc="lower right")
    axes[2].set_title(
        "(c) clusters against the window (dotted: 100 Δt; dashed: the default rule)", loc="left", fontsize=9
    )
    fig.suptitle(f"{out['run']}: rate {out['rate']:g}, {out['frames']} frames every {out['sample_interval']:g}")
    return save_png(fig, path)


if __name__ == "__main__":
    main()
