"""Snakemake adapter: fetch and check one benchmark's data set (rule prepare_data)."""

from mnemu.pipeline import job, prepare_data_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    prepare_data_step(
        snakemake.params.dataset,
        snakemake.params.data_options,
        snakemake.params.data_dir,
        snakemake.output[0],
        num_classes=snakemake.params.num_classes,
        model=snakemake.params.model,
        pretrained=snakemake.params.pretrained,
    )
