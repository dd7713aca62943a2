"""Fig. 4: ours-w-data, A_R and E_F against the number of real samples per class the Fisher (and
the sign choice) used, with ours (codes) as dotted reference lines."""

from ..files import read_csv
from ._plots import mean_std, pyplot, save
from ._tables import stats

COLOURS = {"A_R": "tab:blue", "E_F": "tab:orange"}


def draw(inputs, outputs, benchmarks) -> None:
    w_data, main = (read_csv(path) for path in inputs["summaries"])
    shown = [b for b in benchmarks if any(r["benchmark"] == b["id"] for r in w_data)]
    fig, axes = pyplot().subplots(1, len(shown), figsize=(4.2 * len(shown), 3.2), squeeze=False)
    for ax, bench in zip(axes[0], shown):
        mine = [r for r in w_data if r["benchmark"] == bench["id"]]
        ours = [r for r in main if r["benchmark"] == bench["id"]]
        for metric, colour in COLOURS.items():
            xs, means, stds = mean_std(mine, "samples_per_class", f"after.{metric}")
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, color=colour,
                        label=f"{metric}, ours-w-data")
            if ours:
                ref = stats([r[f"after.{metric}"] for r in ours])["mean"]
                ax.axhline(ref, color=colour, ls=":", label=f"{metric}, ours (one code per class)")
        full = max(float(r["samples_per_class"]) for r in mine if r["source"] == "data")
        ax.annotate("all (oracle)", (full, 0), xytext=(0, 4), textcoords="offset points",
                    ha="center", fontsize=7, xycoords=("data", "axes fraction"))
        ax.set_xscale("log")
        ax.set_xlabel("real training samples per class used by the Fisher")
        ax.set_title(f"Forgetting capability on {bench['label']}", fontsize=9)
        ax.set_ylim(-2, 102)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("%")
    axes[0][0].legend(fontsize=7)
    save(fig, outputs)
