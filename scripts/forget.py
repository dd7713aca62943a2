"""Snakemake adapter: the timed forget step at the chosen lambdas (rule forget)."""

from mnemu.pipeline import forget_step, job

with job(snakemake.log[0], snakemake.threads):
    forget_step(
        snakemake.input.model,
        snakemake.input.lambdas,
        classes=snakemake.wildcards.classes,
        method=snakemake.params.method,
        run=snakemake.params.run,
        eta_eps=snakemake.params.eta_eps,
        data_dir=snakemake.params.data_dir,
        out_metrics=snakemake.output.metrics,
        out_model=snakemake.output.model,
    )
