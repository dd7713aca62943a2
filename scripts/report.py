"""Snakemake adapter: the reproduction report of this configuration (rule report)."""

from mnemu.jobs import job
from mnemu.reporting import build_report

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    build_report(snakemake.params.config, snakemake.output.html, snakemake.output.json,
                 paper_results=snakemake.input.paper)
