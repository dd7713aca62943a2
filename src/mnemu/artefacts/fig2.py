"""Fig. 2: test accuracy of models trained with codes, against t_mix."""

from ..files import read_csv
from ._plots import mean_std, pyplot, save


def draw(inputs, outputs, benchmarks) -> None:
    runs = read_csv(inputs["summaries"][0])
    fig, ax = pyplot().subplots(figsize=(4.5, 3.2))
    for bench in benchmarks:
        mine = [r for r in runs if r["benchmark"] == bench["id"]]
        if mine:
            xs, means, stds = mean_std(mine, "t_mix", "accuracy")
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=bench["label"])
    ax.set_xlabel("$t_{mix}$ (probability of replacing a sample by its code)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Test accuracy of models trained with mnemonic codes", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, outputs)
