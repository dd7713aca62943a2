"""Snakemake adapter: gather per-seed results into one tidy CSV (rule summarise)."""

from mnemu.pipeline import job
from mnemu.report import summarise

with job(snakemake.log[0], snakemake.threads):
    summarise(list(snakemake.input), snakemake.params.meta, snakemake.output[0])
