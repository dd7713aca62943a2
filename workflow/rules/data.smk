# Getting each data set (and pretrained weights): on the machine that runs Snakemake, which has
# the network that compute nodes may lack.


rule prepare_data:
    output:
        f"{RESULTS}/{{bench}}/data.json",
    log:
        f"{LOGS}/prepare_data/{{bench}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/prepare_data/{{bench}}.tsv"
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        dataset=lambda wc: MODELS[wc.bench]["dataset"],
        data_options=lambda wc: MODELS[wc.bench].get("data_options", {}),
        num_classes=lambda wc: MODELS[wc.bench]["num_classes"],
        model=lambda wc: MODELS[wc.bench]["model"],
        pretrained=lambda wc: MODELS[wc.bench].get("pretrained", False),
        data_dir=config["data_dir"],
    script:
        "../../scripts/prepare_data.py"
