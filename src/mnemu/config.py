"""The workflow configuration's one check: its JSON schema, then what a schema cannot say.

``workflow/rules/common.smk`` calls :func:`check_config` before any job is scheduled, so a bad
entry stops the run at once with every problem named by its place in the config. Allowed values
(data sets, models, code distributions, Fisher methods) come from the library itself, never from
copies, so a data set or model registered by a plugin is accepted too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml

from .errors import MnemuError

LAMBDA_RULES = ("select", "auto")


def check_config(config: Mapping, schema: str | Path) -> None:
    """Raise one :class:`MnemuError` listing every problem of ``config`` (a dict as Snakemake
    reads it), or return if there is none. ``schema`` is the JSON schema file (YAML)."""
    problems = _schema_problems(config, schema)
    if not problems:  # cross-checks assume the schema's shape
        problems = _cross_problems(config)
    if problems:
        raise MnemuError("config error: " + "; ".join(dict.fromkeys(problems)) +
                         " (see config/README.md for every key)")


def imagenet_enabled(config: Mapping) -> bool:
    """Whether the configuration builds Table 4 (the ``imagenet`` section, if on)."""
    return bool((config.get("imagenet") or {}).get("enabled", False))


def imagenet_input_problems(config: Mapping) -> list[str]:
    """What Table 4's run lacks before it starts: the ImageNet folder's layout and every
    architecture's pretrained weights, inspected from paths alone (no image or weight is read).
    Empty when the ``imagenet`` section is off or everything is in place."""
    from .data import missing_files
    from .models import missing_weights

    if not imagenet_enabled(config):
        return []
    section = config["imagenet"]
    problems = []
    missing = missing_files(section["dataset"], config["data_dir"],
                            **(section.get("data_options") or {}))
    if missing:
        problems.append(f"imagenet.data_options: {missing}")
    for arch in section["architectures"]:
        missing = missing_weights(arch["model"], arch.get("pretrained", False), arch.get("weights"))
        if missing:
            problems.append(f"imagenet.architectures ('{arch['id']}'): {missing}")
    return problems


def check_imagenet_inputs(config: Mapping) -> None:
    """Raise one :class:`MnemuError` naming everything :func:`imagenet_input_problems` finds."""
    problems = imagenet_input_problems(config)
    if problems:
        raise MnemuError("Table 4 cannot run: " + "; ".join(problems) +
                         " (or set imagenet: {enabled: false} to leave Table 4 out)")


def _where(path) -> str:
    where = ""
    for part in path:
        where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else str(part))
    return where or "(top level)"


def _schema_problems(config: Mapping, schema: str | Path) -> list[str]:
    import jsonschema

    with open(schema) as handle:
        spec = yaml.safe_load(handle)
    validator = jsonschema.Draft202012Validator(spec)
    return [f"{_where(e.absolute_path)}: {e.message}"
            for e in sorted(validator.iter_errors(dict(config)), key=lambda e: list(map(str, e.path)))]


def _lambda_problem(i: int, bench: Mapping, key: str = "benchmarks") -> str | None:
    setting = bench["lambda"]
    if setting in LAMBDA_RULES:
        return None
    if (isinstance(setting, list) and len(setting) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                    for v in setting)):
        return None
    return (f"{key}[{i}] ('{bench['id']}'): lambda {setting!r} must be "
            f"{' or '.join(repr(r) for r in LAMBDA_RULES)} or two positive numbers "
            f"[lambda1, lambda2]")


def _cross_problems(config: Mapping) -> list[str]:
    from .codes import DISTRIBUTIONS
    from .data import dataset_names, dataset_num_classes
    from .fisher import METHODS
    from .forgetting import ETA_EPS_RULES
    from .models import model_names

    problems = []
    ids = [b["id"] for b in config["benchmarks"]]
    all_ids = ids + [b["id"] for b in config.get("appendix_benchmarks") or []]
    for dup in sorted({i for i in all_ids if all_ids.count(i) > 1}):
        problems.append(f"benchmarks: id '{dup}' is used twice; give each entry its own id")
    for key, value in (("code_distribution", [config["code_distribution"]]),
                       ("code_distributions_ablation", config["code_distributions_ablation"])):
        for v in value:
            if v not in DISTRIBUTIONS:
                problems.append(f"{key}: '{v}' is not a code distribution; use one of "
                                f"{', '.join(DISTRIBUTIONS)}")
    if config["eta_eps"] not in ETA_EPS_RULES:
        problems.append(f"eta_eps: '{config['eta_eps']}' is not one of {', '.join(ETA_EPS_RULES)}")
    if config["fisher_method"] not in METHODS:
        problems.append(f"fisher_method: '{config['fisher_method']}' is not one of "
                        f"{', '.join(METHODS)}")
    entries = [("benchmarks", i, b) for i, b in enumerate(config["benchmarks"])]
    entries += [("appendix_benchmarks", i, b)
                for i, b in enumerate(config.get("appendix_benchmarks") or [])]
    for section, i, b in entries:
        where = f"{section}[{i}] ('{b['id']}')"
        problem = _lambda_problem(i, b, section)
        if problem:
            problems.append(problem)
        if not (b["model"].startswith("timm:") or b["model"] in model_names()):
            problems.append(f"{where}: model '{b['model']}' is unknown; use one of "
                            f"{', '.join(model_names())} or timm:<name>")
        if b["dataset"] not in dataset_names():
            problems.append(f"{where}: dataset '{b['dataset']}' is unknown; use one of "
                            f"{', '.join(dataset_names())}")
        else:
            try:
                count = dataset_num_classes(b["dataset"], **(b.get("data_options") or {}))
            except MnemuError as err:
                problems.append(f"{where}: {err}")
                count = None
            if count is not None and count != b["num_classes"]:
                problems.append(f"{where}: num_classes is {b['num_classes']} but data set "
                                f"'{b['dataset']}' has {count} classes with these data_options; "
                                f"fix num_classes or data_options")
        top = b["num_classes"] - 1
        for key in ("forget_classes", "other_forget_classes"):
            for c in config[key]:
                if c > top:
                    problems.append(f"{key}: class {c} is out of range for benchmark '{b['id']}' "
                                    f"(classes 0..{top}); remove it or fix that entry's "
                                    f"num_classes")
        if len(config["forget_classes"]) >= b["num_classes"]:
            problems.append(f"forget_classes: would forget every class of '{b['id']}'")
    problems += _baseline_problems(config)
    problems += _appendix_problems(config, ids)
    for k in config.get("multiclass_forget", []):
        for b in config["benchmarks"]:
            if k >= b["num_classes"]:
                problems.append(f"multiclass_forget: {k} classes would leave nothing of benchmark "
                                f"'{b['id']}' ({b['num_classes']} classes); use fewer")
    if imagenet_enabled(config):
        problems += _imagenet_problems(config["imagenet"])
    for key in ("w_data_benchmarks", "fim_error_benchmarks"):
        for b in config[key]:
            if b not in ids:
                problems.append(f"{key}: '{b}' is not among benchmarks ({', '.join(ids)})")
    if config["gradient_benchmark"] not in ids:
        problems.append(f"gradient_benchmark: '{config['gradient_benchmark']}' is not among "
                        f"benchmarks ({', '.join(ids)})")
    names = [g["name"] for g in config["gradient_layer_groups"]]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"gradient_layer_groups: '{dup}' is named twice; give each group its own name")
    figures = [f["figure"] for f in config["lambda_sweep_figures"]]
    for f in config["lambda_sweep_figures"]:
        if f["benchmark"] not in ids:
            problems.append(f"lambda_sweep_figures: {f['figure']} names benchmark "
                            f"'{f['benchmark']}', which is not among benchmarks ({', '.join(ids)})")
        if figures.count(f["figure"]) > 1:
            problems.append(f"lambda_sweep_figures: {f['figure']} is listed twice")
    return problems


#: Baselines whose settings come from elsewhere in the config, not from ``baselines``.
BASELINES_WITHOUT_SETTINGS = {"retrain": "it trains with each benchmark's train settings"}


def _baseline_problems(config: Mapping) -> list[str]:
    """Every listed method exists, and each settings entry builds its method's ``Settings``."""
    from .baselines import BASELINES
    from .baselines.common import make_settings

    problems = []
    for name in config["baseline_methods"]:
        if name not in BASELINES:
            problems.append(f"baseline_methods: '{name}' is not a baseline; use some of "
                            f"{', '.join(BASELINES)}")
    for name, settings in config["baselines"].items():
        if name in BASELINES_WITHOUT_SETTINGS:
            problems.append(f"baselines.{name}: has no settings here "
                            f"({BASELINES_WITHOUT_SETTINGS[name]}); remove the entry")
            continue
        if "seed" in (settings or {}):
            problems.append(f"baselines.{name}.seed: the seed is each run's (seeds); remove it")
            continue
        try:
            make_settings(BASELINES[name].settings, settings)
        except (MnemuError, TypeError, ValueError) as err:
            problems.append(f"baselines.{name}: {err}")
    return problems


def _appendix_problems(config: Mapping, ids: list[str]) -> list[str]:
    """App. C's entries name benchmarks that exist; the CLIP-style model names its text encoder."""
    appendix = config.get("appendix")
    if not appendix:
        return []
    extra = {b["id"]: b for b in config.get("appendix_benchmarks") or []}
    problems = []
    for key in ("benchmark", "output_rate_benchmarks"):
        value = appendix[key]
        for bench in [value] if isinstance(value, str) else value:
            if bench not in ids:
                problems.append(f"appendix.{key}: '{bench}' is not among benchmarks "
                                f"({', '.join(ids)})")
    for key in ("faces_benchmark", "clip_benchmark"):
        bench = appendix[key]
        if bench is not None and bench not in extra:
            problems.append(f"appendix.{key}: '{bench}' is not among appendix_benchmarks "
                            f"({', '.join(extra) or 'none'}); add its entry there")
    clip = extra.get(appendix["clip_benchmark"])
    if clip is not None and (clip["model"] != "text_anchored" or not clip.get("text_encoder")):
        problems.append(f"appendix_benchmarks ('{clip['id']}'): Table 9's model must be "
                        f"model: text_anchored with a text_encoder")
    for b in extra.values():
        if b["model"] == "text_anchored" and not b.get("text_encoder"):
            problems.append(f"appendix_benchmarks ('{b['id']}'): model text_anchored needs a "
                            f"text_encoder (all-MiniLM-L6-v2 or open_clip:<arch>:<weights>)")
    return problems


def _imagenet_problems(section: Mapping) -> list[str]:
    """Cross-checks of the imagenet section that need no data (see :func:`check_imagenet_inputs`
    for the files)."""
    from .models import model_names

    problems = []
    lam = section["lambda"]
    if not (isinstance(lam, list) and len(lam) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in lam)):
        problems.append(f"imagenet.lambda {lam!r} must be two positive numbers [lambda1, lambda2]")
    for c in section["forget_classes"]:
        if c >= section["num_classes"]:
            problems.append(f"imagenet.forget_classes: class {c} is out of range (classes "
                            f"0..{section['num_classes'] - 1})")
    ids = [a["id"] for a in section["architectures"]]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
        problems.append(f"imagenet.architectures: id '{dup}' is used twice; give each its own id")
    for a in section["architectures"]:
        if not (a["model"].startswith("timm:") or a["model"] in model_names()):
            problems.append(f"imagenet.architectures ('{a['id']}'): model '{a['model']}' is "
                            f"unknown; use one of {', '.join(model_names())} or timm:<name>")
    return problems
