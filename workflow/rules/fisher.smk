# Diagonal Fisher of the forget and remaining classes: from the mnemonic codes (Eq. 4), or the
# oracle from the training data (source "data", Sec. 4.3) or from N samples per class ("dataN").


rule fisher:
    input:
        model=f"{MODEL_DIR}/model.pt",
    output:
        f"{MODEL_DIR}/fisher/{{source}}_forget{{classes}}.pt",
    log:
        f"{LOGS}/fisher/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_{{source}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fisher/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_{{source}}_forget{{classes}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("fisher", "threads")
    resources:
        gpu=resource("fisher", "gpu"),
        mem_mb=resource("fisher", "mem_mb"),
    params:
        method=config["fisher_method"],
        data_dir=config["data_dir"],
    script:
        "../../scripts/fisher.py"
