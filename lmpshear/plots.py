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
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
