"""The scaling law ν_c = λ/(D + 1) (the paper's eq. 9 and Table I).

ξ_c(γ̇) = (3V̄_c/4π)^{1/3} (2D: (V̄_c/π)^{1/2}) per run, V̄_c the mean volume of the clusters that
count for η_c (those with a detected yield). ν_c is the weighted least-squares slope of
ln ξ_c on ln γ̇ over the shear-thinning rates (the same selection as λ: the flow curve's ``in_fit``),
weights from a bootstrap of each run's clusters; its error is the spread of the slope when every
run's clusters are resampled together (``samples`` bootstrap draws, fixed seed), or the fit's own
error scaled by √(reduced χ²) when the points scatter about the power law more than their errors
allow (the larger of the two: a bootstrap over clusters knows nothing of a bad fit).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lmpshear.kernels.flowcurve import FlowCurve, enough_rates, fit_power_law
from lmpshear.kernels.sieve import radius_of_volume

#: Table I of the paper: λ/(D+1), ν_c, and λ (Fig. 1a, 5a, 5c) per model system
PAPER_TABLE1 = {
    "3D BD, phi = 45%": {"lambda": 0.664, "lambda_over_D1": 0.166, "nu_c": 0.174, "D": 3},
    "3D BD, phi = 42.5%": {"lambda": 0.632, "lambda_over_D1": 0.158, "nu_c": 0.163, "D": 3},
    "3D MD": {"lambda": 0.728, "lambda_over_D1": 0.182, "nu_c": 0.176, "D": 3},
    "2D MD": {"lambda": 0.759, "lambda_over_D1": 0.253, "nu_c": 0.247, "D": 2},
}


def paper_system(engine: str, dimension: int, volume_fraction: float | None) -> str | None:
    """The row of the paper's Table I a system corresponds to (None: not one of the paper's)."""
    if engine == "bd" and dimension == 3 and volume_fraction is not None:
        return {0.45: "3D BD, phi = 45%", 0.425: "3D BD, phi = 42.5%"}.get(round(volume_fraction, 3))
    if engine == "lammps":
        return {3: "3D MD", 2: "2D MD"}.get(dimension)
    return None


@dataclass(frozen=True)
class ScalingRow:
    system: str
    dimension: int
    lam: float
    lam_error: float
    lam_over_D1: float
    lam_over_D1_error: float
    nu_c: float
    nu_c_error: float
    nu_c_reduced_chi2: float  # of the weighted fit; ≫ 1: ξ_c is not a power law of the rate
    xi_prefactor: float  # ξ_c = xi_prefactor γ̇^−ν_c (the weighted fit)
    rates: list[float]  # the rates of both fits
    xi_c: list[float]
    xi_c_error: list[float]
    paper: dict | None
    lengths: dict | None = None  # the exponents of the lengths that need no sieve (length_exponents)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["lambda"], d["lambda_error"] = d.pop("lam"), d.pop("lam_error")
        d["lambda_over_D1"], d["lambda_over_D1_error"] = d.pop("lam_over_D1"), d.pop("lam_over_D1_error")
        return d


#: the lengths beside the paper's ξ_c, by their key in a run's lengths (report.lengths_of: the s4 and gjj
#: summaries' keys, and the clusters summary's significance rule), and their exponent's name
LENGTHS = {
    "xi_c_significance": "nu_c_significance",
    "xi4_t_chi": "nu_4_t_chi",
    "xi4_tau_alpha": "nu_4_tau_alpha",
    "xi_jj_t_chi": "nu_jj_t_chi",
    "xi_jj_cluster_window": "nu_jj_cluster_window",
    "xi_jj_fixed_window": "nu_jj_fixed_window",
}
#: how figures and tables name them
LENGTH_LABELS = {
    "xi_c": "ξ_c (paper's sieve)",
    "xi_c_significance": "ξ_c (significance rule)",
    "xi4_t_chi": "ξ_4 (t_χ)",
    "xi4_tau_alpha": "ξ_4 (τ_α)",
    "xi_jj_t_chi": "ξ_jj (t_χ)",
    "xi_jj_cluster_window": "ξ_jj (clusters' W)",
    "xi_jj_fixed_window": "ξ_jj (fixed W)",
}
#: Mizuno & Yamamoto (J. Chem. Phys. 2011/2012): ξ_4(τ_α) ~ γ̇^−0.08 in a 3D binary supercooled liquid under
#: steady shear (χ4(τ_α) ~ γ̇^−0.26 there), the independent number beside ν_4
MIZUNO_YAMAMOTO_NU4 = 0.08


def length_exponents(rates, lengths: list[dict]) -> dict:
    """ν of ξ ~ γ̇^−ν for each length of LENGTHS over ``rates`` (one dict of lengths and their
    "_error"s per rate): the weighted least-squares slope in log-log with its error (scaled by
    √(reduced χ²) above 1), where enough of the rates have the length finite (three, or both of two);
    else NaN."""
    out: dict[str, float] = {}
    for key, name in LENGTHS.items():
        values = np.array([d.get(key, np.nan) for d in lengths], dtype=float)
        errors = np.array([d.get(f"{key}_error", np.nan) for d in lengths], dtype=float)
        ok = np.isfinite(values) & (values > 0)
        if not enough_rates(ok.sum(), len(lengths)):
            out |= {name: float("nan"), f"{name}_error": float("nan"), f"{name}_reduced_chi2": float("nan")}
            continue
        fit = fit_power_law(
            np.asarray(rates, dtype=float)[ok], values[ok], np.where(np.isfinite(errors[ok]), errors[ok], 0.0)
        )
        out |= {name: fit.exponent, f"{name}_error": fit.exponent_error, f"{name}_reduced_chi2": fit.reduced_chi2}
    return out


def cluster_size_exponent(
    rates, volumes: list[np.ndarray], dimension: int, samples: int = 1000, seed: int = 0
) -> tuple[float, float, float, float, np.ndarray, np.ndarray]:
    """ν_c in ξ_c ~ γ̇^−ν_c from each run's cluster volumes: (ν_c, its error, the fit's reduced χ², the
    fit's prefactor, ξ_c, ξ_c error)."""
    rng = np.random.default_rng(seed)
    rates = np.asarray(rates, dtype=float)
    xi = np.array([radius_of_volume(v.mean(), dimension) for v in volumes])
    draws = np.array(
        [[radius_of_volume(rng.choice(v, len(v)).mean(), dimension) for v in volumes] for _ in range(samples)]
    )
    xi_err = draws.std(axis=0, ddof=1)
    fit = fit_power_law(rates, xi, xi_err)
    slopes = [fit_power_law(rates, d, xi_err).exponent for d in draws]
    error = max(float(np.std(slopes, ddof=1)), fit.exponent_error)
    return fit.exponent, error, fit.reduced_chi2, fit.prefactor, xi, xi_err


def table1_row(
    system: str,
    dimension: int,
    flow: FlowCurve,
    cluster_volumes: dict[float, np.ndarray],
    paper: str | None,
    lengths: dict[float, dict] | None = None,
) -> ScalingRow | None:
    """λ (from the flow curve's fit) and ν_c over the same rates; None unless enough of them (three,
    or both of two) have clusters with a yield. ``lengths`` (by rate): each run's ξ_4, ξ_jj and
    errors, whose exponents over the same rates join the row."""
    if flow.fit is None:
        return None
    used = [r for r, keep in zip(flow.rates, flow.in_fit) if keep and len(cluster_volumes.get(float(r), [])) >= 2]
    if not enough_rates(len(used), int(flow.in_fit.sum())):
        return None
    nu, nu_err, chi2, prefactor, xi, xi_err = cluster_size_exponent(
        used, [cluster_volumes[float(r)] for r in used], dimension
    )
    lam, lam_err = flow.fit.exponent, flow.fit.exponent_error
    extra = length_exponents(used, [lengths.get(float(r), {}) for r in used]) if lengths else None
    return ScalingRow(
        system,
        dimension,
        lam,
        lam_err,
        lam / (dimension + 1),
        lam_err / (dimension + 1),
        nu,
        nu_err,
        chi2,
        prefactor,
        [float(r) for r in used],
        xi.tolist(),
        xi_err.tolist(),
        PAPER_TABLE1.get(paper) if paper else None,
        extra,
    )
