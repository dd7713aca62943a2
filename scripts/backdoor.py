"""Snakemake adapter: accuracy on test images blended with a code (rule backdoor)."""

from mnemu.pipeline import backdoor_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    backdoor_step(snakemake.input.model, snakemake.params.code_class, snakemake.params.ratios,
                  data_dir=snakemake.params.data_dir, run=snakemake.params.run,
                  out=snakemake.output.accuracy, out_images=snakemake.output.images,
                  num_images=snakemake.params.num_images)
