"""Snakemake adapter: A_R and E_F of one Table 4 model on the test split (rule imagenet_evaluate)."""

from mnemu.pipeline import evaluate_step, job

pretrained = snakemake.wildcards.stage == "pretrained"
with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    evaluate_step(
        snakemake.input.model,
        snakemake.wildcards.stage,
        snakemake.params.section["forget_classes"],
        snakemake.params.run,
        snakemake.params.section,
        snakemake.params.data_dir,
        snakemake.output[0],
        arch=snakemake.params.arch if pretrained else None,
        manifest=snakemake.input.data if pretrained else None,
        batch_size=snakemake.params.section.get("eval_batch_size", 256),
    )
