"""Snakemake adapter: Fig. 2, test accuracy against t_mix (rule fig2)."""

from mnemu.pipeline import job
from mnemu.report import figure_accuracy_vs_tmix

with job(snakemake.log[0], snakemake.threads):
    figure_accuracy_vs_tmix(
        snakemake.input.summary,
        snakemake.params.benchmarks,
        snakemake.output.pdf,
        snakemake.output.png,
    )
