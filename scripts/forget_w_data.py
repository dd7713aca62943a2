"""Snakemake adapter: ours-w-data, Alg. 2 with a Fisher from real training samples (rule forget_w_data)."""

from mnemu.pipeline import forget_w_data_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    forget_w_data_step(
        snakemake.input.model,
        snakemake.input.fisher,
        snakemake.input.lambdas,
        data_dir=snakemake.params.data_dir,
        run=snakemake.params.run,
        eta_eps=snakemake.params.eta_eps,
        out=snakemake.output[0],
    )
