# The reproduction report: every paper item with ours beside the paper's numbers and a verdict,
# the claims, provenance (mnemu.reporting). Its inputs are the artefacts, the summaries they were
# drawn from and the paper's numbers; the jobs' benchmark files are read when the step runs (a
# glob inside it, not inputs: they are side files of other jobs, and the report must not rerun
# whenever one is rewritten).


rule report:
    input:
        artefacts=artefact_files(),
        summaries=artefact_summaries(),
        paper="config/paper_results.yaml",
        code="src/mnemu/reporting.py",
        template="src/mnemu/templates/report.html.j2",
    output:
        html=f"{FIGURES}/report.html",
        json=f"{FIGURES}/report.json",
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{RESULTS}/benchmarks/report.tsv"
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        config=config,
    script:
        "../../scripts/report.py"
