"""Drawing for every figure of the package: matplotlib without a display (Agg), one way to write a PNG,
and the layout rule every figure keeps (:func:`layout_problems`: no text outside the figure or over
other text, no legend over data). Per run: :mod:`lmpshear.run_figures`; across the rates of a report:
:mod:`lmpshear.rate_figures`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

__all__ = ["layout_problems", "legend_beside", "no_data", "plain_log_ticks", "plt", "save_png", "settle"]

#: pixels a box may pass the figure's edge, or two boxes share (antialiasing), before it counts
SLACK = 1.0
#: the resolution every PNG is written at (and its layout checked at)
DPI = 120


def save_png(fig, out: str | Path) -> Path:
    """Write ``fig`` as PNG (at ``DPI``) and free it, its layout settled first (:func:`settle`). With
    LMPSHEAR_CHECK_LAYOUT=1 in the environment (the tests set it), a figure with a layout problem is an
    error that lists them (:func:`layout_problems`)."""
    out = Path(out)
    if os.environ.get("LMPSHEAR_CHECK_LAYOUT") != "1":
        settle(fig)
    elif problems := layout_problems(fig):  # which settles the layout itself
        plt.close(fig)
        raise RuntimeError(f"{out.name}: " + "; ".join(problems))
    fig.savefig(out, dpi=DPI)
    plt.close(fig)
    return out


def settle(fig) -> None:
    """Lay ``fig`` out as it will be written: at ``DPI``, and twice (a constrained layout settles on the
    second pass where an equal aspect or a legend beside the axes moved them on the first)."""
    fig.set_dpi(DPI)
    fig.canvas.draw()
    fig.canvas.draw()


def legend_beside(ax, **style):
    """The axes' legend right of them, where it covers no data (a constrained layout makes room)."""
    return ax.legend(
        **({"fontsize": 7} | style | {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0})
    )


def plain_log_ticks(ax) -> None:
    """Log axes that span less than a decade or two read better as plain numbers (0.03, 2) at 1, 2,
    5 × 10^k than as 3 × 10^-2, whose minor labels collide."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        decades = np.log10(max(limits) / max(min(limits), 1e-300))
        axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,)))  # beyond: 10^k
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.set_minor_formatter(NullFormatter())


def no_data(ax, why: str) -> None:
    """A panel without data says so (and why) instead of showing empty axes."""
    ax.text(0.5, 0.5, f"no data: {why}", ha="center", va="center", transform=ax.transAxes, color="0.4", fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _texts(fig) -> list[tuple[str, Any]]:
    """Every visible piece of text with a name saying where it is: titles, axis and tick labels,
    annotations, legends (as one box each), the figure's own texts; colour bars are axes too."""
    found = [(f"figure text {t.get_text()!r}", t) for t in fig.texts if t.get_visible() and t.get_text()]
    for k, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        where = f"axes {k} ({ax.get_title() or ax.get_title(loc='left') or ax.get_ylabel()!s:.30})"
        for title in (ax.title, ax._left_title, ax._right_title):
            if title.get_text():
                found.append((f"{where}: title {title.get_text()!r}", title))
        for axis in (ax.xaxis, ax.yaxis):
            if not axis.get_visible():  # a twin's shared axis, drawn by its partner
                continue
            if axis.label.get_visible() and axis.label.get_text():
                found.append((f"{where}: label {axis.label.get_text()!r}", axis.label))
            for tick in axis._update_ticks():  # the ticks drawn: inside the view (matplotlib's own choice)
                for label in (tick.label1, tick.label2):
                    if label.get_visible() and label.get_text():
                        found.append((f"{where}: tick {label.get_text()!r}", label))
        found += [(f"{where}: text {t.get_text()!r}", t) for t in ax.texts if t.get_visible() and t.get_text()]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            found.append((f"{where}: legend", legend))
    return found


def _along(xy: np.ndarray, step: float = 3.0) -> np.ndarray:
    """Points every ``step`` pixels along a polyline (display coordinates), its vertices included."""
    xy = xy[np.isfinite(xy).all(axis=1)]
    if len(xy) < 2:
        return xy
    pieces = [xy[:1]]
    for a, b in zip(xy[:-1], xy[1:]):
        n = max(1, int(np.hypot(*(b - a)) // step))
        pieces.append(a + (b - a) * (np.arange(1, n + 1) / n)[:, None])
    return np.concatenate(pieces)


def _data_points(ax) -> np.ndarray:
    """The display positions of the axes' markers and of points along its lines (inside its view):
    what a legend must not cover."""
    points = []
    for line in ax.get_lines():
        data = np.asarray(line.get_xydata(), dtype=float)
        if isinstance(line, Line2D) and line.get_visible() and len(data):
            xy = ax.transData.transform(data)
            points.append(_along(xy) if line.get_linestyle() not in ("None", "none", "", " ") else xy)
    for collection in ax.collections:
        offsets = np.asarray(collection.get_offsets(), dtype=float)
        if isinstance(collection, PathCollection) and collection.get_visible() and len(offsets):
            points.append(collection.get_offset_transform().transform(offsets))
    if not points:
        return np.zeros((0, 2))
    xy = np.concatenate(points)
    box = ax.get_window_extent()
    inside = (xy[:, 0] >= box.x0) & (xy[:, 0] <= box.x1) & (xy[:, 1] >= box.y0) & (xy[:, 1] <= box.y1)
    return xy[inside & np.isfinite(xy).all(axis=1)]


def layout_problems(fig) -> list[str]:
    """What a reader would see wrong in ``fig``'s layout: text cut by the figure's edge, two pieces of
    text over each other (tick labels of one axis included), a legend over data points. Empty: none."""
    settle(fig)
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    boxes = [(name, artist.get_window_extent(renderer)) for name, artist in _texts(fig)]
    problems = []
    for name, box in boxes:
        if box.x0 < page.x0 - SLACK or box.y0 < page.y0 - SLACK or box.x1 > page.x1 + SLACK or box.y1 > page.y1 + SLACK:
            problems.append(f"{name} is cut by the figure's edge")
    for i, (a, box_a) in enumerate(boxes):
        for b, box_b in boxes[i + 1 :]:
            overlap_x = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
            overlap_y = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
            if overlap_x > SLACK and overlap_y > SLACK:
                problems.append(f"{a} overlaps {b}")
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None or not legend.get_visible():
            continue
        box = legend.get_window_extent(renderer)
        xy = _data_points(ax)
        covered = (xy[:, 0] > box.x0) & (xy[:, 0] < box.x1) & (xy[:, 1] > box.y0) & (xy[:, 1] < box.y1)
        if covered.any():
            problems.append(f"the legend of axes {fig.axes.index(ax)} covers {int(covered.sum())} data points")
    return problems
