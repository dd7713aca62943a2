"""Snakemake adapter: one Fisher's approximation error to its model's oracle (rule fim_error)."""

from mnemu.pipeline import fim_error_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    fim_error_step(
        snakemake.input.fisher,
        snakemake.input.oracle,
        run=snakemake.params.run,
        out=snakemake.output[0],
    )
