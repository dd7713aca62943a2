"""Snakemake adapter: how often models output the forget classes (rule output_rate)."""

from mnemu.pipeline import job, output_rate_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    output_rate_step(dict(snakemake.input.items()), classes=snakemake.wildcards.classes,
                     data_dir=snakemake.params.data_dir, run=snakemake.params.run,
                     out=snakemake.output[0])
