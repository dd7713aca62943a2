"""The workflow configuration's one check (mnemu.config.check_config), called directly: every
key of the schema documented, the shipped configurations valid, and each bad entry named."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from mnemu import MnemuError
from mnemu.config import check_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def load(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "small.yaml", "cpu.yaml"])
def test_shipped_configurations_are_valid(name):
    check_config(load(name), SCHEMA)


@pytest.mark.parametrize("name", ["small.yaml", "cpu.yaml"])
def test_shipped_configurations_are_valid_as_snakemake_merges_them(name):
    """``--configfile config/X.yaml`` is merged over config/config.yaml: what a key leaves out comes
    from the paper configuration (make cpu once stopped here, on keys added since it was written)."""
    from snakemake.utils import update_config

    merged = copy.deepcopy(load("config.yaml"))
    update_config(merged, load(name))
    check_config(merged, SCHEMA)


def _keys(node, prefix=""):
    """Every property of the schema, as dotted paths, with its node."""
    for key, value in (node.get("properties") or {}).items():
        yield f"{prefix}{key}", value
        target = value.get("items", value)
        if "$ref" in target:
            continue
        yield from _keys(target, f"{prefix}{key}.")


def test_every_schema_key_has_a_description_and_is_in_the_config_readme():
    schema = yaml.safe_load(SCHEMA.read_text())
    readme = (ROOT / "config" / "README.md").read_text()
    keys = list(_keys(schema))
    assert len(keys) > 30
    for path, node in keys:
        described = node.get("description") or (
            "$ref" in node and schema["definitions"][node["$ref"].split("/")[-1]].get("description"))
        assert described, f"schema key {path} has no description"
        assert f"`{path.split('.')[-1]}`" in readme, f"config/README.md does not list {path}"


BAD = [
    # (edit, what the one message must say)
    (lambda c: c["benchmarks"][0].update(dataset="mnistt"),
     ["benchmarks[0] ('fmnist_mlp'): dataset 'mnistt' is unknown", "fashion_mnist"]),
    (lambda c: c["benchmarks"][0].update(model="resnet99"),
     ["model 'resnet99' is unknown", "timm:<name>"]),
    (lambda c: c["benchmarks"][0].update(t_mix=1.5),
     ["benchmarks[0].t_mix: 1.5 is greater than the maximum of 1"]),
    (lambda c: c["benchmarks"][1].update({"lambda": [0, 10.0]}),
     ["benchmarks[1] ('fmnist_resnet'): lambda [0, 10.0] must be", "two positive numbers"]),
    (lambda c: c.update(lambda2_grid=[1.0, -1.0]),
     ["lambda2_grid[1]: -1.0 is less than or equal to the minimum of 0"]),
    (lambda c: c.update(other_forget_classes=[1, 12]),
     ["other_forget_classes: class 12 is out of range for benchmark 'fmnist_mlp'"]),
    (lambda c: c.update(lambda_sweep_figures=[{"figure": "fig6", "benchmark": "nope"}]),
     ["fig6 names benchmark 'nope'", "not among benchmarks"]),
    (lambda c: c["benchmarks"][3].update(num_classes=48),
     ["num_classes is 48 but data set 'synthetic' has 49 classes"]),
    (lambda c: c["benchmarks"][0]["data_options"].update(classes=[0, 1, 2]),
     ["num_classes is 10 but data set 'fashion_mnist' has 3 classes"]),
    (lambda c: c.update(code_distribution="laplace"),
     ["code_distribution: 'laplace' is not a code distribution", "uniform, normal"]),
    (lambda c: c.update(fisher_method="backpack"), ["fisher_method: 'backpack' is not one of"]),
    (lambda c: c["benchmarks"].append(dict(c["benchmarks"][0])),
     ["id 'fmnist_mlp' is used twice"]),
    (lambda c: c.update(colour="blue"), ["Additional properties are not allowed ('colour'"]),
]


@pytest.mark.parametrize("edit, messages", BAD)
def test_a_bad_entry_is_named_in_one_error(edit, messages):
    config = copy.deepcopy(load("small.yaml"))
    edit(config)
    with pytest.raises(MnemuError) as error:
        check_config(config, SCHEMA)
    text = str(error.value)
    assert "\n" not in text and text.startswith("config error: ")
    for message in messages:
        assert message in text


def test_every_problem_is_listed_at_once():
    config = copy.deepcopy(load("small.yaml"))
    config["benchmarks"][0]["model"] = "nope1"
    config["benchmarks"][1]["model"] = "nope2"
    with pytest.raises(MnemuError) as error:
        check_config(config, SCHEMA)
    assert re.search(r"nope1.*nope2", str(error.value))
