# Per-seed results gathered into one tidy CSV per paper artefact; tables and figures read these.


rule summarise:
    input:
        summary_files,
    output:
        f"{RESULTS}/summaries/{{summary}}.csv",
    log:
        f"{LOGS}/summarise/{{summary}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/summarise/{{summary}}.tsv"
    wildcard_constraints:
        summary="|".join(SUMMARIES),
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    script:
        "../../scripts/summarise.py"
