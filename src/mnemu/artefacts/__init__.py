"""The paper's artefacts: every figure and table the workflow builds, declared once.

The workflow's targets (``rule all``), the rules that draw them, the captions of
``snakemake --report`` and the tests all read :func:`catalogue`. Each artefact is drawn by its
own module in this package (``draw(inputs, outputs, benchmarks)``), which its rule lists as an
input: restyling one artefact reruns that artefact alone, and drawing never reruns computation.

Adding an artefact = one entry in :data:`ARTEFACTS` + one drawing module (+ a rule, if it needs new
computation).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: What each kind of artefact is written as (file extensions, in this order).
FORMATS = {"figure": ("pdf", "png"), "table": ("csv", "md")}


@dataclass(frozen=True)
class Artefact:
    """One figure or table of the paper (or beyond it).

    ``id`` is the file stem under the figures folder (``fig2`` -> ``fig2.pdf``, ``fig2.png``);
    ``paper`` the item it reproduces; ``summaries`` the tidy CSVs it is drawn from (names of the
    workflow's summaries); ``module`` the drawing module in this package; ``options`` extra
    keyword arguments of its ``draw``.
    """

    id: str
    paper: str
    kind: str
    summaries: tuple[str, ...]
    module: str
    caption: str
    paper_results: bool = False  # reads config/paper_results.yaml (the paper's numbers)
    lambdas_of: str | None = None  # reads this benchmark's lambda.json
    options: Mapping = field(default_factory=dict)

    @property
    def formats(self) -> tuple[str, ...]:
        return FORMATS[self.kind]

    @property
    def code(self) -> str:
        """The drawing module's file, relative to the repository root (a rule input)."""
        return f"src/mnemu/artefacts/{self.module}.py"


ARTEFACTS = (
    Artefact("fig2", "Fig. 2", "figure", ("accuracy_vs_tmix",), "fig2",
             "Fig. 2: test accuracy of models trained with mnemonic codes against t_mix, the "
             "probability of replacing a training sample by its class's code (mean and standard "
             "deviation over seeds), one line per data set."),
    Artefact("table2", "Table 2", "table", ("forget_main", "forget_main_auto"), "table2",
             "Table 2: A_R (test accuracy on the remaining classes, %) before and after "
             "forgetting C_F, per data set, mean ± std over seeds, the paper's values beside ours; "
             "ours with lambda chosen by the paper's rule and with lambda: auto.",
             paper_results=True),
    Artefact("table3", "Table 3", "table", ("forget_main", "forget_main_auto"), "table3",
             "Table 3: E_F (test error on the forget classes, %) before and after forgetting C_F, "
             "per data set, mean ± std over seeds, the paper's values beside ours; by the paper's "
             "lambda rule and by lambda: auto.",
             paper_results=True),
    Artefact("table5", "Table 5", "table", ("forget_vs_tmix", "forget_vs_tmix_auto"), "table5",
             "Table 5: A_R and E_F after forgetting C_F with models trained at each t_mix, per "
             "data set, mean ± std over seeds, the paper's values beside ours; by the paper's "
             "lambda rule and by lambda: auto.",
             paper_results=True),
    Artefact("table8", "Table 8", "table", ("forget_other_classes", "forget_other_classes_auto"),
             "table8",
             "Table 8: A_R and E_F after forgetting each of the other classes, one at a time, "
             "per data set, mean ± std over seeds, the paper's values beside ours; by the paper's "
             "lambda rule and by lambda: auto.",
             paper_results=True),
    Artefact("ablation_codes", "beyond the paper (Alg. 1)", "table",
             ("forget_code_distributions",), "ablation_codes",
             "Code ablation: accuracy before forgetting and A_R / E_F after it with codes drawn "
             "U[0,1) (the authors' code) or N(0,1) (the paper's text), per data set."),
)

#: Figs. 6-9 are one kind of figure, the lambda sweeps, drawn per benchmark as the config says.
LAMBDA_SWEEP_CAPTION = (
    "{paper}: A_R and E_F on {label} after forgetting C_F while sweeping lambda1 with lambda2 "
    "fixed (left) and lambda2 with lambda1 fixed (right), at the lambdas the benchmark uses "
    "(mean ± std over seeds).")


def catalogue(config: Mapping) -> list[Artefact]:
    """Every artefact a workflow configuration builds: :data:`ARTEFACTS` plus one lambda-sweep
    figure per ``lambda_sweep_figures`` entry."""
    labels = {b["id"]: b.get("label", b["id"]) for b in config["benchmarks"]}
    sweeps = []
    for entry in config.get("lambda_sweep_figures", []):
        figure, bench = entry["figure"], entry["benchmark"]
        paper = f"Fig. {figure.removeprefix('fig')}"
        sweeps.append(Artefact(
            figure, paper, "figure", (f"lambda_grid_{bench}",), "lambda_sweep",
            LAMBDA_SWEEP_CAPTION.format(paper=paper, label=labels.get(bench, bench)),
            lambdas_of=bench, options={"benchmark": bench}))
    return [*ARTEFACTS[:1], *sweeps, *ARTEFACTS[1:]]


def draw(artefact: Artefact, inputs: Mapping, outputs: Mapping, benchmarks: Sequence[dict]) -> None:
    """Draw ``artefact`` from its ``inputs`` (``summary`` or ``summaries``, ``paper``,
    ``lambdas``) into its ``outputs`` (one path per format)."""
    module = importlib.import_module(f"{__name__}.{artefact.module}")
    module.draw(inputs, outputs, benchmarks, **dict(artefact.options))


def by_id(config: Mapping) -> dict[str, Artefact]:
    return {a.id: a for a in catalogue(config)}


def module_path(artefact: Artefact) -> Path:
    return Path(__file__).with_name(f"{artefact.module}.py")
