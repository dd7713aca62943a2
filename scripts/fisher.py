"""Snakemake adapter: the code or oracle Fisher of one model and forget set (rule fisher)."""

from mnemu.pipeline import fisher_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    fisher_step(
        snakemake.input.model,
        source=snakemake.wildcards.source,
        classes=snakemake.wildcards.classes,
        data_dir=snakemake.params.data_dir,
        method=snakemake.params.method,
        out=snakemake.output[0],
    )
