"""Snakemake adapter: one of the paper's tables as CSV and Markdown (rule table)."""

import yaml

from mnemu.pipeline import job
from mnemu.report import make_table

with job(snakemake.log[0], snakemake.threads):
    with open(snakemake.input.paper) as handle:
        paper_results = yaml.safe_load(handle)
    make_table(
        snakemake.wildcards.table,
        snakemake.input.summary,
        snakemake.params.benchmarks,
        paper_results,
        snakemake.output.csv,
        snakemake.output.md,
    )
