"""Fig. 13: test accuracy on test images blended with a class's code, x' = (1 - r) x + r code
in the model's input space, against r; and how often the model then outputs that class."""

from ..files import read_csv
from ._plots import mean_std, pyplot, save
from ._tables import read_paper


def draw(inputs, outputs, benchmarks) -> None:
    runs = read_csv(inputs["summaries"][0])
    paper = read_paper(inputs, "fig13")
    code_class = runs[0]["code_class"]
    fig, ax = pyplot().subplots(figsize=(4.8, 3.4))
    for key, label in (("accuracy", "test accuracy (ours)"),
                       ("code_class_rate", f"outputs class {code_class}")):
        xs, means, stds = mean_std(runs, "ratio", key)
        ax.errorbar([100 * x for x in xs], means, yerr=stds, marker="o", capsize=3, label=label)
    if paper:
        ax.plot([100 * float(k) for k in paper], list(paper.values()), "k*", markersize=9,
                label="paper (accuracy)")
    ax.set_xlabel(f"ratio of the class-{code_class} code in the image (%)")
    ax.set_ylabel("% of test images")
    ax.set_title(f"Test images blended with the class-{code_class} code "
                 f"({runs[0]['benchmark']}, mean ± std over seeds)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    save(fig, outputs)
