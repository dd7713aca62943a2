"""What the figures share: a headless pyplot, mean ± std per x, and PDF + PNG written atomically."""

from __future__ import annotations

from collections.abc import Mapping

from ..files import atomic_write
from ._tables import stats


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mean_std(rows, x: str, y: str):
    """Sorted x values and the mean and std of ``y`` over the rows at each."""
    xs = sorted({float(r[x]) for r in rows})
    cells = [stats([r[y] for r in rows if float(r[x]) == value]) for value in xs]
    return xs, [c["mean"] for c in cells], [c["std"] for c in cells]


def save(fig, outputs: Mapping) -> None:
    atomic_write(outputs["pdf"], lambda h: fig.savefig(h, format="pdf", bbox_inches="tight"))
    atomic_write(outputs["png"], lambda h: fig.savefig(h, format="png", dpi=150,
                                                       bbox_inches="tight"))
    pyplot().close(fig)
