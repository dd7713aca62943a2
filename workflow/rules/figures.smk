# The paper's figures (PDF and PNG) and tables (CSV and Markdown), named as the paper names them.
# Each lists its drawing code as an input, so restyling reruns only the artefact.


rule fig2:
    input:
        summary=f"{RESULTS}/summaries/accuracy_vs_tmix.csv",
        code="src/mnemu/report.py",
    output:
        pdf=report(
            f"{FIGURES}/fig2.pdf", caption="../report/fig2.rst", category="Figures"
        ),
        png=f"{FIGURES}/fig2.png",
    log:
        f"{LOGS}/figures/fig2.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/fig2.tsv"
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
        runtime=resource("light", "runtime"),
    params:
        benchmarks=config["benchmarks"],
    script:
        "../../scripts/fig_accuracy_vs_tmix.py"


rule lambda_sweep_figure:
    input:
        summary=lambda wc: f"{RESULTS}/summaries/lambda_grid_{SWEEP_FIGURES[wc.figure]}.csv",
        code="src/mnemu/report.py",
    output:
        pdf=report(
            f"{FIGURES}/{{figure}}.pdf",
            caption="../report/lambda_sweep.rst",
            category="Figures",
        ),
        png=f"{FIGURES}/{{figure}}.png",
    log:
        f"{LOGS}/figures/{{figure}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{figure}}.tsv"
    wildcard_constraints:
        figure="|".join(SWEEP_FIGURES) or "^$",
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
        runtime=resource("light", "runtime"),
    params:
        benchmark=lambda wc: BENCHMARKS[SWEEP_FIGURES[wc.figure]],
    script:
        "../../scripts/fig_lambda_sweep.py"


rule table:
    input:
        summary=lambda wc: f"{RESULTS}/summaries/{TABLE_SUMMARY[wc.table]}.csv",
        paper="config/paper_results.yaml",
        code="src/mnemu/report.py",
    output:
        csv=report(
            f"{FIGURES}/{{table}}.csv",
            caption="../report/tables.rst",
            category="Tables",
        ),
        md=f"{FIGURES}/{{table}}.md",
    log:
        f"{LOGS}/tables/{{table}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/{{table}}.tsv"
    wildcard_constraints:
        table="|".join(TABLES),
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
        runtime=resource("light", "runtime"),
    params:
        benchmarks=config["benchmarks"],
    script:
        "../../scripts/make_table.py"
