# Forgetting (Alg. 2): the lambda grid of a model (one code Fisher, then perturb + evaluate at
# each point), the lambdas each benchmark uses, and the timed forget step itself: once at the
# benchmark's lambdas (forget<classes>/) and once with lambda chosen per request from the codes
# (forget<classes>_auto/), so that the tables show both.


rule lambda_grid:
    input:
        model=f"{MODEL_DIR}/model.pt",
        fisher=f"{MODEL_DIR}/fisher/codes_forget{{classes}}.pt",
    output:
        f"{MODEL_DIR}/grid_forget{{classes}}.csv",
    log:
        f"{LOGS}/lambda_grid/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/lambda_grid/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.tsv"
    priority: critical_first
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        lambda1=config["lambda1_grid"],
        lambda2=config["lambda2_grid"],
        run=run_of,
        eta_eps=config["eta_eps"],
        validation_per_class=config["validation_per_class"],
        data_dir=config["data_dir"],
    script:
        "../../scripts/lambda_grid.py"


rule choose_lambda:
    input:
        grids=lambda_grids,
    output:
        f"{RESULTS}/{{bench}}/lambda.json",
    log:
        f"{LOGS}/choose_lambda/{{bench}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/choose_lambda/{{bench}}.tsv"
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        setting=lambda wc: MODELS[wc.bench]["lambda"],
        select_on=config["select_on"],
    script:
        "../../scripts/choose_lambda.py"


rule forget:
    input:
        model=f"{MODEL_DIR}/model.pt",
        lambdas=f"{RESULTS}/{{bench}}/lambda.json",
    output:
        metrics=f"{MODEL_DIR}/forget{{classes}}/metrics.json",
        model=f"{MODEL_DIR}/forget{{classes}}/model.pt",
    log:
        f"{LOGS}/forget/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/forget/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        method=config["fisher_method"],
        run=run_of,
        eta_eps=config["eta_eps"],
        data_dir=config["data_dir"],
    script:
        "../../scripts/forget.py"


# The auto rule's code is an input: its choices are the experiment, and a change to it (its path,
# its stop) must rerun these jobs, which Snakemake does not do for library code on its own.
rule forget_auto:
    input:
        model=f"{MODEL_DIR}/model.pt",
        rule_code="src/mnemu/lambdas.py",
    output:
        metrics=f"{MODEL_DIR}/forget{{classes}}_auto/metrics.json",
        model=f"{MODEL_DIR}/forget{{classes}}_auto/model.pt",
    log:
        f"{LOGS}/forget_auto/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/forget_auto/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        method=config["fisher_method"],
        run=run_of,
        eta_eps=config["eta_eps"],
        data_dir=config["data_dir"],
    script:
        "../../scripts/forget.py"
