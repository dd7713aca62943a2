"""Snakemake adapter: training-sample losses by class group (rules unused_losses_*)."""

from mnemu.pipeline import class_losses_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    class_losses_step(snakemake.input.model, snakemake.params.groups,
                      data_dir=snakemake.params.data_dir, run=snakemake.params.run,
                      out=snakemake.output[0])
