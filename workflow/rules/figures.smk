# The paper's figures (PDF and PNG) and tables (CSV and Markdown), named as the paper names them,
# each drawn by its own module of mnemu.artefacts (the catalogue says which), listed as an input.


rule figure:
    input:
        unpack(artefact_inputs),
    output:
        pdf=report(
            f"{FIGURES}/{{artefact}}.pdf",
            caption="../report/artefact.rst",
            category="Figures",
            labels={"artefact": "{artefact}"},
        ),
        png=f"{FIGURES}/{{artefact}}.png",
    log:
        f"{LOGS}/figures/{{artefact}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{artefact}}.tsv"
    wildcard_constraints:
        artefact="|".join(artefacts_of("figure")),
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        benchmarks=config["benchmarks"],
        caption=lambda wc: ARTEFACTS[wc.artefact].caption,
        options=lambda wc: dict(ARTEFACTS[wc.artefact].options),
    script:
        "../../scripts/draw.py"


rule table:
    input:
        unpack(artefact_inputs),
    output:
        csv=report(
            f"{FIGURES}/{{artefact}}.csv",
            caption="../report/artefact.rst",
            category="Tables",
            labels={"artefact": "{artefact}"},
        ),
        md=f"{FIGURES}/{{artefact}}.md",
    log:
        f"{LOGS}/tables/{{artefact}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/tables/{{artefact}}.tsv"
    wildcard_constraints:
        artefact="|".join(artefacts_of("table")),
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        benchmarks=config["benchmarks"],
        caption=lambda wc: ARTEFACTS[wc.artefact].caption,
        options=lambda wc: dict(ARTEFACTS[wc.artefact].options),
    script:
        "../../scripts/draw.py"


rule figure_csv:
    input:
        unpack(artefact_inputs),
    output:
        csv=f"{FIGURES}/{{artefact}}.csv",
        pdf=report(
            f"{FIGURES}/{{artefact}}.pdf",
            caption="../report/artefact.rst",
            category="Figures",
            labels={"artefact": "{artefact}"},
        ),
        png=f"{FIGURES}/{{artefact}}.png",
    log:
        f"{LOGS}/figures/{{artefact}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/figures/{{artefact}}.tsv"
    wildcard_constraints:
        artefact="|".join(artefacts_of("figure_csv")),
    localrule: True
    conda:
        "../../envs/mnemu.yaml"
    threads: resource("light", "threads")
    resources:
        gpu=resource("light", "gpu"),
        mem_mb=resource("light", "mem_mb"),
    params:
        benchmarks=config["benchmarks"],
        caption=lambda wc: ARTEFACTS[wc.artefact].caption,
    script:
        "../../scripts/draw.py"
