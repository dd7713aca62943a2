"""Figs. 6-9: A_R and E_F while sweeping lambda1 (lambda2 fixed) and lambda2 (lambda1 fixed) at
the lambdas the benchmark uses."""

import json
from pathlib import Path

from ..files import read_csv
from ._plots import mean_std, pyplot, save


def draw(inputs, outputs, benchmarks, benchmark: str) -> None:
    bench = next(b for b in benchmarks if b["id"] == benchmark)
    grid = read_csv(inputs["summaries"][0])
    chosen = json.loads(Path(inputs["lambdas"]).read_text())
    l1, l2 = float(chosen["lambda1"]), float(chosen["lambda2"])
    how = "selected by max A_R + E_F" if chosen["selected"] else "as in the config"
    fig, axes = pyplot().subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, sweep, fixed, value in ((axes[0], "lambda1", "lambda2", l2),
                                    (axes[1], "lambda2", "lambda1", l1)):
        line = [r for r in grid if abs(float(r[fixed]) - value) <= 1e-9 * max(1.0, value)]
        for metric, style in (("A_R", "o-"), ("E_F", "s--")):
            xs, means, stds = mean_std(line, sweep, metric)
            ax.errorbar(xs, means, yerr=stds, fmt=style, capsize=3, label=metric)
        ax.axvline(l1 if sweep == "lambda1" else l2, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel(f"$\\lambda_{sweep[-1]}$ ($\\lambda_{fixed[-1]}$ = {value:g})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Hyper-parameter search on {bench['label']} (lambdas {how})", fontsize=9)
    save(fig, outputs)
