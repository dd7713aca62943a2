# The baselines of Tables 2, 3 and Fig. 3 (mnemu.baselines): each method on each benchmark's main
# models, timed by the timer our forget step uses. Retraining without the forget classes keeps
# its model (one per benchmark, class set and seed) for later studies.


rule baseline:
    input:
        model=f"{MODEL_DIR}/model.pt",
    output:
        metrics=f"{MODEL_DIR}/baselines/{{method}}_forget{{classes}}.json",
    log:
        f"{LOGS}/baseline/{{method}}_{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/baseline/{{method}}_{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}_forget{{classes}}.tsv"
    wildcard_constraints:
        method="|".join(FORGET_BASELINES) or "^$",
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("baseline", "threads")
    resources:
        gpu=resource("baseline", "gpu"),
        mem_mb=resource("baseline", "mem_mb"),
    params:
        method=lambda wc: wc.method,
        settings=lambda wc: config["baselines"].get(wc.method) or {},
        run=run_of,
        data_dir=config["data_dir"],
    script:
        "../../scripts/baseline.py"


rule retrain:
    input:
        model=lambda wc: f"{main_model_dir(wc)}/model.pt",
    output:
        metrics=f"{RETRAIN_DIR}/metrics.json",
        model=f"{RETRAIN_DIR}/model.pt",
    log:
        f"{LOGS}/retrain/{{bench}}_forget{{classes}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/retrain/{{bench}}_forget{{classes}}_seed{{seed}}.tsv"
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("train", "threads")
    resources:
        gpu=resource("train", "gpu"),
        mem_mb=resource("train", "mem_mb"),
    params:
        method="retrain",
        settings=lambda wc: train_settings(MODELS[wc.bench], main_run_of(wc)),
        run=main_run_of,
        data_dir=config["data_dir"],
    script:
        "../../scripts/baseline.py"
