"""Snakemake adapter: the class names' text embeddings, computed once (rule text_embeddings)."""

from mnemu.pipeline import job, text_embeddings_step

with job(snakemake.log[0], snakemake.threads, exit_when_done=True):
    text_embeddings_step(snakemake.input.data, snakemake.params.encoder, snakemake.output[0])
