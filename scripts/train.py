"""Snakemake adapter: train one model with mnemonic codes (rule train)."""

from mnemu.pipeline import job, train_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    train_step(
        snakemake.params.bench,
        snakemake.params.run,
        data_dir=snakemake.params.data_dir,
        out_model=snakemake.output.model,
        out_metrics=snakemake.output.metrics,
    )
