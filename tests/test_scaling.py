"""The scaling law of eq. 9: ν_c from cluster volumes, λ from the flow curve, Table I."""

import numpy as np
import pytest

from lmpshear.kernels.flowcurve import flow_curve
from lmpshear.kernels.scaling import PAPER_TABLE1, paper_system, table1_row
from lmpshear.kernels.sieve import radius_of_volume


def _volumes(rng, rates, nu, amplitude=6.0, per_rate=300):
    """Exponentially distributed cluster volumes whose mean gives ξ_c = amplitude γ̇^−ν exactly in
    expectation."""
    return {float(r): rng.exponential(4 / 3 * np.pi * (amplitude * r**-nu) ** 3, per_rate) for r in rates}


def test_nu_c_recovers_a_planted_exponent_over_the_thinning_rates():
    rng = np.random.default_rng(1)
    rates = np.array([0.3, 1.0, 3.0, 10.0, 20.0])
    eta = np.where(rates < 1.0, 1.0, rates**-0.664)  # a Newtonian point, then thinning with λ = 0.664
    fc = flow_curve(rates, eta, 0.01 * eta, [f"r{r}" for r in rates])
    assert fc.in_fit.tolist() == [False, True, True, True, True]
    volumes = _volumes(rng, rates, 0.174)
    volumes[0.3] = rng.exponential(50.0, 300)  # the Newtonian point's clusters do not enter ν_c
    row = table1_row("3D BD, phi = 45%", 3, fc, volumes, "3D BD, phi = 45%")
    assert row.rates == [1.0, 3.0, 10.0, 20.0]
    assert row.lam == pytest.approx(0.664, abs=1e-6) and row.lam_over_D1 == pytest.approx(0.166, abs=1e-3)
    assert 0.005 < row.nu_c_error < 0.05
    assert abs(row.nu_c - 0.174) < 3 * row.nu_c_error
    assert row.xi_c[0] == pytest.approx(radius_of_volume(volumes[1.0].mean(), 3))
    assert row.paper == PAPER_TABLE1["3D BD, phi = 45%"]
    # the bootstrap spread shrinks with more clusters (it is a statistical error)
    many = table1_row("x", 3, fc, _volumes(rng, rates, 0.174, per_rate=3000), None)
    assert many.nu_c_error < 0.5 * row.nu_c_error
    # a step instead of a power law (flat, then a drop at the last rate): the misfit sets the error
    step = {r: rng.exponential(4 / 3 * np.pi * (4.6 if r < 20 else 2.6) ** 3, 3000) for r in rates}
    bad = table1_row("x", 3, fc, step, None)
    assert bad.nu_c_reduced_chi2 > 20 and bad.nu_c_error > 5 * many.nu_c_error
    # in 2D ξ_c = (V/π)^{1/2}
    assert radius_of_volume(np.pi * 4.0, 2) == pytest.approx(2.0)


def test_table1_needs_three_thinning_rates_with_clusters():
    rng = np.random.default_rng(2)
    rates = np.array([1.0, 3.0, 10.0, 20.0])
    fc = flow_curve(rates, rates**-0.7, 0.01 * rates**-0.7, ["a", "b", "c", "d"])
    volumes = _volumes(rng, rates[:2], 0.2)
    assert table1_row("x", 3, fc, volumes, None) is None


def test_a_system_with_two_rates_gets_a_two_point_row():
    """Both rates of a two-rate system have clusters: ν_c and each length's ν are the slopes through
    the two points; one of the two without a length leaves that length without an exponent."""
    rng = np.random.default_rng(4)
    rates = np.array([0.005, 0.01])
    fc = flow_curve(rates, rates**-0.759, 0.004 * rates**-0.759, ["a", "b"])
    volumes = {float(r): rng.exponential(np.pi * (3.0 * r**-0.253) ** 2, 2000) for r in rates}
    lengths = {
        0.005: {"xi4_t_chi": 4.0, "xi4_t_chi_error": 0.2, "xi_jj_t_chi": 3.0},
        0.01: {"xi4_t_chi": 3.5, "xi4_t_chi_error": 0.2},
    }
    row = table1_row("2D MD", 2, fc, volumes, "2D MD", lengths)
    xi = [radius_of_volume(volumes[float(r)].mean(), 2) for r in rates]
    assert row.rates == [0.005, 0.01] and row.lam == pytest.approx(0.759, rel=1e-9)
    assert row.lam_over_D1 == pytest.approx(0.253, rel=1e-3)
    assert row.nu_c == pytest.approx(np.log(xi[0] / xi[1]) / np.log(2.0), rel=1e-9)
    assert np.isnan(row.nu_c_reduced_chi2) and 0 < row.nu_c_error < 0.1
    nu = row.lengths
    assert nu["nu_4_t_chi"] == pytest.approx(np.log(4.0 / 3.5) / np.log(2.0), rel=1e-9)
    assert nu["nu_4_t_chi_error"] == pytest.approx(np.hypot(0.2 / 4.0, 0.2 / 3.5) / np.log(2.0), rel=1e-9)
    assert np.isnan(nu["nu_jj_t_chi"])  # known at one rate of two


def test_paper_system_rows():
    assert paper_system("bd", 3, 0.45) == "3D BD, phi = 45%"
    assert paper_system("bd", 3, 0.425) == "3D BD, phi = 42.5%"
    assert paper_system("lammps", 2, None) == "2D MD"
    assert paper_system("bd", 3, 0.5) is None


def test_rate_figure_draws_runs_without_clusters(tmp_path):
    """A run with no yielded clusters has NaN eta_c, xi_c, t_y: the figure is still drawn (it used to
    fail with 'Data cannot be log-scaled' and leave a CSV without its PNG)."""
    from lmpshear.rate_figures import rate_figure

    rows = [
        {"rate": r, "eta": 3.0 / r, "eta_c": np.nan, "xi_c": np.nan, "t_y": np.nan, "t_chi": 1.0}
        for r in (0.01, 0.03, 0.06)
    ]
    assert rate_figure(rows, tmp_path / "r.png").stat().st_size > 10_000


def test_the_lengths_that_need_no_sieve_get_their_exponents_over_the_same_rates():
    """ξ_4 planted as 0.5 γ̇^−0.08 (Mizuno and Yamamoto's ν_4) with 2% errors and noise, ξ_jj flat: their
    exponents come back within their errors, over the flow curve's thinning rates only; a length known
    at fewer than three of them has none."""
    from lmpshear.kernels.scaling import length_exponents

    rng = np.random.default_rng(3)
    rates = np.array([0.3, 1.0, 3.0, 10.0, 20.0])
    eta = np.where(rates < 1.0, 1.0, rates**-0.664)
    fc = flow_curve(rates, eta, 0.01 * eta, [f"r{r}" for r in rates])
    lengths = {}
    for r in rates:
        xi4 = 0.5 * r**-0.08 * (1 + 0.02 * rng.normal())
        lengths[float(r)] = {
            "xi4_t_chi": xi4,
            "xi4_t_chi_error": 0.02 * xi4,
            "xi_jj_t_chi": 0.6,
            "xi_jj_t_chi_error": 0.01,
            "xi4_tau_alpha": float("nan") if r > 2 else 0.3,
            "xi_c_significance": 3.0 * r**-0.166,
            "xi_c_significance_error": 0.0,
        }
    lengths[0.3]["xi4_t_chi"] = 50.0  # the Newtonian point stays out, as for ν_c
    row = table1_row("x", 3, fc, _volumes(rng, rates, 0.174), None, lengths)
    nu = row.as_dict()["lengths"]
    assert abs(nu["nu_4_t_chi"] - 0.08) < 3 * nu["nu_4_t_chi_error"] and nu["nu_4_t_chi_error"] < 0.03
    assert abs(nu["nu_jj_t_chi"]) < 1e-9 and np.isnan(nu["nu_4_tau_alpha"])  # flat; known at one thinning rate
    assert np.isnan(nu["nu_jj_cluster_window"])
    assert nu["nu_c_significance"] == pytest.approx(0.166, rel=1e-9)  # exact points: the planted λ/(D+1)
    direct = length_exponents([1.0, 3.0, 10.0], [{"xi4_t_chi": 2.0 * r**-0.25} for r in (1.0, 3.0, 10.0)])
    assert direct["nu_4_t_chi"] == pytest.approx(0.25, rel=1e-9)  # without errors: unweighted, exact


def test_a_run_s_lengths_join_the_significance_rule_s_xi_c_and_are_drawn_against_the_rate(tmp_path):
    """lengths_of puts the clusters summary's significance-rule ξ_c beside the s4 / gjj lengths; the
    lengths figure draws every length with finite values (and a system with none) without failing."""
    from lmpshear.rate_figures import lengths_figure
    from lmpshear.report import lengths_of

    assert lengths_of(None, None, {"xi_c": 4.0}) is None  # a summary of an older version: nothing to add
    got = lengths_of(
        {"summary": {"xi4_t_chi": 0.4, "xi4_t_chi_error": 0.02}},
        None,
        {"significance": {"xi_c": 2.5, "xi_c_error": 0.1}},
    )
    assert got == {"xi4_t_chi": 0.4, "xi4_t_chi_error": 0.02, "xi_c_significance": 2.5, "xi_c_significance_error": 0.1}
    rows = [
        {
            "rate": r,
            "xi_c": 4.6,
            "xi4_t_chi": 0.4 * r**-0.08,
            "xi4_t_chi_error": 0.02,
            "xi_c_significance": float("nan"),
        }
        for r in (1.0, 3.0, 10.0, 20.0)
    ]
    table1 = {
        "nu_c": 0.01,
        "nu_c_error": 0.02,
        "rates": [1.0, 3.0, 10.0, 20.0],
        "xi_c_error": [0.1] * 4,
        "lambda_over_D1": 0.166,
        "lengths": {"nu_4_t_chi": 0.08, "nu_4_t_chi_error": 0.01},
    }
    empty = [{"rate": 1.0, "xi_c": float("nan")}]
    assert lengths_figure([("BD", rows, table1), ("none", empty, None)], tmp_path / "l.png").stat().st_size > 20_000
