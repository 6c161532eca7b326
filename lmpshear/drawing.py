"""Drawing for every figure of the package: matplotlib without a display (Agg) and one way to write a PNG.
Per run: :mod:`lmpshear.run_figures`; across the rates of a report: :mod:`lmpshear.rate_figures`."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["plt", "save_png"]


def save_png(fig, out: str | Path) -> Path:
    """Write ``fig`` as PNG (120 dpi) and free it."""
    out = Path(out)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
