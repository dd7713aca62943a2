# One-Shot Machine Unlearning with Mnemonic Code (Yamashita, Yamada, Shibata, ACML 2024):
# every table and figure of the paper's experiments, built from data, training and forgetting.
#
#   snakemake --configfile config/small.yaml --cores 2     # offline CPU run, minutes
#   snakemake --profile slurm paper_figures/table5.csv     # the paper's settings on SLURM
#   snakemake --profile slurm paper_figures/table4.csv     # ImageNet (needs ImageNet: config/README.md)


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/fisher.smk"
include: "workflow/rules/forget.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/imagenet.smk"
include: "workflow/rules/analyses.smk"
include: "workflow/rules/summaries.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/appendix.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        paper_targets(),
