"""Snakemake adapter: Alg. 2 over the lambda grid of one model (rule lambda_grid)."""

from mnemu.pipeline import job, lambda_grid_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    lambda_grid_step(
        snakemake.input.model,
        snakemake.input.fisher,
        snakemake.params.lambda1,
        snakemake.params.lambda2,
        run=snakemake.params.run,
        eta_eps=snakemake.params.eta_eps,
        validation_per_class=snakemake.params.validation_per_class,
        data_dir=snakemake.params.data_dir,
        out=snakemake.output[0],
    )
