"""Snakemake adapter: fine-tune pretrained weights with codes, step-based (rule imagenet_finetune)."""

from mnemu.pipeline import finetune_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    finetune_step(
        snakemake.params.arch,
        snakemake.params.section,
        snakemake.params.run,
        weights=snakemake.input.weights,
        codes=snakemake.params.codes,
        data_dir=snakemake.params.data_dir,
        out_model=snakemake.output.model,
        out_record=snakemake.output.record,
    )
