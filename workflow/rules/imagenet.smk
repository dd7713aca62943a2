# Table 4 (Sec. 4.4): pretrained weights -> fine-tuning with codes (step-based, resumable) ->
# code Fisher -> forgetting C_F -> evaluation on the validation images, each its own job; and
# the forget time of whole Alg. 2 against the number of classes (beyond the paper).


rule imagenet_data:
    input:
        imagenet_inputs_checked,
    output:
        f"{IMAGENET_DIR}/data.json",
    log:
        f"{LOGS}/imagenet/data.log",
    benchmark:
        f"{RESULTS}/benchmarks/imagenet/data.tsv"
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        dataset=IMAGENET.get("dataset"),
        data_options=IMAGENET.get("data_options", {}),
        num_classes=IMAGENET.get("num_classes"),
        model=None,
        pretrained=False,
        data_dir=config["data_dir"],
    script:
        "../../scripts/prepare_data.py"


rule imagenet_weights:
    input:
        data=f"{IMAGENET_DIR}/data.json",
    output:
        f"{IMAGENET_DIR}/{{arch}}/weights.pt",
    log:
        f"{LOGS}/imagenet/{{arch}}_weights.log",
    benchmark:
        f"{RESULTS}/benchmarks/imagenet/{{arch}}_weights.tsv"
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        arch=lambda wc: ARCHS[wc.arch],
    script:
        "../../scripts/imagenet_weights.py"


rule imagenet_finetune:
    input:
        weights=f"{IMAGENET_DIR}/{{arch}}/weights.pt",
    output:
        model=f"{ARCH_DIR}/finetuned/model.pt",
        record=f"{ARCH_DIR}/finetuned/finetune.json",
    log:
        f"{LOGS}/imagenet/{{arch}}_seed{{seed}}_finetune.log",
    benchmark:
        f"{RESULTS}/benchmarks/imagenet/{{arch}}_seed{{seed}}_finetune.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("train", "threads")
    resources:
        gpu=resource("train", "gpu"),
        mem_mb=resource("train", "mem_mb"),
    params:
        arch=lambda wc: ARCHS[wc.arch],
        section=IMAGENET,
        run=imagenet_run,
        codes=CODES,
        data_dir=config["data_dir"],
    script:
        "../../scripts/finetune.py"


rule imagenet_fisher:
    input:
        model=f"{ARCH_DIR}/finetuned/model.pt",
    output:
        f"{ARCH_DIR}/fisher/{{source}}_forget{{classes}}.pt",
    log:
        f"{LOGS}/imagenet/{{arch}}_seed{{seed}}_fisher_{{source}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/imagenet/{{arch}}_seed{{seed}}_fisher_{{source}}_forget{{classes}}.tsv"
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


rule imagenet_forget:
    input:
        model=f"{ARCH_DIR}/finetuned/model.pt",
        fisher=f"{ARCH_DIR}/fisher/codes_forget{{classes}}.pt",
    output:
        model=f"{ARCH_DIR}/forget{{classes}}/model.pt",
        record=f"{ARCH_DIR}/forget{{classes}}/forget.json",
    log:
        f"{LOGS}/imagenet/{{arch}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/imagenet/{{arch}}_seed{{seed}}_forget{{classes}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        lambdas=IMAGENET.get("lambda"),
        run=imagenet_run,
        eta_eps=config["eta_eps"],
    script:
        "../../scripts/imagenet_forget.py"


rule imagenet_evaluate:
    input:
        unpack(imagenet_model),
    output:
        f"{ARCH_DIR}/eval/{{stage}}.json",
    log:
        f"{LOGS}/imagenet/{{arch}}_seed{{seed}}_evaluate_{{stage}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/imagenet/{{arch}}_seed{{seed}}_evaluate_{{stage}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        arch=lambda wc: ARCHS[wc.arch],
        section=IMAGENET,
        run=imagenet_run,
        data_dir=config["data_dir"],
    script:
        "../../scripts/evaluate.py"


rule forget_time_scaling:
    output:
        f"{RESULTS}/forget_time_scaling/{{arch}}.csv",
    log:
        f"{LOGS}/forget_time_scaling/{{arch}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/forget_time_scaling/{{arch}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        arch=lambda wc: ARCHS[wc.arch],
        scaling=SCALING,
        lambdas=IMAGENET.get("lambda"),
        method=config["fisher_method"],
    script:
        "../../scripts/forget_time_scaling.py"
