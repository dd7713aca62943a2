"""Snakemake adapter: Alg. 2 from the code Fisher, timed, without evaluation (rule imagenet_forget)."""

from mnemu.pipeline import forget_only_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    forget_only_step(
        snakemake.input.model,
        snakemake.input.fisher,
        snakemake.params.lambdas,
        snakemake.params.run,
        out_model=snakemake.output.model,
        out_record=snakemake.output.record,
        eta_eps=snakemake.params.eta_eps,
    )
