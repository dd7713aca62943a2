"""Snakemake adapter: the loss gradients at a model's trained weights (rule layer_gradients)."""

from mnemu.pipeline import job, layer_gradients_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    layer_gradients_step(
        snakemake.input.model,
        classes=snakemake.wildcards.classes,
        data_dir=snakemake.params.data_dir,
        run=snakemake.params.run,
        out=snakemake.output[0],
    )
