"""The report's figures across the rates of one system: the flow curve, Table I, Fig. 3b–d/7 against
the rate, the lengths and Fig. 4b–d/7b,d. One run's figures: :mod:`lmpshear.run_figures`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lmpshear.drawing import legend_beside, no_data, plain_log_ticks, plt, save_png


def flow_curve_figure(fc, out: str | Path, system: str = "") -> Path:
    """η(γ̇) in log-log with error bars; the fitted points and the power law highlighted. A legend
    entry only for what is drawn."""
    fig, ax = plt.subplots(figsize=(7, 4.2), constrained_layout=True)
    for chosen, color, label in (
        (~fc.in_fit, "0.5", "not fitted (outside the shear-thinning regime)"),
        (fc.in_fit, "C3", "fitted (shear-thinning regime)"),
    ):
        if chosen.any():
            ax.errorbar(
                fc.rates[chosen], fc.eta[chosen], yerr=fc.eta_error[chosen], fmt="o", color=color, ms=5, label=label
            )
    if fc.fit:
        f = fc.fit
        x = np.geomspace(f.rate_range[0], f.rate_range[1], 50)
        ax.plot(
            x,
            f.prefactor * x**-f.exponent,
            "C3-",
            label=rf"$\eta\sim\dot\gamma^{{-\lambda}}$, $\lambda$ = {f.exponent:.3f} $\pm$ {f.exponent_error:.3f}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(r"shear rate $\dot\gamma$")
    ax.set_ylabel(r"$\eta$ (virial, eq. 1)")
    plain_log_ticks(ax)
    title = f"{system}: flow curve" if system else "flow curve"
    ax.set_title(title + ("" if fc.fit else "\nfewer than 3 rates shear-thin: no power law fitted"), fontsize=9)
    legend_beside(ax, fontsize=8)
    return save_png(fig, out)


def table1_figure(row, out: str | Path) -> Path:
    """Table I as a picture: ν_c against λ/(D+1) for the paper's four systems and this one, on the
    line of eq. 9 (ν_c = λ/(D+1)), with the exponents of this system's other lengths beside its ν_c."""
    from lmpshear.kernels.scaling import LENGTH_LABELS, LENGTHS, PAPER_TABLE1

    fig, ax = plt.subplots(figsize=(5.5, 5), constrained_layout=True)
    for k, (name, p) in enumerate(PAPER_TABLE1.items()):
        ax.plot(p["lambda_over_D1"], p["nu_c"], "o", mfc="none", color=f"C{k}", ms=8, label=f"paper: {name}")
    ax.errorbar(
        row.lam_over_D1,
        row.nu_c,
        xerr=row.lam_over_D1_error,
        yerr=row.nu_c_error,
        fmt="s",
        color="k",
        capsize=3,
        label=f"lmpshear: {row.system}, ν_c (paper's sieve)",
    )
    nus = [row.nu_c]
    for k, (key, name) in enumerate(LENGTHS.items()):  # the other lengths' exponents at the same λ/(D+1)
        nu, err = (row.lengths or {}).get(name, np.nan), (row.lengths or {}).get(f"{name}_error", np.nan)
        if np.isfinite(nu):
            ax.errorbar(
                row.lam_over_D1 * (1 + 0.02 * (k + 1)),
                nu,
                yerr=err,
                fmt="^",
                color=f"C{k + 4}",
                capsize=2,
                ms=5,
                label=f"lmpshear: ν of {LENGTH_LABELS[key]}",
            )
            nus.append(nu)
    lo = min(0.1, row.lam_over_D1 - 2 * row.lam_over_D1_error, min(nus) - 2 * row.nu_c_error)
    hi = max(0.3, row.lam_over_D1 + 2 * row.lam_over_D1_error, max(nus) + 2 * row.nu_c_error)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label=r"eq. 9: $\nu_c = \lambda/(D+1)$")
    ax.set_xlabel(r"$\lambda/(D+1)$ (flow curve)")
    ax.set_ylabel(r"$\nu_c$ ($\xi_c \sim \dot\gamma^{-\nu_c}$)")
    ax.set_title(f"Table I (rates {', '.join(f'{r:g}' for r in row.rates)})", fontsize=9)
    legend_beside(ax, fontsize=7)
    return save_png(fig, out)


def rate_figure(rows: list[dict], out: str | Path, scaling=None) -> Path:
    """Fig. 3b–d (7): η_c and η, ξ_c, and t_y with t_χ against the rate; power-law fits when ≥ 3 rates.
    ``rows``: one dict per run with rate, eta, eta_c, xi_c, t_y, t_chi; ``scaling``: the Table I row,
    whose weighted ν_c fit (with its bootstrap errors) is the one drawn for ξ_c."""
    from lmpshear.kernels.flowcurve import fit_power_law

    rows = sorted(rows, key=lambda r: r["rate"])
    rate = np.array([r["rate"] for r in rows])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    panels = [
        (axes[0], [("eta", r"$\eta$ (eq. 1)", "C0"), ("eta_c", r"$\eta_c$ (eq. 8)", "C3")], "(a) viscosity"),
        (axes[1], [("xi_c", r"$\xi_c$", "C3")], "(b) cluster radius"),
        (
            axes[2],
            [("t_chi", r"$t_\chi$", "C0"), ("t_y", r"$t_y = \langle t_2 - t_0\rangle$", "C3")],
            "(c) yielding time",
        ),
    ]
    for ax, curves, title in panels:
        drawn = False
        for key, label, colour in curves:
            y = np.array([r.get(key, np.nan) for r in rows], dtype=float)
            ok = np.isfinite(y) & (y > 0)
            if not ok.any():  # e.g. runs without clusters that yield: nothing to put on a log scale
                continue
            drawn = True
            ax.plot(rate[ok], y[ok], "o", color=colour, label=label)
            if key == "xi_c" and scaling is not None:
                x = np.array(scaling.rates)
                ax.errorbar(x, scaling.xi_c, yerr=scaling.xi_c_error, fmt="none", color=colour, capsize=2)
                ax.plot(
                    x,
                    scaling.xi_prefactor * x**-scaling.nu_c,
                    "-",
                    color=colour,
                    lw=0.8,
                    label=rf"$\nu_c$ = {scaling.nu_c:.3f} $\pm$ {scaling.nu_c_error:.3f} (weighted)",
                )
            elif ok.sum() >= 3:
                fit = fit_power_law(rate[ok], y[ok], np.zeros(ok.sum()))
                x = np.geomspace(rate[ok].min(), rate[ok].max(), 50)
                ax.plot(
                    x,
                    fit.prefactor * x**-fit.exponent,
                    "-",
                    color=colour,
                    lw=0.8,
                    label=rf"$\sim\dot\gamma^{{-{fit.exponent:.2f}\pm{fit.exponent_error:.2f}}}$",
                )
        ax.set_xlabel(r"$\dot\gamma$")
        ax.set_title(title, loc="left", fontsize=9)
        if not drawn:
            no_data(ax, "no finite values\n(no clusters with a yield?)")
            continue
        ax.set_xscale("log")
        ax.set_yscale("log")
        plain_log_ticks(ax)
        legend_beside(ax, fontsize=8)
    fig.suptitle("against the shear rate (the paper's Fig. 3b-d, 7)", fontsize=10)
    return save_png(fig, out)


def lengths_panel(ax, rows: list[dict], table1: dict | None, title: str) -> None:
    """Every length against the rate on one log-log axis (one system): the paper's ξ_c with its bootstrap
    error, and LENGTHS (ξ_c under the significance rule, ξ_4, ξ_jj) with theirs; each labelled with
    its exponent from Table I where it has one; hollow, ξ_c of the sieve's uniform null.
    Guides of slope −λ/(D+1) (eq. 9) and −0.08 (Mizuno and Yamamoto's ν_4) through the lengths'
    geometric centre say which, if any, follows."""
    from lmpshear.kernels.scaling import LENGTH_LABELS, LENGTHS, MIZUNO_YAMAMOTO_NU4

    rows = sorted(rows, key=lambda r: r["rate"])
    rate = np.array([r["rate"] for r in rows], dtype=float)
    t = table1 or {}
    exponents = {"xi_c": ("nu_c", t)} | {k: (name, t.get("lengths") or {}) for k, name in LENGTHS.items()}
    xi_c_error = dict(zip(t.get("rates", []), t.get("xi_c_error", [])))
    drawn = []
    for k, (key, label) in enumerate(LENGTH_LABELS.items()):
        y = np.array([r.get(key, np.nan) for r in rows], dtype=float)
        err = np.array(
            [xi_c_error.get(r["rate"], np.nan) if key == "xi_c" else r.get(f"{key}_error", np.nan) for r in rows],
            dtype=float,
        )
        ok = np.isfinite(y) & (y > 0)
        if not ok.any():
            continue
        name, source = exponents[key]
        nu, nu_err = source.get(name, np.nan), source.get(f"{name}_error", np.nan)
        suffix = f": ν = {nu:.3f} ± {nu_err:.3f}" if nu is not None and np.isfinite(nu) else ""
        ax.errorbar(
            rate[ok],
            y[ok],
            yerr=np.where(np.isfinite(err[ok]), err[ok], 0),
            fmt="o-" if key == "xi_c" else "s-",
            color=f"C{k}",
            lw=0.8,
            ms=4,
            capsize=2,
            label=label + suffix,
        )
        drawn.append(y[ok])
    null = np.array([r.get("xi_c_null", np.nan) for r in rows], dtype=float)
    if np.isfinite(null).any():  # the sieve's grain: ξ_c of the same sieve on uniformly scattered jumps
        ax.plot(rate, null, "o--", color="C0", mfc="none", lw=0.8, ms=4, label="ξ_c of the sieve's uniform null")
    ax.set_xlabel(r"$\dot\gamma$")
    ax.set_ylabel("length")
    ax.set_title(title, loc="left", fontsize=9)
    if not drawn:
        no_data(ax, "no lengths")
        return
    centre = float(np.exp(np.mean(np.log(np.concatenate(drawn)))))
    x = np.geomspace(rate.min(), rate.max(), 20)
    x0 = float(np.exp(np.mean(np.log(rate))))
    guides = [(MIZUNO_YAMAMOTO_NU4, ":", f"slope −{MIZUNO_YAMAMOTO_NU4:g} (Mizuno & Yamamoto ν_4)")]
    if t.get("lambda_over_D1") is not None and np.isfinite(t["lambda_over_D1"]):
        guides.insert(0, (t["lambda_over_D1"], "--", f"slope −λ/(D+1) = −{t['lambda_over_D1']:.3f} (eq. 9)"))
    for slope, style, label in guides:
        ax.plot(x, centre * (x / x0) ** -slope, style, color="0.3", lw=1, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    values = np.concatenate(drawn + [null[np.isfinite(null) & (null > 0)]])
    ax.set_ylim(values.min() / 1.5, values.max() * 1.5)  # the values set the scale; a long error bar is cut
    plain_log_ticks(ax)
    legend_beside(ax, fontsize=7)


def lengths_figure(panels: list[tuple[str, list[dict], dict | None]], out: str | Path) -> Path:
    """:func:`lengths_panel` for each system: (title, the per-rate rows, its Table I dict or None)."""
    columns = min(2, len(panels))  # legends beside their panels: two systems to a row stay readable in print
    rows_of = -(-len(panels) // columns)
    fig, axes = plt.subplots(
        rows_of, columns, figsize=(7.5 * columns, 4.2 * rows_of), constrained_layout=True, squeeze=False
    )
    for ax, (title, rows, table1) in zip(axes.ravel(), panels):
        lengths_panel(ax, rows, table1, title)
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    return save_png(fig, out)


def stz_figure(runs: list[dict], out: str | Path) -> Path:
    """Fig. 4b–d and 7b/d: α(r) of each rate with its ξ_α; ξ_α and ξ_c against the rate (power laws
    when ≥ 3 rates); the PHM-core / cage-jump-spot matching ratio against the matching radius with
    the null model's. ``runs``: rate, xi_c and the phm.json / facilitation.json results (or None)."""
    from lmpshear.kernels.flowcurve import fit_power_law

    runs = sorted(runs, key=lambda r: r["rate"])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2), constrained_layout=True)
    colours = plt.cm.viridis(np.linspace(0, 0.9, max(len(runs), 1)))
    logs = set()  # the panels that received positive data: only those go on log scales
    for run, colour in zip(runs, colours):
        fac = run.get("facilitation")
        if fac:
            r, alpha = np.array(fac["r"]), np.array(fac["alpha"], dtype=float)
            noise = 3 * np.array(fac.get("error", np.zeros(len(r))), dtype=float)
            ok = np.isfinite(alpha) & (alpha > 0)
            if ok.any():
                logs.add(0)
                axes[0].plot(r[ok], alpha[ok], "o-", ms=3, color=colour, label=rf"$\dot\gamma$ = {run['rate']:g}")
                axes[0].plot(r, noise, ":", color=colour, lw=0.8)  # 3 σ of isotropic events
                if np.isfinite(fac["xi_alpha"]):
                    axes[0].axvline(fac["xi_alpha"], color=colour, lw=0.8, ls="--")
        stz = run.get("phm")
        if stz and stz["spots"]:
            axes[2].plot(stz["radii"], stz["matched"], "o-", color=colour, label=rf"$\dot\gamma$ = {run['rate']:g}")
            axes[2].plot(stz["radii"], stz["chance"], ":", color=colour)
    axes[0].set(xlabel="r", ylabel=r"$\alpha(r)$ (finite-count corrected)")
    axes[0].set_title(
        r"(a) anisotropy of $g_{cj}$; dotted: 3$\sigma$ noise; dashed: $\xi_\alpha$", loc="left", fontsize=9
    )
    rate = np.array([r["rate"] for r in runs])
    for key, label, colour in (("xi_alpha", r"$\xi_\alpha$", "C0"), ("xi_c", r"$\xi_c$", "C3")):
        y = np.array([r.get(key, np.nan) for r in runs], dtype=float)
        ok = np.isfinite(y) & (y > 0)
        if not ok.any():
            continue
        logs.add(1)
        axes[1].plot(rate[ok], y[ok], "o", color=colour, label=label)
        if ok.sum() >= 3:
            fit = fit_power_law(rate[ok], y[ok], np.zeros(ok.sum()))
            x = np.geomspace(rate[ok].min(), rate[ok].max(), 50)
            axes[1].plot(
                x,
                fit.prefactor * x**-fit.exponent,
                "-",
                color=colour,
                lw=0.8,
                label=rf"$\sim\dot\gamma^{{-{fit.exponent:.2f}\pm{fit.exponent_error:.2f}}}$",
            )
    axes[1].set(xlabel=r"$\dot\gamma$")
    for k in logs:
        axes[k].set(xscale="log", yscale="log")
        plain_log_ticks(axes[k])
    axes[1].set_title("(b) facilitation range and cluster radius", loc="left", fontsize=9)
    axes[2].set(xlabel=r"matching radius ($d_0$)", ylabel="spots with a soft core within", ylim=(0, 1.02))
    axes[2].set_title("(c) PHM cores vs cage-jump spots; dotted: random cores", loc="left", fontsize=9)
    for ax, missing in zip(axes, ("no facilitation product", "no finite lengths", "no PHM product with spots")):
        if ax.has_data():
            legend_beside(ax, fontsize=8)
        else:  # said in the panel rather than left empty
            no_data(ax, missing)
    return save_png(fig, out)
