"""Flow curve η(γ̇) across runs and the power-law fit η ~ γ̇^−λ in the shear-thinning regime.

Regime selection (the paper only says "at high enough shear rates"): the local slope
s_k = d ln η / d ln γ̇ is taken by centred differences (one-sided at the ends); the regime is the
longest run of consecutive rates with s_k ≤ −``min_thinning_slope`` (default 0.2), and it needs at
least three rates, or both where a system has only two (``enough_rates``). A Newtonian plateau
(s ≈ 0) at low rates is thereby left out. The selection can be overridden with explicit rate bounds.

Fit: weighted least squares of ln η on ln γ̇ with weights 1/σ_ln η² (σ_ln η = σ_η/η). The slope's
standard error is reported from the weighted covariance, scaled by the reduced χ² when that is above
1 (scatter larger than the error bars), as is usual for under-estimated errors. Through two points
the slope is exact and its error is the two points' alone: nothing tests the power law itself.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from lmpshear.errors import UserError


@dataclass(frozen=True)
class PowerLaw:
    exponent: float  # λ in η ~ γ̇^−λ
    exponent_error: float
    prefactor: float  # η = A γ̇^−λ
    rate_range: tuple[float, float]
    n_points: int
    reduced_chi2: float

    def as_dict(self) -> dict:
        return asdict(self)


def enough_rates(points: int, rates: int) -> bool:
    """Whether ``points`` of a system's ``rates`` rates make an exponent: three, or both of two (a
    two-point slope, for a system that has only two rates, and never a pair picked out of more)."""
    return points >= min(3, rates) and points >= 2


def thinning_regime(rates: np.ndarray, eta: np.ndarray, min_thinning_slope: float = 0.2) -> np.ndarray:
    """Boolean mask of the rates in the shear-thinning regime (see the module docstring)."""
    lr, le = np.log(rates), np.log(eta)
    slope = np.gradient(le, lr)
    thinning = slope <= -min_thinning_slope
    best, run_start = (0, 0), None
    for k, flag in enumerate(np.append(thinning, False)):
        if flag and run_start is None:
            run_start = k
        elif not flag and run_start is not None:
            if k - run_start > best[1] - best[0]:
                best = (run_start, k)
            run_start = None
    mask = np.zeros(len(rates), dtype=bool)
    mask[best[0] : best[1]] = True
    return mask


def fit_power_law(rates: np.ndarray, eta: np.ndarray, eta_error: np.ndarray) -> PowerLaw:
    rates, eta, err = (np.asarray(v, dtype=float) for v in (rates, eta, eta_error))
    if len(rates) < 2:
        raise UserError(f"a power-law fit needs at least 2 rates in the shear-thinning regime, got {len(rates)}")
    if np.any(eta <= 0):
        raise UserError("a viscosity is not positive; cannot fit a power law in log-log")
    x, y = np.log(rates), np.log(eta)
    sigma = np.where(err > 0, err / eta, np.nan)
    weighted = bool(np.all(np.isfinite(sigma)))
    if not weighted:
        sigma = np.ones_like(x)  # no error bars: unweighted, scatter sets the uncertainty
    w = 1.0 / sigma**2
    design = np.column_stack([np.ones_like(x), x])
    cov = np.linalg.inv(design.T @ (design * w[:, None]))
    intercept, slope = cov @ (design.T @ (w * y))
    residual = y - (intercept + slope * x)
    dof = len(x) - 2
    chi2 = float((w * residual**2).sum() / dof) if dof > 0 else float("nan")
    # without error bars the scatter about the line is the error (ordinary least squares: σ² = SSR/dof,
    # not the unit σ assumed in ln η); with them, χ²_red inflates it where above 1. Two points without
    # error bars: no scatter and nothing to propagate, so no error at all
    if dof > 0:
        scale = max(chi2, 1.0) if weighted else chi2
    else:
        scale = 1.0 if weighted else np.nan
    return PowerLaw(
        float(-slope),
        float(np.sqrt(cov[1, 1] * scale)),
        float(np.exp(intercept)),
        (float(rates.min()), float(rates.max())),
        len(rates),
        chi2,
    )


@dataclass(frozen=True)
class FlowCurve:
    rates: np.ndarray
    eta: np.ndarray
    eta_error: np.ndarray
    in_fit: np.ndarray
    fit: PowerLaw | None
    runs: list[str]

    def as_dict(self) -> dict:
        return {
            "rates": self.rates.tolist(),
            "eta": self.eta.tolist(),
            "eta_error": self.eta_error.tolist(),
            "in_fit": self.in_fit.tolist(),
            "fit": self.fit.as_dict() if self.fit else None,
            "runs": self.runs,
        }


def flow_curve(
    rates,
    eta,
    eta_error,
    runs: list[str],
    min_rate: float | None = None,
    max_rate: float | None = None,
    min_thinning_slope: float = 0.2,
) -> FlowCurve:
    order = np.argsort(rates)
    rates, eta, err = (np.asarray(v, dtype=float)[order] for v in (rates, eta, eta_error))
    runs = [runs[k] for k in order]
    if len(set(rates.tolist())) != len(rates):
        raise UserError("two runs have the same shear rate; give one run per rate")
    if min_rate is not None or max_rate is not None:
        mask = (rates >= (min_rate or 0.0)) & (rates <= (max_rate or np.inf))
    else:
        mask = thinning_regime(rates, eta, min_thinning_slope) if len(rates) >= 2 else np.zeros(len(rates), bool)
    fit = fit_power_law(rates[mask], eta[mask], err[mask]) if enough_rates(mask.sum(), len(rates)) else None
    return FlowCurve(rates, eta, err, mask, fit, runs)
