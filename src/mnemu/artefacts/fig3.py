"""Fig. 3: forget time of each method on each data set (log scale, mean ± std over seeds), one
bar group per data set. Times are the one timer's (mnemu.baselines.timed) ``timer.seconds``:
the forget call alone, for ours and for every baseline; retraining's is its training. A data set
in the summaries but not in the config's benchmarks (the paper's ImageNet bar, from Table 4's
runs) is drawn after them."""

from ._plots import pyplot, save
from ._tables import METHODS, method_runs, stats

SECONDS = "timer.seconds"


def draw(inputs, outputs, benchmarks) -> None:
    runs = [r for r in method_runs(inputs["summaries"])
            if not r.get("unsupported") and r.get(SECONDS) not in (None, "")]
    labels = {b["id"]: b["label"] for b in benchmarks}
    groups = [*labels, *sorted({r["benchmark"] for r in runs} - set(labels))]
    methods = [(name, m) for name, m in METHODS if any(r["method"] == m for r in runs)]
    width = 0.8 / max(len(methods), 1)
    fig, ax = pyplot().subplots(figsize=(max(4.5, 1.3 * len(groups) + 1.5), 3.4))
    for i, (name, method) in enumerate(methods):
        xs, means, lower, upper = [], [], [], []
        for g, bench in enumerate(groups):
            seconds = [r[SECONDS] for r in runs if r["method"] == method and r["benchmark"] == bench]
            if seconds:
                cell = stats(seconds)
                xs.append(g - 0.4 + (i + 0.5) * width)
                means.append(cell["mean"])
                lower.append(min(cell["std"], 0.9 * cell["mean"]))  # a log axis has no zero
                upper.append(cell["std"])
        ax.bar(xs, means, width, yerr=[lower, upper], capsize=2, label=name)
    ax.set_yscale("log")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([labels.get(g, g) for g in groups], fontsize=7, rotation=10)
    ax.set_ylabel("forget time (s, log scale)")
    ax.set_title("Forget time per method (mean ± std over seeds)", fontsize=9)
    ax.grid(axis="y", alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2)
    save(fig, outputs)
