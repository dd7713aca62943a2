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
FORMATS = {"figure": ("pdf", "png"), "table": ("csv", "md"),
           "figure_csv": ("csv", "pdf", "png")}  # a figure with its numbers beside it


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
    files: tuple[str, ...] = ()  # other result files, by the workflow's names for them (FILES)

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
    Artefact("table2", "Table 2", "table", ("forget_main", "forget_main_auto", "baselines_main"),
             "table2",
             "Table 2: A_R (test accuracy on the remaining classes, %) before and after "
             "forgetting C_F with each baseline, retraining and ours (lambda by the paper's rule, "
             "and lambda: auto), per data set, mean ± std over seeds, the best in bold, the "
             "paper's values beside ours.",
             paper_results=True),
    Artefact("table3", "Table 3", "table", ("forget_main", "forget_main_auto", "baselines_main"),
             "table3",
             "Table 3: E_F (test error on the forget classes, %) before and after forgetting C_F "
             "with each baseline, retraining and ours (lambda by the paper's rule, and lambda: "
             "auto), per data set, mean ± std over seeds, the best in bold, the paper's values "
             "beside ours.",
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
    Artefact("fig3", "Fig. 3", "figure", ("forget_main", "baselines_main"), "fig3",
             "Fig. 3: time to forget C_F with each baseline, retraining and ours (the forget "
             "call alone, one timer for all; log scale, mean ± std over seeds), one bar group "
             "per data set."),
    Artefact("fig4", "Fig. 4", "figure", ("forget_w_data", "forget_main"), "fig4",
             "Fig. 4: ours-w-data on the MNIST and CIFAR10 columns: models trained without codes "
             "(t_mix = 0) forget C_F by Alg. 2 at the benchmark's lambdas with the Fisher of N real "
             "training samples per class (the first N of each class; the rightmost point, all of "
             "them, is the oracle Fisher); the sign (Eq. 5) is chosen on those same N samples per "
             "class. A_R (blue) and E_F (orange) on the test split, mean ± std over seeds; dotted: "
             "ours, a model trained with codes forgetting with one code per class."),
    Artefact("fig5", "Fig. 5", "figure", ("fim_error_w_data",), "fig5",
             "Fig. 5: FIM approximation error, ||f - f_oracle||_2 / (number of parameters), on the "
             "MNIST and CIFAR10 columns, of the forget classes' and of the remaining classes' "
             "diagonal Fisher (both shown). Solid: Fisher from N real training samples per class "
             "of the model trained without codes (t_mix = 0), against that model's oracle (all its "
             "training data). Dotted: the code Fisher (one code per class) of the model trained "
             "with codes at the benchmark's t_mix, against that model's own oracle. Mean ± std "
             "over seeds."),
    Artefact("fig10", "Fig. 10", "figure", ("fim_error_vs_tmix",), "fig10",
             "Fig. 10: approximation error of the code Fisher (one code per class) to the oracle "
             "Fisher (all training data) of the same model, ||f - f_oracle||_2 / (number of "
             "parameters), for the forget and the remaining classes, against the t_mix the model "
             "was trained with (Table 5's models), one panel per data set, mean ± std over seeds."),
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
    return [*ARTEFACTS[:1], *sweeps, *ARTEFACTS[1:], *_gradient_table(config, labels),
            *_beyond_tables(config), *appendix_artefacts(config)]


FACES_SKIPPED = ("this configuration names no face data set (appendix.faces_benchmark: null): "
                 "LFW is downloaded from the web, and no face data set ships offline; a generated "
                 "stand-in would say nothing about faces. The paper configuration builds it.")


def appendix_artefacts(config: Mapping) -> list[Artefact]:
    """App. C's figures and tables, if the configuration has an ``appendix`` entry."""
    appendix = config.get("appendix")
    if not appendix:
        return []
    labels = {b["id"]: b.get("label", b["id"])
              for b in [*config["benchmarks"], *(config.get("appendix_benchmarks") or [])]}
    label = labels.get(appendix["benchmark"], appendix["benchmark"])
    faces = appendix["faces_benchmark"]
    clip = labels.get(appendix["clip_benchmark"], appendix["clip_benchmark"])
    return [
        Artefact("fig11", "Fig. 11", "figure", ("membership_losses", "membership"), "fig11",
                 f"Fig. 11: losses of the forget class's training and test samples on {label}, "
                 f"before (a) and after (b) forgetting, and (c) retrained without the class."),
        Artefact("fig11_auc", "App. C.1 (beside Fig. 11)", "table", ("membership",), "fig11_auc",
                 f"Membership inference on {label}: AUC of the loss-threshold attack (the "
                 f"paper's) and of a logistic regression on loss, confidence and entropy, for "
                 f"the trained, forgotten and retrained models.", paper_results=True),
        Artefact("fig12", "Fig. 12", "figure", ("unused_losses",), "fig12",
                 f"Fig. 12: training-sample losses on {label}: (a) a model trained without C_F "
                 f"that then forgot other classes, (b) a model trained without two classes."),
        Artefact("output_rate", "App. C.2", "table", ("output_rate",), "output_rate",
                 "App. C.2: the rate at which the forgotten and the retrained models output the "
                 "forget class on all test data (MNIST and CIFAR-10 columns).",
                 paper_results=True),
        Artefact("fig13", "Fig. 13", "figure", ("backdoor",), "fig13",
                 f"Fig. 13: test accuracy on {label} with test images blended with the class "
                 f"{appendix['backdoor_code_class']} code, x' = (1 - r) x + r code.",
                 paper_results=True),
        Artefact("fig14", "Fig. 14", "figure", (), "fig14",
                 f"Fig. 14: {label} test images blended with the class "
                 f"{appendix['backdoor_code_class']} code at each ratio.",
                 files=("backdoor_images",)),
        Artefact("table7", "Table 7", "table", ("faces",) if faces else (), "before_after",
                 f"Table 7: A_R and E_F before and after forgetting class 0 on "
                 f"{labels.get(faces, 'LFW')} (faces).", paper_results=bool(faces),
                 options={"title": "Table 7: forgetting a face identity (A_R, E_F, %)",
                          "paper_key": "table7", "skipped": None if faces else FACES_SKIPPED}),
        Artefact("table9", "Table 9", "table", ("clip_style",), "before_after",
                 f"Table 9: A_R and E_F before and after forgetting class 0 on {clip}, a model "
                 f"trained with a CLIP-style loss.", paper_results=True,
                 options={"title": "Table 9: forgetting with a CLIP-style loss (A_R, E_F, %)",
                          "paper_key": "table9",
                          "note": "Class embeddings: the class names encoded by the benchmark's "
                                  "text_encoder (config), cached by rule text_embeddings."}),
    ]


def _beyond_tables(config: Mapping) -> list[Artefact]:
    """Table 4 (when the imagenet section is on), the forget-time scaling figure and the
    multi-class table (when configured)."""
    imagenet = config.get("imagenet") or {}
    found = []
    if imagenet.get("enabled"):
        stand_in = imagenet.get("dataset") != "imagenet"
        found.append(Artefact(
            "table4", "Table 4", "table", ("table4",), "table4",
            ("STAND-IN for the ImageNet run: " if stand_in else "") +
            f"Table 4: A_R and E_F (%) on the test split of {imagenet.get('dataset')} and time "
            "(s) of the pretrained, fine-tuned (with codes) and forgotten (C_F) model per "
            "architecture, the paper's values beside ours.", paper_results=True,
            options={"imagenet": dict(imagenet), "stand_in": stand_in}))
    scaling = config.get("forget_time_scaling")
    if scaling and imagenet.get("architectures"):
        found.append(Artefact(
            "forget_time_scaling", "beyond the paper (Sec. 4.4)", "figure_csv",
            ("forget_time_scaling",), "forget_time_scaling",
            "Forget time at scale: wall time of the whole Alg. 2 (code Fisher, perturbation, "
            "sign choice) against the number of classes C for randomly initialised models with "
            f"synthetic C-way heads at {scaling['input_size']}x{scaling['input_size']}, C = "
            f"{', '.join(map(str, scaling['classes']))}, with the fitted slope and peak memory, "
            "on the device the job ran on.", options={"scaling": dict(scaling)}))
    if config.get("multiclass_forget"):
        found.append(Artefact(
            "multiclass", "beyond the paper (its stated limitation)", "table",
            ("forget_multiclass",), "multiclass",
            "Several classes at once: A_R and E_F after forgetting classes 0..k-1 together "
            f"(k = {', '.join(map(str, config['multiclass_forget']))}) per data set, with each "
            "benchmark's lambdas (chosen for C_F), mean ± std over seeds."))
    return found


def _gradient_table(config: Mapping, labels: Mapping) -> list[Artefact]:
    """Table 6, whose columns (layer groups) the config names."""
    groups = config.get("gradient_layer_groups")
    if not groups:
        return []
    bench = config["gradient_benchmark"]
    return [Artefact(
        "table6", "Table 6", "table", ("layer_gradients",), "table6",
        f"Table 6: magnitude of the loss gradient at the trained weights (mean absolute value per "
        f"parameter) in each layer group, for the whole training loss, the forget classes' and "
        f"the remaining classes' loss, on {labels.get(bench, bench)} (models trained with codes "
        f"at the benchmark's t_mix), mean ± std over seeds, the paper's values beside ours.",
        paper_results=True, options={"groups": [dict(g) for g in groups]})]


def draw(artefact: Artefact, inputs: Mapping, outputs: Mapping, benchmarks: Sequence[dict]) -> None:
    """Draw ``artefact`` from its ``inputs`` (``summary`` or ``summaries``, ``paper``,
    ``lambdas``) into its ``outputs`` (one path per format)."""
    module = importlib.import_module(f"{__name__}.{artefact.module}")
    module.draw(inputs, outputs, benchmarks, **dict(artefact.options))


def by_id(config: Mapping) -> dict[str, Artefact]:
    return {a.id: a for a in catalogue(config)}


def module_path(artefact: Artefact) -> Path:
    return Path(__file__).with_name(f"{artefact.module}.py")
