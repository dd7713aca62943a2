"""Snakemake adapter: gather per-run records into one tidy CSV (rule summarise)."""

from mnemu.jobs import job, summarise_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    summarise_step(list(snakemake.input), snakemake.output[0])
