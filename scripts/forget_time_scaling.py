"""Snakemake adapter: whole Alg. 2 timed against the number of classes (rule forget_time_scaling)."""

from mnemu.pipeline import forget_time_scaling_step, job

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    forget_time_scaling_step(
        snakemake.params.arch,
        snakemake.params.scaling["classes"],
        snakemake.params.scaling["input_size"],
        snakemake.params.scaling["repeats"],
        snakemake.params.lambdas,
        snakemake.output[0],
        method=snakemake.params.method,
    )
