"""Table I of the paper (λ, λ/(D+1), ν_c per system), extended with the exponents of the lengths beside
the paper's ξ_c (ξ_c under the sieve's significance rule, ξ_4 at t_χ and τ_α, ξ_jj), and the per-rate
numbers behind Fig. 3 and Fig. 7 (P̄_c, η_c/η, ξ_c, t_y/t_χ) with every length, ours beside the
paper's, from finished campaigns' reports (or results_report.py's folders).

    python analysis/recipes/table1.py analysis/campaigns/bd425.toml analysis/results/bd45-N20000/report -o OUT

Writes OUT/table1.md (both tables, Markdown), OUT/table1.csv, OUT/rates.csv and OUT/lengths_vs_rate.png
(every length against the rate, a panel per system, with the slopes of eq. 9 and of Mizuno and Yamamoto).
"""

from __future__ import annotations

import pandas as pd
from _reports import percent, pm, recipe_arguments

from lmpshear.kernels.scaling import LENGTH_LABELS, LENGTHS, MIZUNO_YAMAMOTO_NU4, PAPER_TABLE1
from lmpshear.rate_figures import lengths_figure


def exponent(row: dict, name: str) -> str:
    """An exponent with its error and, in brackets, the reduced χ² of its fit."""
    text, chi2 = pm(row[name], row[f"{name}_error"]), row.get(f"{name}_reduced_chi2")
    if chi2 is None or chi2 != chi2:
        return text
    return text + (f" [{chi2:.2g}]" if chi2 < 100 else f" [{chi2:.0f}]")


def main() -> None:
    reports, out = recipe_arguments(__doc__)
    rows, per_rate = [], []
    for r in reports:
        t, fit = r.table1 or {}, r.flow.get("fit") or {}
        paper = t.get("paper") or PAPER_TABLE1.get(r.label, {})
        rows.append(
            {
                "system": r.label,
                "rates": " ".join(f"{x:g}" for x in r.flow["rates"]),
                "lambda": fit.get("exponent"),
                "lambda_error": fit.get("exponent_error"),
                "lambda_paper": paper.get("lambda"),
                "lambda_over_D1": t.get("lambda_over_D1"),
                "lambda_over_D1_error": t.get("lambda_over_D1_error"),
                "lambda_over_D1_paper": paper.get("lambda_over_D1"),
                "nu_c": t.get("nu_c"),
                "nu_c_error": t.get("nu_c_error"),
                "nu_c_reduced_chi2": t.get("nu_c_reduced_chi2"),
                "nu_c_paper": paper.get("nu_c"),
            }
            | {
                k: (t.get("lengths") or {}).get(k)
                for name in LENGTHS.values()
                for k in (name, f"{name}_error", f"{name}_reduced_chi2")
            }
        )
        xi_err = dict(zip(t.get("rates", []), t.get("xi_c_error", [])))
        eta_err = dict(zip(r.flow["rates"], r.flow["eta_error"]))
        if r.clusters is not None:
            for _, c in r.clusters.sort_values("rate").iterrows():
                per_rate.append(
                    {
                        "system": r.label,
                        "rate": c.rate,
                        "eta": c.eta,
                        "eta_error": eta_err.get(c.rate),
                        "t_chi": c.t_chi,
                        "t_chi_error": c.get("t_chi_error"),
                        "P_c_mean": c.P_c_mean,
                        "eta_c_over_eta": c.eta_c / c.eta,
                        "xi_c": c.xi_c,
                        "xi_c_error": xi_err.get(c.rate),
                        "t_y": c.t_y,
                        "t_y_over_t_chi": c.t_y / c.t_chi,
                        "xi_c_null": c.get("xi_c_null"),
                        "kept_significant": c.get("kept_significant"),
                    }
                    | {k: c.get(k) for key in LENGTHS for k in (key, f"{key}_error")}
                )
    pd.DataFrame(rows).to_csv(out / "table1.csv", index=False)
    pd.DataFrame(per_rate).to_csv(out / "rates.csv", index=False)
    others = " | ".join(f"ν of {LENGTH_LABELS[k]}" for k in LENGTHS)
    lines = [
        f"| system | rates | λ (paper) | λ/(D+1) (paper) | ν_c (paper) | {others} |",
        "|---|---|---|---|---|" + "---|" * len(LENGTHS),
    ]
    for x in rows:
        lines.append(
            f"| {x['system']} | {x['rates']} | {pm(x['lambda'], x['lambda_error'])} ({x['lambda_paper'] or '—'}) "
            f"| {pm(x['lambda_over_D1'], x['lambda_over_D1_error'])} ({x['lambda_over_D1_paper'] or '—'}) "
            f"| {exponent(x, 'nu_c')} ({x['nu_c_paper'] or '—'}) | "
            + " | ".join(exponent(x, n) for n in LENGTHS.values())
            + " |"
        )
    lines += [
        "",
        "Mizuno and Yamamoto (2012), a 3D binary supercooled liquid under steady shear: "
        f"ν_4 of ξ_4(τ_α) ≈ {MIZUNO_YAMAMOTO_NU4:g}. "
        "An exponent is made where ≥ 3 of the flow curve's thinning rates have the length, or both where a system "
        "has two (a two-point slope: its error is the two points' alone, and no χ² tests the power law); "
        "— otherwise. [Reduced χ² of its fit], errors scaled by √χ² where it is above 1.",
        "",
        "| system | γ̇ | η | t_χ | P̄_c (paper ≈ 0.8) | η_c/η (paper ≈ 1) | ξ_c | ξ_c of the uniform null | t_y/t_χ | "
        + " | ".join(LENGTH_LABELS[k] for k in LENGTHS)
        + " | cell kept by the significance rule |",
        "|---|---|---|---|---|---|---|---|---|" + "---|" * (len(LENGTHS) + 1),
    ]
    for x in per_rate:
        lines.append(
            f"| {x['system']} | {x['rate']:g} | {pm(x['eta'], x['eta_error'], 4)} | {pm(x['t_chi'], x['t_chi_error'])} "
            f"| {pm(x['P_c_mean'], None)} | {pm(x['eta_c_over_eta'], None, 2)} | {pm(x['xi_c'], x['xi_c_error'])} "
            f"| {pm(x['xi_c_null'], None)} | {pm(x['t_y_over_t_chi'], None, 2)} | "
            + " | ".join(pm(x[k], x[f"{k}_error"]) for k in LENGTHS)
            + f" | {percent(x['kept_significant'])} |"
        )
    (out / "table1.md").write_text("\n".join(lines) + "\n")
    panels = [(r.label, r.clusters.to_dict("records"), r.table1) for r in reports if r.clusters is not None]
    if panels:
        print(f"wrote {lengths_figure(panels, out / 'lengths_vs_rate.png')}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
