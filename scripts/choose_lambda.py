"""Snakemake adapter: the lambdas a benchmark's forget jobs use (rule choose_lambda)."""

from mnemu.pipeline import choose_lambda_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    choose_lambda_step(
        snakemake.wildcards.bench,
        snakemake.params.setting,
        list(snakemake.input.grids),
        snakemake.output[0],
        select_on=snakemake.params.select_on,
    )
