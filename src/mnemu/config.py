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


def _lambda_problem(i: int, bench: Mapping) -> str | None:
    setting = bench["lambda"]
    if setting in LAMBDA_RULES:
        return None
    if (isinstance(setting, list) and len(setting) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
                    for v in setting)):
        return None
    return (f"benchmarks[{i}] ('{bench['id']}'): lambda {setting!r} must be "
            f"{' or '.join(repr(r) for r in LAMBDA_RULES)} or two positive numbers "
            f"[lambda1, lambda2]")


def _cross_problems(config: Mapping) -> list[str]:
    from .codes import DISTRIBUTIONS
    from .data import dataset_names, dataset_num_classes
    from .fisher import METHODS
    from .forget import ETA_EPS_RULES
    from .models import model_names

    problems = []
    ids = [b["id"] for b in config["benchmarks"]]
    for dup in sorted({i for i in ids if ids.count(i) > 1}):
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
    for i, b in enumerate(config["benchmarks"]):
        where = f"benchmarks[{i}] ('{b['id']}')"
        problem = _lambda_problem(i, b)
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
    figures = [f["figure"] for f in config["lambda_sweep_figures"]]
    for f in config["lambda_sweep_figures"]:
        if f["benchmark"] not in ids:
            problems.append(f"lambda_sweep_figures: {f['figure']} names benchmark "
                            f"'{f['benchmark']}', which is not among benchmarks ({', '.join(ids)})")
        if figures.count(f["figure"]) > 1:
            problems.append(f"lambda_sweep_figures: {f['figure']} is listed twice")
    return problems
