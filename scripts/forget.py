"""Snakemake adapter: the timed forget step (rules forget and forget_auto)."""

from mnemu.pipeline import forget_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    forget_step(
        snakemake.input.model,
        snakemake.input.get("lambdas"),  # none: lambda: auto
        classes=snakemake.wildcards.classes,
        method=snakemake.params.method,
        run=snakemake.params.run,
        eta_eps=snakemake.params.eta_eps,
        data_dir=snakemake.params.data_dir,
        out_metrics=snakemake.output.metrics,
        out_model=snakemake.output.model,
    )
