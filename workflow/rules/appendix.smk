# App. C, privacy and robustness of a forgotten model: membership inference (Figs. 11, 12), how
# often models output the forgotten class (App. C.2), codes blended into test images (Figs. 13,
# 14), and the class names' text embeddings of the CLIP-style model (Table 9).


rule text_embeddings:
    input:
        data=f"{RESULTS}/{{bench}}/data.json",
    output:
        f"{RESULTS}/{{bench}}/class_embeddings.pt",
    log:
        f"{LOGS}/text_embeddings/{{bench}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/text_embeddings/{{bench}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        encoder=lambda wc: MODELS[wc.bench]["text_encoder"],
    script:
        "../../scripts/text_embeddings.py"


rule membership:
    input:
        trained=f"{MODEL_DIR}/model.pt",
        forgotten=f"{MODEL_DIR}/forget{{classes}}/model.pt",
        retrained=lambda wc: f"{retrain_dir(wc.bench, _classes(wc.classes), wc.seed)}/model.pt",
    output:
        aucs=f"{MODEL_DIR}/appendix/membership_forget{{classes}}.csv",
        losses=f"{MODEL_DIR}/appendix/losses_forget{{classes}}.csv",
    log:
        f"{LOGS}/membership/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/membership/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        run=run_of,
        data_dir=config["data_dir"],
    script:
        "../../scripts/membership.py"


rule output_rate:
    input:
        forgotten=f"{MODEL_DIR}/forget{{classes}}/model.pt",
        retrained=lambda wc: f"{retrain_dir(wc.bench, _classes(wc.classes), wc.seed)}/model.pt",
    output:
        f"{MODEL_DIR}/appendix/output_rate_forget{{classes}}.csv",
    log:
        f"{LOGS}/output_rate/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/output_rate/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        run=run_of,
        data_dir=config["data_dir"],
    script:
        "../../scripts/output_rate.py"


rule backdoor:
    input:
        model=f"{MODEL_DIR}/model.pt",
    output:
        accuracy=f"{MODEL_DIR}/appendix/backdoor.csv",
        images=f"{MODEL_DIR}/appendix/backdoor_images.pt",
    log:
        f"{LOGS}/backdoor/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/backdoor/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        code_class=APPENDIX["backdoor_code_class"] if APPENDIX else 0,
        ratios=APPENDIX["backdoor_ratios"] if APPENDIX else [],
        num_images=APPENDIX["backdoor_images"] if APPENDIX else 0,
        run=run_of,
        data_dir=config["data_dir"],
    script:
        "../../scripts/backdoor.py"


# Fig. 12a: the model trained without {unused} forgets {classes} (Alg. 2, the benchmark's lambdas)
rule forget_retrained:
    input:
        model=f"{RESULTS}/{{bench}}/retrain_forget{{unused}}/seed{{seed}}/model.pt",
        lambdas=f"{RESULTS}/{{bench}}/lambda.json",
    output:
        metrics=f"{RESULTS}/{{bench}}/retrain_forget{{unused}}/seed{{seed}}/forget{{classes}}/metrics.json",
        model=f"{RESULTS}/{{bench}}/retrain_forget{{unused}}/seed{{seed}}/forget{{classes}}/model.pt",
    log:
        f"{LOGS}/forget_retrained/{{bench}}_without{{unused}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/forget_retrained/{{bench}}_without{{unused}}_seed{{seed}}_forget{{classes}}.tsv"
    wildcard_constraints:
        unused=r"\d+(\+\d+)*",
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        method=config["fisher_method"],
        run=lambda wc: retrained_run_of(wc, wc.unused),
        eta_eps=config["eta_eps"],
        data_dir=config["data_dir"],
    script:
        "../../scripts/forget.py"


# Fig. 12a: training-sample losses of the unused, the forgotten and the remaining classes
rule losses_unused_forgotten:
    input:
        model=f"{RESULTS}/{{bench}}/retrain_forget{{unused}}/seed{{seed}}/forget{{classes}}/model.pt",
    output:
        f"{RESULTS}/{{bench}}/retrain_forget{{unused}}/seed{{seed}}/forget{{classes}}/class_losses.csv",
    log:
        f"{LOGS}/class_losses/{{bench}}_without{{unused}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/class_losses/{{bench}}_without{{unused}}_seed{{seed}}_forget{{classes}}.tsv"
    wildcard_constraints:
        unused=r"\d+(\+\d+)*",
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        groups=lambda wc: {
            "unused": _classes(wc.unused),
            "forgotten": _classes(wc.classes),
        },
        run=lambda wc: {**retrained_run_of(wc, wc.unused), "forgot": wc.classes},
        data_dir=config["data_dir"],
    script:
        "../../scripts/class_losses.py"


# Fig. 12b: training-sample losses of each class a model was trained without
rule losses_unused:
    input:
        model=f"{RETRAIN_DIR}/model.pt",
    output:
        f"{RETRAIN_DIR}/class_losses.csv",
    log:
        f"{LOGS}/class_losses/{{bench}}_without{{classes}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/class_losses/{{bench}}_without{{classes}}_seed{{seed}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("forget", "threads")
    resources:
        gpu=resource("forget", "gpu"),
        mem_mb=resource("forget", "mem_mb"),
    params:
        groups=lambda wc: {f"unused {c}": [c] for c in _classes(wc.classes)},
        run=lambda wc: {**retrained_run_of(wc, wc.classes), "forgot": ""},
        data_dir=config["data_dir"],
    script:
        "../../scripts/class_losses.py"
