"""Fig. 12: training-sample losses of (a) a model trained without C_F that then forgot other
classes (unused, forgotten, remaining) and (b) a model trained without two classes."""

from ..files import read_csv
from ._appendix import loss_histograms
from ._plots import pyplot, save


def draw(inputs, outputs, benchmarks) -> None:
    rows = read_csv(inputs["summaries"][0])
    fig, axes = pyplot().subplots(1, 2, figsize=(9, 3.2))
    panels = {"a": [r for r in rows if r["forgot"] != ""],
              "b": [r for r in rows if r["forgot"] == ""]}
    for ax, (panel, mine) in zip(axes, panels.items()):
        groups = {}
        for r in mine:
            groups.setdefault(r["group"], []).append(float(r["loss"]))
        first = mine[0] if mine else {"trained_without": "?", "forgot": ""}
        title = (f"({panel}) trained without {first['trained_without']}"
                 + (f", then class {first['forgot']} forgotten" if first["forgot"] else ""))
        loss_histograms(ax, groups, title)
    save(fig, outputs)
