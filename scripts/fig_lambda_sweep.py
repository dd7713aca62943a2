"""Snakemake adapter: Figs. 6-9, the lambda1 and lambda2 sweeps (rule lambda_sweep_figure)."""

from mnemu.pipeline import job
from mnemu.report import figure_lambda_sweep

with job(snakemake.log[0], snakemake.threads):
    figure_lambda_sweep(
        snakemake.input.summary,
        snakemake.params.benchmark,
        snakemake.output.pdf,
        snakemake.output.png,
    )
