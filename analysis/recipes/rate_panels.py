"""The paper's multi-run panels from finished campaigns' reports, every system in one figure:
(a) flow curves η(γ̇) with the power-law fits (Fig. 1a, 5a, 5c); (b) η_c against η with η_c = η
(Fig. 3b, 7a, 7c); (c) ξ_c(γ̇) with the ν_c fits (Fig. 3c, 7b, 7d); (d) P̄_c(γ̇) (Fig. 3a's mean).

    python analysis/recipes/rate_panels.py analysis/campaigns/bd425.toml analysis/results/bd45-N20000/report -o OUT

Writes OUT/rate_panels.png.
"""

from __future__ import annotations

import numpy as np
from _reports import recipe_arguments

from lmpshear.drawing import legend_beside, plt, save_png


def main() -> None:
    reports, out = recipe_arguments(__doc__)
    fig, ax = plt.subplots(1, 4, figsize=(17, 4.2))
    for k, r in enumerate(reports):
        colour = f"C{k}"
        rates, eta, err = (np.asarray(r.flow[key], float) for key in ("rates", "eta", "eta_error"))
        ax[0].errorbar(rates, eta, err, fmt="o", color=colour, label=r.label)
        fit = r.flow.get("fit")
        if fit:
            g = np.geomspace(*fit["rate_range"], 20)
            ax[0].plot(
                g,
                fit["prefactor"] * g ** -fit["exponent"],
                "-",
                color=colour,
                label=f"λ = {fit['exponent']:.3f} ± {fit['exponent_error']:.3f}",
            )
        if r.clusters is not None:
            c = r.clusters.sort_values("rate")
            ax[1].plot(c.eta, c.eta_c, "s", color=colour, label=r.label)
            ax[3].plot(c.rate, c.P_c_mean, "^-", color=colour, label=r.label)
        t = r.table1
        if t:
            ax[2].errorbar(t["rates"], t["xi_c"], t["xi_c_error"], fmt="D", color=colour, label=r.label)
            g = np.geomspace(min(t["rates"]), max(t["rates"]), 20)
            ax[2].plot(
                g,
                t["xi_prefactor"] * g ** -t["nu_c"],
                "-",
                color=colour,
                label=f"ν_c = {t['nu_c']:.3f} ± {t['nu_c_error']:.3f}",
            )
    lim = [min(a for a in ax[1].get_xlim() + ax[1].get_ylim() if a > 0), max(ax[1].get_xlim() + ax[1].get_ylim())]
    ax[1].plot(lim, lim, "k--", lw=1, label="η_c = η")
    for a, (xl, yl, title) in zip(
        ax,
        [
            ("γ̇", "η", "(a) flow curves"),
            ("η", "η_c", "(b) cluster viscosity"),
            ("γ̇", "ξ_c", "(c) cluster radius"),
            ("γ̇", "P̄_c", "(d) fraction in clusters"),
        ],
    ):
        a.set(xscale="log", yscale="log" if title[1] in "abc" else "linear", xlabel=xl, ylabel=yl, title=title)
        legend_beside(a, fontsize=7)
    ax[3].set_ylim(0, 1)
    ax[3].axhline(0.8, color="k", ls=":", lw=1)  # the paper's P̄_c (Fig. 3a)
    fig.tight_layout()
    print(save_png(fig, out / "rate_panels.png"))


if __name__ == "__main__":
    main()
