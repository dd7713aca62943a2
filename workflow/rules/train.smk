# Training a model with mnemonic codes (Alg. 1) for each benchmark, t_mix, code distribution
# and seed; its test accuracy is recorded beside it (Fig. 2).


rule train:
    input:
        data=f"{RESULTS}/{{bench}}/data.json",
        class_embeddings=class_embeddings_of,
    output:
        model=f"{MODEL_DIR}/model.pt",
        metrics=f"{MODEL_DIR}/train.json",
    log:
        f"{LOGS}/train/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{bench}}_tmix{{tmix}}_{{codes}}_seed{{seed}}.tsv"
    priority: critical_first
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("train", "threads")
    resources:
        gpu=resource("train", "gpu"),
        mem_mb=resource("train", "mem_mb"),
    params:
        bench=train_params,
        run=run_of,
        data_dir=config["data_dir"],
    script:
        "../../scripts/train.py"
