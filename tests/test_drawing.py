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
