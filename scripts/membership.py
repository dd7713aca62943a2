"""Snakemake adapter: membership inference on the forget classes (rule membership)."""

from mnemu.pipeline import job, membership_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    membership_step(
        dict(snakemake.input.items()),
        classes=snakemake.wildcards.classes,
        data_dir=snakemake.params.data_dir,
        run=snakemake.params.run,
        out_aucs=snakemake.output.aucs,
        out_losses=snakemake.output.losses,
    )
