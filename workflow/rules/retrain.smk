# Retraining without the forget classes (the gold standard; Fig. 12's models trained without
# classes): the training step with exclude_classes, from the benchmark's main settings.
# Stand-in until the baselines' retrain rule (same output path) lands; then remove this file.


rule retrain:
    input:
        data=f"{RESULTS}/{{bench}}/data.json",
    output:
        metrics=f"{RETRAIN_MODEL_DIR}/metrics.json",
        model=f"{RETRAIN_MODEL_DIR}/model.pt",
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
        runtime=resource("train", "runtime"),
    params:
        bench=lambda wc: {
            **train_params(wc),
            "train": {
                **MODELS[wc.bench]["train"],
                "exclude_classes": [int(c) for c in wc.classes.split("+")],
            },
        },
        run=lambda wc: retrained_run_of(wc, wc.classes),
        data_dir=config["data_dir"],
    script:
        "../../scripts/train.py"
