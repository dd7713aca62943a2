"""Fig. 10: the code Fisher's approximation error to the oracle (each model's own) against the
t_mix it was trained with, one panel per data set."""

from ..files import read_csv
from ._fim import plot_errors
from ._plots import pyplot, save


def draw(inputs, outputs, benchmarks) -> None:
    rows = read_csv(inputs["summaries"][0])
    shown = [b for b in benchmarks if any(r["benchmark"] == b["id"] for r in rows)]
    fig, axes = pyplot().subplots(1, len(shown), figsize=(3.6 * len(shown), 3.2), squeeze=False)
    for ax, bench in zip(axes[0], shown):
        plot_errors(ax, [r for r in rows if r["benchmark"] == bench["id"]], "t_mix")
        ax.set_xlabel("$t_{mix}$")
        ax.set_title(f"Result on {bench['label']}", fontsize=9)
    axes[0][0].legend(fontsize=7)
    save(fig, outputs)
