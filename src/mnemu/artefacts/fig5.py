"""Fig. 5: FIM approximation error to the oracle of the Fisher from N real samples per class (a
model trained without codes) and of the code Fisher (a model trained with codes), each against its
own model's oracle."""

from ..files import read_csv
from ._fim import ERRORS, plot_errors
from ._plots import pyplot, save
from ._tables import stats


def draw(inputs, outputs, benchmarks) -> None:
    rows = read_csv(inputs["summaries"][0])
    shown = [b for b in benchmarks if any(r["benchmark"] == b["id"] for r in rows)]
    fig, axes = pyplot().subplots(1, len(shown), figsize=(4.2 * len(shown), 3.2), squeeze=False)
    for ax, bench in zip(axes[0], shown):
        mine = [r for r in rows if r["benchmark"] == bench["id"]]
        data = [r for r in mine if r["source"] != "codes"]
        plot_errors(ax, data, "samples_per_class", " (real data)")
        codes = [r for r in mine if r["source"] == "codes"]
        for column, name, colour, _ in ERRORS:
            if codes:
                cell = stats([r[column] for r in codes])
                ax.axhline(cell["mean"], color=colour, ls=":",
                           label=f"{name} (one code per class)")
        ax.set_xscale("log")
        ax.set_xlabel("real training samples per class")
        ax.set_title(f"FIM approximation error on {bench['label']}", fontsize=9)
    axes[0][0].legend(fontsize=6)
    save(fig, outputs)

