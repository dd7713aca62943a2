"""Snakemake adapter: draw one paper artefact, a figure or a table (rules figure and table)."""

from mnemu.artefacts import by_id, draw
from mnemu.jobs import job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    draw(
        by_id(snakemake.config)[snakemake.wildcards.artefact],
        dict(snakemake.input.items()),
        dict(snakemake.output.items()),
        snakemake.params.benchmarks,
    )
