"""Figures a person would rather look at than read."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lmpshear.rundir import RunDir  # noqa: E402
from lmpshear.store import read_thermo  # noqa: E402


def run_overview(rundir: str | Path, out: str | Path, eta: dict | None = None) -> Path:
    """Temperature, potential energy and shear stress against strain, steady window shaded."""
    rd = RunDir(rundir)
    spec = rd.spec()
    th = read_thermo(rd.thermo)
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True, constrained_layout=True)
    strain = th["strain"]
    axes[0].plot(strain, th["temp"], lw=0.8)
    axes[0].axhline(spec.system.temperature, color="k", ls="--", lw=0.8, label="target")
    axes[0].set_ylabel("T (peculiar)")
    axes[0].legend(loc="upper right")
    axes[1].plot(strain, th["pe"], lw=0.8, color="C2")
    axes[1].set_ylabel("potential energy / N")
    axes[2].plot(strain, -th["pxy_virial"], lw=0.6, color="C3", label=r"$\sigma_{xy}$ virial (eq. 1)")
    axes[2].plot(strain, -th["pxy"], lw=0.6, color="C0", alpha=0.6, label=r"$\sigma_{xy}$ kinetic + virial")
    if eta is not None:
        axes[2].axhline(eta["shear_stress"], color="k", lw=1.0,
                        label=rf"steady mean: $\eta$ = {eta['eta']:.3g} $\pm$ {eta['eta_error']:.2g}")
    axes[2].set_ylabel(r"shear stress $-P_{xy}$")
    axes[2].set_xlabel(r"strain $\dot\gamma t$")
    axes[2].legend(loc="lower right", fontsize=8)
    for ax in axes:
        ax.axvspan(spec.steady_strain, strain.max(), color="0.9", zorder=0)
    fig.suptitle(f"{spec.system.name}: N = {spec.system.n_particles}, T = {spec.system.temperature:g}, "
                 rf"$\dot\gamma$ = {spec.rate.rate:g} (shaded: steady window)")
    return save_png(fig, out)


def flow_curve_figure(fc, out: str | Path) -> Path:
    """η(γ̇) in log-log with error bars; the fitted points and the power law highlighted."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 4.2), constrained_layout=True)
    ax.errorbar(fc.rates, fc.eta, yerr=fc.eta_error, fmt="o", color="0.5", ms=5, label="runs")
    ax.errorbar(fc.rates[fc.in_fit], fc.eta[fc.in_fit], yerr=fc.eta_error[fc.in_fit], fmt="o", color="C3", ms=5,
                label="shear-thinning regime")
    if fc.fit:
        f = fc.fit
        x = np.geomspace(f.rate_range[0], f.rate_range[1], 50)
        ax.plot(x, f.prefactor * x ** -f.exponent, "C3-",
                label=rf"$\eta\sim\dot\gamma^{{-\lambda}}$, $\lambda$ = {f.exponent:.3f} $\pm$ {f.exponent_error:.3f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"shear rate $\dot\gamma$")
    ax.set_ylabel(r"$\eta$ (virial, eq. 1)")
    ax.legend(fontsize=8)
    return save_png(fig, out)


def dynamics(rundir: str | Path, out: str | Path) -> Path:
    """MSD (with the cage size) and χ4(t) (with t_χ) of one analysed run."""
    import json

    rd = RunDir(rundir)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    msd, ovl = rd.product("msd.json"), rd.product("overlap.json")
    if msd.exists():
        m = json.loads(msd.read_text())["result"]
        ax = axes[0]
        for name, curve in zip(m["species"], m["msd_species"]):
            ax.loglog(m["times"], curve, lw=1, label=f"MSD of r̃, {name}")
        if m.get("msd_cage_relative"):
            ax.loglog(m["times"], m["msd_cage_relative"], "k--", lw=1, label="cage-relative MSD")
        if m.get("cage_size"):
            ax.axhline(m["cage_size"], color="C3", lw=0.8, label=rf"$l_c^2$ = {m['cage_size']:.3g}")
        ax.set_xlabel("t")
        ax.set_ylabel("MSD")
        ax.legend(fontsize=8)
    if ovl.exists():
        o = json.loads(ovl.read_text())["result"]
        ax = axes[1]
        ax.errorbar(o["times"], o["chi4"], yerr=o.get("chi4_error"), fmt="C0-o", ms=3, capsize=2,
                    label=r"$\chi_4$ collective (eq. 14), jackknife errors")
        ax.errorbar(o["times"], o["chi4_self"], yerr=o.get("chi4_self_error"), fmt="C1-s", ms=3, capsize=2,
                    label=r"$\chi_4$ self")
        ax.set_xscale("log")
        ax.axvline(o["t_chi"], color="C0", ls=":",
                   label=rf"$t_\chi$ = {o['t_chi']:.3g} $\pm$ {o.get('t_chi_error', float('nan')):.2g}")
        ax.set_xlabel("t")
        ax.set_ylabel(r"$\chi_4$")
        ax.legend(fontsize=8)
    info = rd.info()
    fig.suptitle(f"{info.name} at rate {info.rate:g}: steady-state dynamics ({rd.path.name})")
    return save_png(fig, out)


def save_png(fig, out: str | Path) -> Path:
    """Write ``fig`` as PNG (120 dpi) and free it."""
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def table1_figure(row, out: str | Path) -> Path:
    """Table I as a picture: ν_c against λ/(D+1) for the paper's four systems and this one, on the
    line of eq. 9 (ν_c = λ/(D+1))."""
    from lmpshear.analysis.scaling import PAPER_TABLE1

    fig, ax = plt.subplots(figsize=(5.5, 5), constrained_layout=True)
    for k, (name, p) in enumerate(PAPER_TABLE1.items()):
        ax.plot(p["lambda_over_D1"], p["nu_c"], "o", mfc="none", color=f"C{k}", ms=8, label=f"paper: {name}")
    ax.errorbar(row.lam_over_D1, row.nu_c, xerr=row.lam_over_D1_error, yerr=row.nu_c_error, fmt="s", color="k",
                capsize=3, label=f"lmpshear: {row.system}")
    lo = min(0.1, row.lam_over_D1 - 2 * row.lam_over_D1_error, row.nu_c - 2 * row.nu_c_error)
    hi = max(0.3, row.lam_over_D1 + 2 * row.lam_over_D1_error, row.nu_c + 2 * row.nu_c_error)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label=r"eq. 9: $\nu_c = \lambda/(D+1)$")
    ax.set_xlabel(r"$\lambda/(D+1)$ (flow curve)")
    ax.set_ylabel(r"$\nu_c$ ($\xi_c \sim \dot\gamma^{-\nu_c}$)")
    ax.set_title(f"Table I (rates {', '.join(f'{r:g}' for r in row.rates)})", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    return save_png(fig, out)
