"""The layout rule every figure keeps (lmpshear.drawing.layout_problems), on figures made wrong on purpose
and on their corrected versions; the tests' environment applies it to every PNG they make."""

import os

import numpy as np
import pytest

from lmpshear.drawing import layout_problems, legend_beside, plt, save_png


def test_the_layout_rule_finds_what_a_reader_would_see_wrong(tmp_path):
    x = np.linspace(0, 1, 50)
    fig, ax = plt.subplots(figsize=(4, 3), constrained_layout=True)
    ax.plot(x, x, label="a line through the corner")
    ax.legend(loc="upper left")  # the diagonal y = x stays clear of the upper left corner
    assert layout_problems(fig) == []
    ax.legend(loc="center")  # the diagonal crosses the centre: covered
    assert any("legend of axes 0 covers" in p for p in layout_problems(fig))
    legend_beside(ax)
    assert layout_problems(fig) == []
    ax.text(0.5, 0.5, "a note", transform=ax.transAxes)
    ax.text(0.52, 0.5, "another note", transform=ax.transAxes)  # printed over the first
    assert any("'a note' overlaps" in p and "'another note'" in p for p in layout_problems(fig))
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(3, 2))  # no constrained layout: a long title runs off the page
    ax.set_title("a title far too long for a figure this narrow, cut on both sides by its edges")
    assert any("title" in p and "cut by the figure's edge" in p for p in layout_problems(fig))
    assert os.environ.get("LMPSHEAR_CHECK_LAYOUT") == "1"  # set by conftest: save_png refuses it
    with pytest.raises(RuntimeError, match="cut by the figure's edge"):
        save_png(fig, tmp_path / "cut.png")
    assert not (tmp_path / "cut.png").exists()


def test_the_flow_curve_s_legend_names_only_what_is_drawn(tmp_path, monkeypatch):
    """The issue's flow curve listed a "shear-thinning regime" entry with no such point; every entry is
    now a drawn set, and the title names the system."""
    from lmpshear import rate_figures
    from lmpshear.kernels.flowcurve import flow_curve

    drawn = []
    monkeypatch.setattr(rate_figures, "save_png", lambda fig, out: drawn.append(fig) or out)
    rates = np.array([0.005, 0.01])
    eta = 2.0 * rates**-0.7
    both = flow_curve(rates, eta, 0.01 * eta, ["a", "b"])  # two rates, both fitted: no grey entry
    rate_figures.flow_curve_figure(both, tmp_path / "two.png", "2D MD")
    rates5 = np.array([0.001, 0.003, 0.01, 0.03, 0.1])
    fitted = flow_curve(rates5, 2.0 * rates5**-0.7, 0.02 * rates5**-0.7, list("abcde"), min_rate=0.003)
    rate_figures.flow_curve_figure(fitted, tmp_path / "five.png")
    (ax2,), (ax5,) = (fig.axes for fig in drawn)
    fit_line = [label for label in ax2.get_legend_handles_labels()[1] if "lambda" in label]
    assert len(fit_line) == 1 and "0.700" in fit_line[0]
    assert set(ax2.get_legend_handles_labels()[1]) == {"fitted (shear-thinning regime)", fit_line[0]}
    assert ax2.get_title() == "2D MD: flow curve"
    assert {"not fitted (outside the shear-thinning regime)", "fitted (shear-thinning regime)"} < set(
        ax5.get_legend_handles_labels()[1]
    )
    assert ax5.get_title() == "flow curve" and len(ax5.get_legend_handles_labels()[1]) == 3
    # one rate: no fit, and the title says so on a line of its own, inside the figure (the layout rule)
    one = flow_curve(rates[:1], eta[:1], 0.01 * eta[:1], ["a"])
    rate_figures.flow_curve_figure(one, tmp_path / "one.png", "3D BD, phi = 45%")
    title = drawn[-1].axes[0].get_title()
    assert title == "3D BD, phi = 45%: flow curve\nfewer than 3 rates shear-thin: no power law fitted"
    assert layout_problems(drawn[-1]) == []
    for fig in drawn:
        plt.close(fig)


def test_fig2ij_says_whether_the_clusters_build_up_the_most_stress():
    """The issue's fig2ij showed a cluster run-up below both spheres' with no comment; the title now
    compares the run's means and says which way they go."""
    from lmpshear.run_figures import contrast_verdict

    quiet = contrast_verdict({"clusters": 1.89, "quiet": 2.09, "straddling": 1.68})
    assert quiet.startswith("mean largest run-ups: clusters 1.89, outside 2.09, straddling 1.68")
    assert quiet.endswith("no contrast at this size (the paper's clusters build up the most stress)")
    assert contrast_verdict({"clusters": 2.5, "quiet": 2.09, "straddling": 1.68}).endswith("most, as in the paper")
    assert "contrast" not in contrast_verdict({"clusters": 2.5, "quiet": float("nan"), "straddling": 1.0})
