"""Snakemake adapter: the weights Table 4 starts from, fetched on the login node (rule imagenet_weights)."""

from mnemu.pipeline import job, pretrained_weights_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    pretrained_weights_step(snakemake.params.arch, snakemake.input.data, snakemake.output[0])
