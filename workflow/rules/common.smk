# Turns the config into wildcard combinations and target lists; checks the config first.
from mnemu.artefacts import catalogue
from mnemu.codes import DISTRIBUTIONS
from mnemu.config import check_config, check_imagenet_inputs, imagenet_input_problems
from mnemu.errors import MnemuError
from mnemu.jobs import classes_tag
from mnemu.pipeline import train_settings
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
# Every model's benchmark entry: the tables' benchmarks and the appendix's own (Tables 7, 9).
MODELS = {**BENCHMARKS, **{b["id"]: b for b in config.get("appendix_benchmarks") or []}}
CODES = config["code_distribution"]
SEEDS = config["seeds"]
LOGS = f"{RESULTS}/logs"
MODEL_DIR = f"{RESULTS}/{{bench}}/tmix{{tmix}}_{{codes}}/seed{{seed}}"
ARTEFACTS = {a.id: a for a in catalogue(config)}


wildcard_constraints:
    bench="|".join(MODELS),
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
    return [MODELS[bench]["t_mix"]]


def critical_first(wildcards):
    """Scheduling priority: the model that forgets (the benchmark's own t_mix and codes) and its
    lambda grid go first. Most tables wait on them; the greedy scheduler otherwise starts them
    last (make cpu, seed 0: that CNN's training began 50 minutes in, its grid 19 minutes after
    the model was ready, and one core idled at the end). A priority function needs Snakemake
    9.27 or later."""
    return 10 if run_of(wildcards) == main_run_of(wildcards) else 0


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

# Figs. 4 and 5 (Sec. 4.3): models trained without codes, Fisher from N real samples per class
# ("dataN") or all of them (the oracle, "data"); the code Fisher of the models trained with codes.
W_DATA_SOURCES = [f"data{n}" for n in config["w_data_samples_per_class"]]
SUMMARIES["forget_w_data"] = _runs(
    lambda b: [0],
    [CODES],
    [f"w_data/{s}_forget{MAIN_FORGET}.json" for s in [*W_DATA_SOURCES, "data"]],
    benches=config["w_data_benchmarks"],
)
SUMMARIES["fim_error_w_data"] = _runs(
    lambda b: [0],
    [CODES],
    [f"fim_error/{s}_forget{MAIN_FORGET}.json" for s in W_DATA_SOURCES],
    benches=config["w_data_benchmarks"],
) + _runs(
    _main_tmix,
    [CODES],
    [f"fim_error/codes_forget{MAIN_FORGET}.json"],
    benches=config["w_data_benchmarks"],
)
# Fig. 10 (App. A): the code Fisher's error at each t_mix of Table 5
SUMMARIES["fim_error_vs_tmix"] = _runs(
    lambda b: config["t_mix_forgetting"],
    [CODES],
    [f"fim_error/codes_forget{MAIN_FORGET}.json"],
    benches=config["fim_error_benchmarks"],
)
# Table 6 (App. B): loss gradients at the trained weights of one benchmark's main models
SUMMARIES["layer_gradients"] = _runs(
    _main_tmix,
    [CODES],
    [f"gradients_forget{MAIN_FORGET}.json"],
    benches=[config["gradient_benchmark"]],
)


# --- the baselines (Tables 2, 3, Fig. 3): on each benchmark's main models ---------------------

BASELINE_METHODS = config["baseline_methods"]
#: Methods run on a model by rule baseline; retraining has its own rule and folder.
FORGET_BASELINES = [m for m in BASELINE_METHODS if m != "retrain"]
RETRAIN_DIR = f"{RESULTS}/{{bench}}/retrain_forget{{classes}}/seed{{seed}}"


def main_run_of(wildcards):
    """The identity of a benchmark's main model (its t_mix, the codes) of this seed."""
    bench = MODELS[wildcards.bench]
    return {
        "benchmark": wildcards.bench,
        "t_mix": float(bench["t_mix"]),
        "codes": CODES,
        "seed": int(wildcards.seed),
    }


def main_model_dir(wildcards):
    run = main_run_of(wildcards)
    return model_dir(run["benchmark"], run["t_mix"], CODES, run["seed"])


SUMMARIES["baselines_main"] = _runs(
    _main_tmix,
    [CODES],
    [f"baselines/{m}_forget{MAIN_FORGET}.json" for m in FORGET_BASELINES],
) + [
    f"{RETRAIN_DIR}/metrics.json".format(bench=bench, classes=MAIN_FORGET, seed=seed)
    for bench in BENCHMARKS
    for seed in SEEDS
    if "retrain" in BASELINE_METHODS
]


# --- App. C: privacy and robustness (Figs. 11-14, Tables 7, 9, App. C.2) -----------------------

APPENDIX = config.get("appendix")
#: Other files artefacts are drawn from, by name (an artefact's ``files``), as SUMMARIES.
FILES = {}


def retrain_dir(bench, classes, seed):
    """A model trained without ``classes`` (rule retrain, the baselines' gold standard)."""
    return RETRAIN_DIR.format(bench=bench, classes=classes_tag(classes), seed=seed)


def retrained_run_of(wildcards, without):
    """The identity of a model retrained without the classes ``without`` (a tag, e.g. "0+1")."""
    bench = MODELS[wildcards.bench]
    return {
        "benchmark": wildcards.bench,
        "t_mix": float(bench["t_mix"]),
        "codes": CODES,
        "seed": int(wildcards.seed),
        "trained_without": without,
    }


def _classes(tag):
    return [int(c) for c in tag.split("+")]


if APPENDIX:
    _bench = APPENDIX["benchmark"]
    _unused = APPENDIX["unused_then_forget"]
    # Fig. 11: membership inference on C_F, trained / forgotten / retrained, every seed
    SUMMARIES["membership"] = _runs(
        _main_tmix, [CODES], [f"appendix/membership_forget{MAIN_FORGET}.csv"], [_bench]
    )
    SUMMARIES["membership_losses"] = _runs(
        _main_tmix, [CODES], [f"appendix/losses_forget{MAIN_FORGET}.csv"], [_bench]
    )
    # Fig. 12 (first seed): (a) trained without C_F then forgetting more; (b) without two classes
    SUMMARIES["unused_losses"] = [
        f"{retrain_dir(_bench, config['forget_classes'], SEEDS[0])}/"
        f"forget{classes_tag(_unused)}/class_losses.csv",
        f"{retrain_dir(_bench, APPENDIX['unused_classes'], SEEDS[0])}/class_losses.csv",
    ]
    # App. C.2: how often the forgotten and the retrained models output C_F
    SUMMARIES["output_rate"] = _runs(
        _main_tmix,
        [CODES],
        [f"appendix/output_rate_forget{MAIN_FORGET}.csv"],
        APPENDIX["output_rate_benchmarks"],
    )
    # Figs. 13, 14: test images blended with a code
    SUMMARIES["backdoor"] = _runs(
        _main_tmix, [CODES], ["appendix/backdoor.csv"], [_bench]
    )
    FILES["backdoor_images"] = _runs(
        _main_tmix, [CODES], ["appendix/backdoor_images.pt"], [_bench]
    )[:1]
    # Tables 7 and 9: before and after forgetting C_F on the appendix's own models
    for _name, _key in (("faces", "faces_benchmark"), ("clip_style", "clip_benchmark")):
        if APPENDIX[_key]:
            SUMMARIES[_name] = _runs(
                _main_tmix,
                [CODES],
                _forget([config["forget_classes"]]),
                [APPENDIX[_key]],
            )


def summary_files(wildcards):
    return SUMMARIES[wildcards.summary]


def train_params(wildcards):
    """Only what shapes the model: changing lambda or the figures never retrains."""
    bench = MODELS[wildcards.bench]
    keys = ("dataset", "data_options", "model", "model_options", "pretrained", "train")
    params = {key: bench.get(key) for key in keys}
    if bench.get(
        "text_encoder"
    ):  # a CLIP-style model: its class names' cached embeddings
        params["model_options"] = {
            **(bench.get("model_options") or {}),
            "class_embeddings": class_embeddings_of(wildcards),
        }
    return params


def class_embeddings_of(wildcards):
    """The cached text embeddings a CLIP-style model is anchored to (none for other models)."""
    if not MODELS[wildcards.bench].get("text_encoder"):
        return []
    return f"{RESULTS}/{wildcards.bench}/class_embeddings.pt"


def lambda_grids(wildcards):
    """The grids lambda is chosen from, if the benchmark asks for selection."""
    bench = MODELS[wildcards.bench]
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
    if artefact.files:
        inputs["files"] = [path for name in artefact.files for path in FILES[name]]
    if artefact.lambdas_of:
        inputs["lambdas"] = f"{RESULTS}/{artefact.lambdas_of}/lambda.json"
    return inputs


def artefacts_of(kind):
    return [a.id for a in ARTEFACTS.values() if a.kind == kind] or ["^$"]


def artefact_files():
    return [f"{FIGURES}/{a.id}.{ext}" for a in ARTEFACTS.values() for ext in a.formats]


# --- Table 4 (ImageNet), forget time at scale, several classes at once -----------------------

IMAGENET = config.get("imagenet") or {"enabled": False}
ARCHS = {a["id"]: a for a in IMAGENET.get("architectures", [])}
IMAGENET_DIR = f"{RESULTS}/imagenet"
ARCH_DIR = f"{IMAGENET_DIR}/{{arch}}/seed{{seed}}"
IMAGENET_FORGET = classes_tag(IMAGENET.get("forget_classes", [0]))
SCALING = config.get("forget_time_scaling")
MULTICLASS = [list(range(k)) for k in config.get("multiclass_forget", [])]


wildcard_constraints:
    arch="|".join(ARCHS) or "^$",
    stage=r"pretrained|finetuned|forget\d+(\+\d+)*",


def imagenet_run(wildcards):
    """The identity of a Table 4 model, written into its records."""
    return {
        "architecture": wildcards.arch,
        "seed": int(wildcards.seed),
        "t_mix": float(IMAGENET["t_mix"]),
        "codes": CODES,
    }


def imagenet_inputs_checked(wildcards):
    """The data folder and the pretrained weights, checked when the DAG first needs them: a real
    run stops here, before any job is submitted, saying what to put where; a dry run warns only
    (so `snakemake -n` works where ImageNet is absent). Adds no input file."""
    problems = imagenet_input_problems(config)
    if problems and workflow.dryrun:
        print(f"WARNING (dry run): {'; '.join(problems)}", file=sys.stderr)
    elif problems:
        try:
            check_imagenet_inputs(config)
        except MnemuError as err:
            raise WorkflowError(str(err)) from None
    return []


def imagenet_model(wildcards):
    """The model an evaluation job reads: pretrained weights, the fine-tuned or the forgotten."""
    base = ARCH_DIR.format(arch=wildcards.arch, seed=wildcards.seed)
    if wildcards.stage == "pretrained":
        return {
            "model": f"{IMAGENET_DIR}/{wildcards.arch}/weights.pt",
            "data": f"{IMAGENET_DIR}/data.json",
        }
    if wildcards.stage == "finetuned":
        return {"model": f"{base}/finetuned/model.pt"}
    return {"model": f"{base}/{wildcards.stage}/model.pt"}


def _imagenet_evals():
    stages = ["pretrained", "finetuned", f"forget{IMAGENET_FORGET}"]
    return [
        f"{ARCH_DIR.format(arch=arch, seed=seed)}/eval/{stage}.json"
        for arch in ARCHS
        for seed in IMAGENET.get("seeds", [])
        for stage in stages
    ]


if IMAGENET["enabled"]:
    # Table 4: each architecture's pretrained, fine-tuned and forgotten model evaluated
    SUMMARIES["table4"] = _imagenet_evals()
if SCALING and ARCHS:
    # forget_time_scaling: whole Alg. 2 against the number of classes, per architecture
    SUMMARIES["forget_time_scaling"] = [
        f"{RESULTS}/forget_time_scaling/{arch}.csv" for arch in ARCHS
    ]
if MULTICLASS:
    # multiclass: forgetting k classes together with each benchmark's main models
    SUMMARIES["forget_multiclass"] = _runs(_main_tmix, [CODES], _forget(MULTICLASS))


def artefact_summaries():
    names = dict.fromkeys(s for a in ARTEFACTS.values() for s in a.summaries)
    return [f"{RESULTS}/summaries/{name}.csv" for name in names]


def paper_targets():
    """Every artefact, and the report that judges them."""
    return artefact_files() + [f"{FIGURES}/report.html"]
