"""What Figs. 5 and 10 share: the forget- and remaining-class FIM errors of some runs, mean ± std."""

from ._plots import mean_std

#: The two Fishers of Alg. 2 whose error to the oracle each figure plots.
ERRORS = (("error.forget", "forget classes' FIM", "tab:red", "o-"),
          ("error.remain", "remaining classes' FIM", "tab:green", "s--"))


def plot_errors(ax, rows, x: str, label: str = "") -> None:
    for column, name, colour, style in ERRORS:
        xs, means, stds = mean_std(rows, x, column)
        ax.errorbar(xs, means, yerr=stds, fmt=style, capsize=3, color=colour,
                    label=f"{name}{label}")
    ax.set_yscale("log")
    ax.set_ylabel("approximation error to the oracle FIM")
    ax.grid(alpha=0.3)
