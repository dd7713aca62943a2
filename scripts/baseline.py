"""Snakemake adapter: one baseline on one model, timed (rules baseline and retrain)."""

from mnemu.pipeline import baseline_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    baseline_step(
        snakemake.input.model,
        snakemake.params.method,
        classes=snakemake.wildcards.classes,
        settings=snakemake.params.settings,
        run=snakemake.params.run,
        data_dir=snakemake.params.data_dir,
        out_metrics=snakemake.output.metrics,
        out_model=getattr(snakemake.output, "model", None),
    )
