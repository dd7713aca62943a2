"""The Snakemake workflow: the paper DAG, lint and format, an end-to-end run of a tiny
configuration, incremental reruns when the config grows, and bad configs failing early."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PAPER_TARGETS = [f"fig{n}.{ext}" for n in (2, 6, 7, 8, 9) for ext in ("pdf", "png")] + [
    f"{t}.{ext}" for t in ("table2", "table3", "table5", "table8", "ablation_codes")
    for ext in ("csv", "md")
]


def snakemake(*args, check=True, timeout=900):
    result = subprocess.run([*SNAKEMAKE, *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n"
                             f"{result.stderr[-3000:]}")
    return result


def job_counts(output: str) -> dict[str, int]:
    """Per-rule counts from the 'Job stats' table of a (dry) run."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            inside = True
            continue
        if inside:
            match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
            if match and match.group(1) != "total":
                counts[match.group(1)] = int(match.group(2))
            elif line.strip().startswith("total"):
                break
    return counts


def tiny_config(tmp: Path) -> dict:
    """Two small benchmarks, one seed, one epoch or two: every rule kind, in about two minutes."""
    config = yaml.safe_load((ROOT / "config" / "small.yaml").read_text())
    config.update(
        outputs={"results": str(tmp / "results"), "figures": str(tmp / "figures")},
        data_dir=str(tmp / "data"),
        seeds=[0],
        other_forget_classes=[1],
        t_mix_accuracy=[0.0, 0.1],
        t_mix_forgetting=[0.1],
        lambda1_grid=[1e-4, 1e-3, 1e-2],
        lambda2_grid=[1.0, 10.0, 100.0],
    )
    config["benchmarks"] = [
        {"id": "fm", "label": "Fashion-MNIST subset (MLP)", "paper_column": "MNIST",
         "dataset": "fashion_mnist",
         "data_options": {"max_train_per_class": 200, "max_test_per_class": 100},
         "num_classes": 10, "model": "mlp", "model_options": {"hidden": 128}, "pretrained": False,
         "t_mix": 0.1, "lambda": "select",
         "train": {"epochs": 2, "batch_size": 64, "lr": 0.01, "momentum": 0.9,
                   "weight_decay": 5e-4, "schedule": "none"}},
        {"id": "dg", "label": "digits (ResNet-18/4)", "dataset": "digits", "data_options": {},
         "num_classes": 10, "model": "resnet18_cifar", "model_options": {"width": 4},
         "pretrained": False, "t_mix": 0.1, "lambda": [1e-3, 10.0],
         "train": {"epochs": 2, "batch_size": 64, "lr": 0.01, "momentum": 0.9,
                   "weight_decay": 5e-4, "schedule": "cosine"}},
    ]
    config["lambda_sweep_figures"] = [{"figure": "fig6", "benchmark": "fm"},
                                      {"figure": "fig7", "benchmark": "dg"}]
    return config


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


# --- static checks -------------------------------------------------------------------------------


def test_paper_dry_run_lists_every_target():
    began = time.perf_counter()
    result = snakemake("--dry-run", "--quiet", "rules")
    seconds = time.perf_counter() - began
    out = snakemake("--dry-run").stdout
    print(f"paper DAG dry run: {seconds:.1f}s")
    for target in PAPER_TARGETS:
        assert f"paper_figures/{target}" in out, f"paper DAG lacks paper_figures/{target}"
    counts = job_counts(out)
    # 4 benchmarks x 3 seeds x (5 t_mix values + normal codes) models, each trained once.
    assert counts["train"] == 4 * 3 * 6
    assert counts["forget"] == 4 * 3 * (4 + 1 + 9)
    assert result.returncode == 0


def test_slurm_profile_dry_run_resolves_resources(monkeypatch):
    out = snakemake("--profile", "slurm", "--dry-run", "paper_figures/table5.csv").stdout
    assert "gpu=1" in out  # training asks for a GPU in the paper configuration
    assert "rule train:" in out


def test_lint_is_clean():
    result = snakemake("--lint")
    assert "Congratulations" in result.stdout + result.stderr


def test_snakefmt_is_clean():
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "."], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("edit, message, where", [
    (lambda c: c["benchmarks"][0].update(dataset="mnistt"),
     "'mnistt' is not one of", "instance['benchmarks'][0]['dataset']"),
    (lambda c: c["benchmarks"][0].update(t_mix=1.5),
     "1.5 is greater than the maximum of 1", "instance['benchmarks'][0]['t_mix']"),
    (lambda c: c["benchmarks"][1].update({"lambda": [0, 10.0]}),
     "benchmarks[1] ('dg'): lambda [0, 10.0] must be", "two positive numbers"),
    (lambda c: c.update(lambda2_grid=[1.0, -1.0]),
     "-1.0 is less than or equal to the minimum of 0", "instance['lambda2_grid'][1]"),
    (lambda c: c.update(other_forget_classes=[1, 12]),
     "other_forget_classes: class 12 is out of range for benchmark 'fm'", "classes 0..9"),
    (lambda c: c.update(lambda_sweep_figures=[{"figure": "fig6", "benchmark": "nope"}]),
     "fig6 names benchmark 'nope'", "not among benchmarks"),
])
def test_bad_config_fails_before_any_job(tmp_path, edit, message, where):
    config = tiny_config(tmp_path)
    edit(config)
    path = write_config(tmp_path / "bad.yaml", config)
    result = snakemake("--configfile", str(path), "--cores", "1", check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert where in result.stdout + result.stderr
    assert not (tmp_path / "results").exists(), "a job ran despite the bad config"


# --- end to end ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    path = write_config(tmp / "tiny.yaml", tiny_config(tmp))
    began = time.perf_counter()
    result = snakemake("--configfile", str(path), "--cores", "2")
    print(f"tiny configuration end to end: {time.perf_counter() - began:.0f}s")
    return tmp, path, result


@pytest.mark.slow
def test_tiny_run_builds_every_target(tiny_run):
    tmp, _, result = tiny_run
    figures = tmp / "figures"
    for target in PAPER_TARGETS:
        if target.startswith(("fig8", "fig9")):
            continue  # the tiny config has two benchmarks, so two sweep figures
        assert (figures / target).stat().st_size > 0, target
    assert (figures / "fig2.png").read_bytes()[:4] == b"\x89PNG"
    with open(figures / "table2.csv") as handle:
        rows = list(csv.DictReader(handle))
    ours = {r["benchmark"]: float(r["mean"]) for r in rows if r["row"] == "Ours"}
    assert set(ours) == {"fm", "dg"}
    table3 = {r["benchmark"]: r for r in csv.DictReader(open(figures / "table3.csv"))
              if r["row"] == "Ours"}
    # The paper's claim at this tiny scale, on real Fashion-MNIST with the paper's MLP.
    assert float(table3["fm"]["mean"]) >= 90
    assert "paper 95.9 ± 0.1" in (figures / "table2.md").read_text()
    choice = json.loads((tmp / "results" / "fm" / "lambda.json").read_text())
    assert choice["selected"] and choice["lambda1"] in (1e-4, 1e-3, 1e-2)
    fixed = json.loads((tmp / "results" / "dg" / "lambda.json").read_text())
    assert fixed == {"lambda1": 1e-3, "lambda2": 10.0, "selected": False}
    metrics = json.loads((tmp / "results/fm/tmix0.1_uniform/seed0/forget0/metrics.json").read_text())
    assert metrics["seconds"]["total"] > 0 and metrics["sign"] in "+-"
    assert metrics["lambda1"] == choice["lambda1"]


@pytest.mark.slow
def test_tiny_run_is_incremental(tiny_run):
    tmp, path, _ = tiny_run
    out = snakemake("--configfile", str(path), "--dry-run").stdout
    assert "Nothing to be done" in out
    # Restyling a figure reruns the figures and tables only, never training or forgetting.
    # (Snakemake compares checksums, so the drawing code must really change, not just its mtime.)
    code = ROOT / "src/mnemu/report.py"
    text, stat = code.read_text(), code.stat()
    try:
        code.write_text(text + "# restyled\n")
        counts = job_counts(snakemake("--configfile", str(path), "--dry-run").stdout)
    finally:
        code.write_text(text)
        os.utime(code, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert counts == {"fig2": 1, "lambda_sweep_figure": 2, "table": 5, "all": 1}


@pytest.mark.slow
def test_oracle_fisher_target(tiny_run):
    tmp, path, _ = tiny_run
    target = tmp / "results/fm/tmix0.1_uniform/seed0/fisher/data_forget0.pt"
    snakemake("--configfile", str(path), "--cores", "1", str(target))
    import torch

    payload = torch.load(target, weights_only=True)
    assert payload["source"] == "data" and payload["num_samples"] == 2000
    assert set(payload["forget"]) == set(payload["remain"])


EXTENSIONS = {
    # a forget class: one forget job per benchmark and seed, then Table 8 again
    "forget class": (lambda c: c.update(other_forget_classes=[1, 2]),
                     {"forget": 2, "summarise": 1, "table": 1, "all": 1}),
    # a t_mix value for Table 5: a model and its forget step per benchmark
    "t_mix": (lambda c: c.update(t_mix_forgetting=[0.1, 0.5]),
              {"train": 2, "forget": 2, "summarise": 1, "table": 1, "all": 1}),
    # a seed: every model of the new seed; fm selects lambda over both seeds' grids again, so
    # its forget jobs of seed 0 rerun with the new choice; dg's lambda is fixed
    "seed": (lambda c: c.update(seeds=[0, 1]),
             {"train": 6, "fisher": 2, "lambda_grid": 2, "choose_lambda": 1, "forget": 6 + 3,
              "summarise": 7, "fig2": 1, "lambda_sweep_figure": 2, "table": 5, "all": 1}),
    # a data set entry: its data, models, lambda and forget jobs; every table and Fig. 2 again
    "benchmark": (lambda c: c["benchmarks"].append(
        {**c["benchmarks"][1], "id": "syn", "label": "generated", "dataset": "synthetic",
         "data_options": {"num_classes": 10, "image_shape": [3, 8, 8], "train_per_class": 20,
                          "test_per_class": 10}}),
                  {"prepare_data": 1, "train": 3, "choose_lambda": 1, "forget": 3,
                   "summarise": 5, "fig2": 1, "table": 5, "all": 1}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXTENSIONS))
def test_extending_the_config_runs_exactly_the_new_jobs(tiny_run, name):
    tmp, path, _ = tiny_run
    edit, expected = EXTENSIONS[name]
    config = yaml.safe_load(path.read_text())
    edit(config)
    extended = write_config(tmp / f"extended-{name.replace(' ', '_')}.yaml", config)
    counts = job_counts(snakemake("--configfile", str(extended), "--dry-run").stdout)
    assert counts == expected
