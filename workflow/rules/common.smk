# Turns the config into wildcard combinations and target lists; checks the config first.
from mnemu.artefacts import catalogue
from mnemu.codes import DISTRIBUTIONS
from mnemu.config import check_config
from mnemu.errors import MnemuError
from mnemu.pipeline import classes_tag
from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

try:
    check_config(config, workflow.source_path("../schemas/config.schema.yaml"))
except MnemuError as err:
    raise WorkflowError(str(err)) from None

RESULTS = config["outputs"]["results"]
FIGURES = config["outputs"]["figures"]
BENCHMARKS = {b["id"]: b for b in config["benchmarks"]}
CODES = config["code_distribution"]
SEEDS = config["seeds"]
LOGS = f"{RESULTS}/logs"
MODEL_DIR = f"{RESULTS}/{{bench}}/tmix{{tmix}}_{{codes}}/seed{{seed}}"
ARTEFACTS = {a.id: a for a in catalogue(config)}


wildcard_constraints:
    bench="|".join(BENCHMARKS),
    tmix=r"[0-9.]+",
    codes="|".join(DISTRIBUTIONS),
    seed=r"\d+",
    classes=r"\d+(\+\d+)*",
    source=r"codes|data|data\d+",


def tmix_tag(t_mix):
    """0.1 -> '0.1', 0 -> '0': one spelling per value in paths."""
    return f"{float(t_mix):g}"


MAIN_FORGET = classes_tag(config["forget_classes"])


def model_dir(bench, t_mix, codes, seed):
    return MODEL_DIR.format(bench=bench, tmix=tmix_tag(t_mix), codes=codes, seed=seed)


def resource(kind, key):
    return config["resources"][kind][key]


def run_of(wildcards):
    """The identity of a model, written by every step into its own records."""
    return {
        "benchmark": wildcards.bench,
        "t_mix": float(wildcards.tmix),
        "codes": wildcards.codes,
        "seed": int(wildcards.seed),
    }


# --- which run files each summary gathers (the files carry their own identity) -----------


def _runs(t_mix_of, codes_list, names, benches=None):
    return [
        f"{model_dir(bench, t_mix, codes, seed)}/{name}"
        for bench in benches or BENCHMARKS
        for t_mix in t_mix_of(bench)
        for codes in codes_list
        for seed in SEEDS
        for name in names
    ]


def _main_tmix(bench):
    return [BENCHMARKS[bench]["t_mix"]]


def _forget(classes_list, variant=""):
    """variant "": the benchmark's lambda setting; "_auto": lambda chosen per request."""
    return [f"forget{classes_tag(cs)}{variant}/metrics.json" for cs in classes_list]


SUMMARIES = {
    # Fig. 2: test accuracy of the models trained at each t_mix
    "accuracy_vs_tmix": _runs(
        lambda b: config["t_mix_accuracy"], [CODES], ["train.json"]
    ),
    # Tables 2 and 3: before and after forgetting C_F at each benchmark's t_mix
    "forget_main": _runs(_main_tmix, [CODES], _forget([config["forget_classes"]])),
    # Table 5: forgetting C_F at each t_mix
    "forget_vs_tmix": _runs(
        lambda b: config["t_mix_forgetting"],
        [CODES],
        _forget([config["forget_classes"]]),
    ),
    # Table 8: forgetting other classes one at a time
    "forget_other_classes": _runs(
        _main_tmix, [CODES], _forget([[c] for c in config["other_forget_classes"]])
    ),
    # the same three with lambda chosen per forget request from the codes (lambda: auto)
    "forget_main_auto": _runs(
        _main_tmix, [CODES], _forget([config["forget_classes"]], "_auto")
    ),
    "forget_vs_tmix_auto": _runs(
        lambda b: config["t_mix_forgetting"],
        [CODES],
        _forget([config["forget_classes"]], "_auto"),
    ),
    "forget_other_classes_auto": _runs(
        _main_tmix,
        [CODES],
        _forget([[c] for c in config["other_forget_classes"]], "_auto"),
    ),
    # Ablation: codes drawn uniform (the authors' code) or normal (the paper's text)
    "forget_code_distributions": _runs(
        _main_tmix,
        config["code_distributions_ablation"],
        _forget([config["forget_classes"]]),
    ),
}
for _bench in BENCHMARKS:
    # Figs. 6-9: the lambda grid of each benchmark's main models (seeds)
    SUMMARIES[f"lambda_grid_{_bench}"] = _runs(
        _main_tmix, [CODES], [f"grid_forget{MAIN_FORGET}.csv"], benches=[_bench]
    )


def summary_files(wildcards):
    return SUMMARIES[wildcards.summary]


def train_params(wildcards):
    """Only what shapes the model: changing lambda or the figures never retrains."""
    bench = BENCHMARKS[wildcards.bench]
    keys = ("dataset", "data_options", "model", "model_options", "pretrained", "train")
    return {key: bench.get(key) for key in keys}


def lambda_grids(wildcards):
    """The grids lambda is chosen from, if the benchmark asks for selection."""
    bench = BENCHMARKS[wildcards.bench]
    if bench["lambda"] != "select":
        return []
    return [
        f"{model_dir(wildcards.bench, bench['t_mix'], CODES, s)}/grid_forget{MAIN_FORGET}.csv"
        for s in SEEDS
    ]


# --- the paper's artefacts, from the catalogue (mnemu.artefacts) ----------------------------


def artefact_inputs(wildcards):
    """What an artefact is drawn from: its summaries, the paper's numbers, the lambdas it marks,
    and its own drawing module (so that restyling it reruns it alone)."""
    artefact = ARTEFACTS[wildcards.artefact]
    inputs = {
        "summaries": [f"{RESULTS}/summaries/{s}.csv" for s in artefact.summaries],
        "code": artefact.code,
    }
    if artefact.paper_results:
        inputs["paper"] = "config/paper_results.yaml"
    if artefact.lambdas_of:
        inputs["lambdas"] = f"{RESULTS}/{artefact.lambdas_of}/lambda.json"
    return inputs


def artefacts_of(kind):
    return [a.id for a in ARTEFACTS.values() if a.kind == kind] or ["^$"]


def paper_targets():
    return [f"{FIGURES}/{a.id}.{ext}" for a in ARTEFACTS.values() for ext in a.formats]
