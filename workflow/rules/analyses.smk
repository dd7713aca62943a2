# Why codes work (Sec. 4.3, App. A and B): ours-w-data, Alg. 2 with a Fisher from N real samples
# per class (Fig. 4); each Fisher's error to its model's oracle Fisher (Figs. 5 and 10); the loss
# gradients at the trained weights (Table 6). The oracle is the fisher rule's source "data".


rule forget_w_data:
    input:
        model=f"{MODEL_DIR}/model.pt",
        fisher=f"{MODEL_DIR}/fisher/{{source}}_forget{{classes}}.pt",
        lambdas=f"{RESULTS}/{{bench}}/lambda.json",
    output:
        f"{MODEL_DIR}/w_data/{{source}}_forget{{classes}}.json",
    log:
        f"{LOGS}/forget_w_data/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_{{source}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/forget_w_data/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_{{source}}_forget{{classes}}.tsv"
    wildcard_constraints:
        source=r"data\d*",
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        run=run_of,
        eta_eps=config["eta_eps"],
        data_dir=config["data_dir"],
    script:
        "../../scripts/forget_w_data.py"


rule fim_error:
    input:
        fisher=f"{MODEL_DIR}/fisher/{{source}}_forget{{classes}}.pt",
        oracle=f"{MODEL_DIR}/fisher/data_forget{{classes}}.pt",
    output:
        f"{MODEL_DIR}/fim_error/{{source}}_forget{{classes}}.json",
    log:
        f"{LOGS}/fim_error/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_{{source}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/fim_error/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_{{source}}_forget{{classes}}.tsv"
    wildcard_constraints:
        source=r"codes|data\d+",
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        run=run_of,
    script:
        "../../scripts/fim_error.py"


rule layer_gradients:
    input:
        model=f"{MODEL_DIR}/model.pt",
    output:
        f"{MODEL_DIR}/gradients_forget{{classes}}.json",
    log:
        f"{LOGS}/layer_gradients/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/layer_gradients/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("fisher", "threads")
    resources:
        gpu=resource("fisher", "gpu"),
        mem_mb=resource("fisher", "mem_mb"),
    params:
        run=run_of,
        data_dir=config["data_dir"],
    script:
        "../../scripts/layer_gradients.py"
