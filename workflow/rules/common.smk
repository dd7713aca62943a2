# Turns the config into wildcard combinations and target lists; checks the config first.
import json

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


def check_lambda_settings():
    """lambda must be 'select' or two positive numbers; said plainly (a schema's oneOf is not)."""
    for i, bench in enumerate(config.get("benchmarks") or []):
        setting = bench.get("lambda") if isinstance(bench, dict) else None
        if setting == "select" or setting is None:
            continue
        if not (
            isinstance(setting, list)
            and len(setting) == 2
            and all(isinstance(v, (int, float)) and v > 0 for v in setting)
        ):
            raise WorkflowError(
                f"config error: benchmarks[{i}] ('{bench.get('id')}'): lambda {setting!r} must "
                f"be 'select' or two positive numbers [lambda1, lambda2]"
            )


check_lambda_settings()
validate(config, schema="../schemas/config.schema.yaml")

RESULTS = config["outputs"]["results"]
FIGURES = config["outputs"]["figures"]
BENCHMARKS = {b["id"]: b for b in config["benchmarks"]}
CODES = config["code_distribution"]
SEEDS = config["seeds"]
LOGS = f"{RESULTS}/logs"
MODEL_DIR = f"{RESULTS}/{{bench}}/tmix{{tmix}}_{{codes}}/seed{{seed}}"
SWEEP_FIGURES = {f["figure"]: f["benchmark"] for f in config["lambda_sweep_figures"]}
TABLES = ["table2", "table3", "table5", "table8", "ablation_codes"]


def check_config():
    """What the JSON schema cannot say: cross-references and class ranges, named by entry."""
    problems = []
    ids = [b["id"] for b in config["benchmarks"]]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(
            f"benchmarks: id '{dup}' is used twice; give each entry its own id"
        )
    for b in config["benchmarks"]:
        top = b["num_classes"] - 1
        for key in ("forget_classes", "other_forget_classes"):
            for c in config[key]:
                if c > top:
                    problems.append(
                        f"{key}: class {c} is out of range for benchmark '{b['id']}' "
                        f"(classes 0..{top}); remove it or fix that entry's num_classes"
                    )
        if len(config["forget_classes"]) >= b["num_classes"]:
            problems.append(f"forget_classes: would forget every class of '{b['id']}'")
    figures = [f["figure"] for f in config["lambda_sweep_figures"]]
    for f in config["lambda_sweep_figures"]:
        if f["benchmark"] not in BENCHMARKS:
            problems.append(
                f"lambda_sweep_figures: {f['figure']} names benchmark '{f['benchmark']}', "
                f"which is not among benchmarks ({', '.join(ids)})"
            )
        if figures.count(f["figure"]) > 1:
            problems.append(f"lambda_sweep_figures: {f['figure']} is listed twice")
    if problems:
        raise WorkflowError("config error: " + "; ".join(sorted(set(problems))))


check_config()


wildcard_constraints:
    bench="|".join(BENCHMARKS),
    tmix=r"[0-9.]+",
    codes="uniform|normal",
    seed=r"\d+",
    classes=r"\d+(\+\d+)*",
    source=r"codes|data|data\d+",


def tmix_tag(t_mix):
    """0.1 -> '0.1', 0 -> '0': one spelling per value in paths."""
    return f"{float(t_mix):g}"


def classes_tag(classes):
    return "+".join(str(c) for c in sorted(classes))


MAIN_FORGET = classes_tag(config["forget_classes"])


def model_dir(bench, t_mix, codes, seed):
    return MODEL_DIR.format(bench=bench, tmix=tmix_tag(t_mix), codes=codes, seed=seed)


def resource(kind, key):
    return config["resources"][kind][key]


# --- what each summary is made of: (file, the wildcard values that describe it) -----------


def _main_tmix(bench):
    return BENCHMARKS[bench]["t_mix"]


def _runs(t_mix_of, codes_list, files):
    """(file, meta) for every benchmark, t_mix, code distribution, seed and file name."""
    rows = []
    for bench in BENCHMARKS:
        for t_mix in t_mix_of(bench):
            for codes in codes_list:
                for seed in SEEDS:
                    for name, extra in files:
                        meta = {
                            "benchmark": bench,
                            "t_mix": float(t_mix),
                            "codes": codes,
                        }
                        meta.update(seed=seed, **extra)
                        rows.append(
                            (f"{model_dir(bench, t_mix, codes, seed)}/{name}", meta)
                        )
    return rows


def _forget(classes_list):
    return [
        (f"forget{classes_tag(cs)}/metrics.json", {"forget": classes_tag(cs)})
        for cs in classes_list
    ]


MAIN = [config["forget_classes"]]
SUMMARIES = {
    # Fig. 2: test accuracy of the models trained at each t_mix
    "accuracy_vs_tmix": _runs(
        lambda b: config["t_mix_accuracy"], [CODES], [("train.json", {})]
    ),
    # Tables 2 and 3: before and after forgetting C_F at each benchmark's t_mix
    "forget_main": _runs(lambda b: [_main_tmix(b)], [CODES], _forget(MAIN)),
    # Table 5: forgetting C_F at each t_mix
    "forget_vs_tmix": _runs(
        lambda b: config["t_mix_forgetting"], [CODES], _forget(MAIN)
    ),
    # Table 8: forgetting other classes one at a time
    "forget_other_classes": _runs(
        lambda b: [_main_tmix(b)],
        [CODES],
        _forget([[c] for c in config["other_forget_classes"]]),
    ),
    # Ablation: codes drawn uniform (the authors' code) or normal (the paper's text)
    "forget_code_distributions": _runs(
        lambda b: [_main_tmix(b)], config["code_distributions_ablation"], _forget(MAIN)
    ),
}
for _bench in BENCHMARKS:
    # Figs. 6-9: the lambda grid of each benchmark's main models (seeds), plus the lambda used
    SUMMARIES[f"lambda_grid_{_bench}"] = [
        (f, m)
        for f, m in _runs(
            lambda b: [_main_tmix(b)], [CODES], [(f"grid_forget{MAIN_FORGET}.csv", {})]
        )
        if m["benchmark"] == _bench
    ] + [(f"{RESULTS}/{_bench}/lambda.json", {"benchmark": _bench, "file": "lambda"})]


def summary_files(wildcards):
    return [f for f, _ in SUMMARIES[wildcards.summary]]


def summary_meta(wildcards):
    return [m for _, m in SUMMARIES[wildcards.summary]]


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


# --- targets -------------------------------------------------------------------------------

TABLE_SUMMARY = {
    "table2": "forget_main",
    "table3": "forget_main",
    "table5": "forget_vs_tmix",
    "table8": "forget_other_classes",
    "ablation_codes": "forget_code_distributions",
}


def paper_targets():
    figures = ["fig2"] + list(SWEEP_FIGURES)
    targets = [f"{FIGURES}/{f}.{ext}" for f in figures for ext in ("pdf", "png")]
    targets += [f"{FIGURES}/{t}.{ext}" for t in TABLES for ext in ("csv", "md")]
    return targets
