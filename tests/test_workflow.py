"""The Snakemake workflow: the paper DAG, lint and format, an end-to-end run of a tiny
configuration, incremental reruns when the config grows, and bad configs failing early."""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from mnemu.artefacts import catalogue

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
#: What a copy of the workflow needs: the tiny run works on a copy, so tests may edit its files.
WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "config", "envs", "src"]


def targets(config: dict) -> list[str]:
    """Every file the configuration builds, from the artefact catalogue."""
    return [f"{a.id}.{ext}" for a in catalogue(config) for ext in a.formats]


def snakemake(*args, check=True, timeout=900, cwd=ROOT):
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
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
    """Two small benchmarks, two seeds, two epochs: every rule kind, in a few minutes."""
    config = yaml.safe_load((ROOT / "config" / "small.yaml").read_text())
    config.update(
        outputs={"results": str(tmp / "results"), "figures": str(tmp / "figures")},
        data_dir=str(tmp / "data"),
        seeds=[0, 1],
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
         "t_mix": 0.1, "lambda": [1e-3, 10.0],  # the paper's MNIST lambdas (App. A)
         "train": {"epochs": 2, "batch_size": 64, "lr": 0.01, "momentum": 0.9,
                   "weight_decay": 5e-4, "schedule": "none"}},
        {"id": "dg", "label": "digits (ResNet-18/4)", "dataset": "digits", "data_options": {},
         "num_classes": 10, "model": "resnet18_cifar", "model_options": {"width": 4},
         "pretrained": False, "t_mix": 0.1, "lambda": "select",
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
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    for target in targets(config):
        assert f"paper_figures/{target}" in out, f"paper DAG lacks paper_figures/{target}"
    counts = job_counts(out)
    # 4 benchmarks x 3 seeds x (5 t_mix values + normal codes) models, each trained once.
    assert counts["train"] == 4 * 3 * 6
    assert counts["forget"] == 4 * 3 * (4 + 1 + 9)
    # the same with lambda: auto (Tables 2, 3, 5, 8 show both), not for the codes ablation
    assert counts["forget_auto"] == 4 * 3 * (4 + 9)
    assert counts["figure"] + counts["table"] == len(catalogue(config))
    assert result.returncode == 0


def test_slurm_profile_dry_run_resolves_resources():
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


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["benchmarks"][0].update(dataset="mnistt"),
     "benchmarks[0] ('fm'): dataset 'mnistt' is unknown"),
    (lambda c: c["benchmarks"][0].update(t_mix=1.5),
     "benchmarks[0].t_mix: 1.5 is greater than the maximum of 1"),
    # a num_classes that does not fit the data set is caught before the other benchmark trains
    (lambda c: c["benchmarks"][1].update(num_classes=9),
     "num_classes is 9 but data set 'digits' has 10 classes"),
])
def test_bad_config_fails_before_any_job(tmp_path, edit, message):
    config = tiny_config(tmp_path)
    edit(config)
    path = write_config(tmp_path / "bad.yaml", config)
    result = snakemake("--configfile", str(path), "--cores", "1", check=False)
    assert result.returncode != 0
    assert "config error: " in result.stdout + result.stderr
    assert message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists(), "a job ran despite the bad config"


# --- end to end ------------------------------------------------------------------------------------


def copy_workflow(dest: Path) -> Path:
    """The workflow's files, mtimes kept, so that tests can edit them without touching the
    repository (an interrupted test leaves the sources as they were)."""
    dest.mkdir(parents=True)
    for name in WORKFLOW_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    work = copy_workflow(tmp / "workflow-copy")
    path = write_config(tmp / "tiny.yaml", tiny_config(tmp))
    began = time.perf_counter()
    result = snakemake("--configfile", str(path), "--cores", "2", cwd=work)
    print(f"tiny configuration end to end: {time.perf_counter() - began:.0f}s")
    return tmp, path, work


def read_rows(path: Path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_tiny_run_builds_every_target(tiny_run):
    tmp, path, _ = tiny_run
    figures = tmp / "figures"
    for target in targets(yaml.safe_load(path.read_text())):
        assert (figures / target).stat().st_size > 0, target
    assert (figures / "fig2.png").read_bytes()[:4] == b"\x89PNG"
    table2 = (figures / "table2.md").read_text()
    assert "paper 95.9 ± 0.1" in table2
    assert "| Ours (paper rule) |" in table2 and "| Ours (auto) |" in table2
    assert "(rule: fixed)" in table2 and "(rule: select on validation)" in table2
    assert "E_F (auto)" in (figures / "table8.md").read_text()
    fixed = json.loads((tmp / "results" / "fm" / "lambda.json").read_text())
    assert fixed == {"benchmark": "fm", "lambda1": 1e-3, "lambda2": 10.0, "lambda_rule": "fixed",
                     "selected": False}


@pytest.mark.slow
def test_selected_lambda_is_the_best_mean_over_the_seeds_grids(tiny_run):
    """Recomputed here from the grid files' validation columns (select_on: validation): the
    highest mean A_R + E_F over both seeds, ties to the tied point nearest their log-centroid.
    The auto forget jobs record their own lambdas and the path that chose them."""
    tmp, _, _ = tiny_run
    scores: dict[tuple[float, float], list[float]] = {}
    for seed in (0, 1):
        for row in read_rows(tmp / f"results/dg/tmix0.1_uniform/seed{seed}/grid_forget0.csv"):
            assert row["benchmark"] == "dg" and row["seed"] == str(seed) and row["forget"] == "0"
            assert row["A_R"] and row["E_F"]  # the test split's, for the sweep figures
            key = (float(row["lambda1"]), float(row["lambda2"]))
            scores.setdefault(key, []).append(float(row["val_A_R"]) + float(row["val_E_F"]))
    assert len(scores) == 9 and all(len(v) == 2 for v in scores.values())
    top = max(sum(v) for v in scores.values())
    tied = [k for k, v in scores.items() if sum(v) == top]
    logs = {k: (math.log10(k[0]), math.log10(k[1])) for k in tied}
    centre = [sum(x[i] for x in logs.values()) / len(tied) for i in (0, 1)]
    best = min(tied, key=lambda k: (round(sum((logs[k][i] - centre[i]) ** 2 for i in (0, 1)), 9),
                                    -k[0], -k[1]))
    choice = json.loads((tmp / "results" / "dg" / "lambda.json").read_text())
    assert choice["selected"] and (choice["lambda1"], choice["lambda2"]) == best
    assert choice["lambda_rule"] == "select on validation"
    for seed in (0, 1):
        run = tmp / f"results/dg/tmix0.1_uniform/seed{seed}"
        metrics = json.loads((run / "forget0/metrics.json").read_text())
        assert (metrics["lambda1"], metrics["lambda2"]) == best
        assert metrics["sign"] in ("+", "-") and metrics["seconds"]["total"] > 0
        assert metrics["lambda_rule"] == "select on validation"
        auto = json.loads((run / "forget0_auto/metrics.json").read_text())
        assert auto["lambda_rule"] == "auto" and auto["auto"]["tried"]
        assert auto["lambda1"] == auto["auto"]["s"]


@pytest.mark.slow
def test_table_cells_are_recomputed_from_the_runs(tiny_run):
    tmp, _, _ = tiny_run
    cells = {(r["row"], r["benchmark"]): r for r in read_rows(tmp / "figures" / "table2.csv")}
    for bench in ("fm", "dg"):
        run_files = {variant: [json.loads((tmp / f"results/{bench}/tmix0.1_uniform/seed{s}/"
                                           f"forget0{variant}/metrics.json").read_text())
                               for s in (0, 1)] for variant in ("", "_auto")}
        runs = run_files[""]
        for row, key, variant in (("Before forgetting", "before", ""),
                                  ("Ours (paper rule)", "after", ""),
                                  ("Ours (auto)", "after", "_auto")):
            values = [r[key]["A_R"] for r in run_files[variant]]
            cell = cells[(row, bench)]
            assert float(cell["mean"]) == pytest.approx(statistics.fmean(values))
            assert float(cell["std"]) == pytest.approx(statistics.stdev(values))
            assert cell["n"] == "2"
        for r in runs:  # the rest kept; and with the paper's MLP and lambdas, forgotten
            assert r["after"]["A_R"] >= r["before"]["A_R"] - 10, (bench, r["before"], r["after"])
            if bench == "fm":
                assert r["after"]["E_F"] >= 99, r["after"]


@pytest.mark.slow
def test_oracle_fisher_target(tiny_run):
    tmp, path, work = tiny_run
    target = tmp / "results/fm/tmix0.1_uniform/seed0/fisher/data_forget0.pt"
    snakemake("--configfile", str(path), "--cores", "1", str(target), cwd=work)
    import torch

    payload = torch.load(target, weights_only=True)
    assert payload["source"] == "data" and payload["num_samples"] == 2000
    assert set(payload["forget"]) == set(payload["remain"])


def output_paths(output: str) -> set[str]:
    """The output files a dry run would write (its ``output:`` lines)."""
    paths = set()
    for line in output.splitlines():
        if line.strip().startswith("output:"):
            paths.update(p.strip() for p in line.split(":", 1)[1].split(","))
    return paths


@pytest.mark.slow
def test_tiny_run_is_incremental(tiny_run):
    tmp, path, work = tiny_run
    out = snakemake("--configfile", str(path), "--dry-run", cwd=work).stdout
    assert "Nothing to be done" in out
    # Restyling one table reruns that table alone, never training, forgetting or other artefacts.
    # (Snakemake compares checksums, so the drawing code must really change, not just its mtime.)
    code = work / "src/mnemu/artefacts/table5.py"
    original = code.read_text()
    code.write_text(original + "# restyled\n")
    try:
        out = snakemake("--configfile", str(path), "--dry-run", cwd=work).stdout
    finally:
        code.write_text(original)  # the tests after this one share the run: leave it unchanged
    assert job_counts(out) == {"table": 1, "all": 1}
    assert output_paths(out) == {str(tmp / "figures/table5.csv"), str(tmp / "figures/table5.md")}


EXTENSIONS = {
    # a forget class: one forget job per benchmark and seed (and its auto twin), then Table 8
    "forget class": (lambda c: c.update(other_forget_classes=[1, 2]),
                     {"forget": 4, "forget_auto": 4, "summarise": 2, "table": 1, "all": 1}),
    # a t_mix value for Table 5: a model and its forget step per benchmark and seed
    "t_mix": (lambda c: c.update(t_mix_forgetting=[0.1, 0.5]),
              {"train": 4, "forget": 4, "forget_auto": 4, "summarise": 2, "table": 1,
               "all": 1}),
    # a seed: every model of the new seed and its grid; dg selects lambda over the three seeds'
    # grids again, so its forget jobs of the other seeds rerun with the new choice; fm's is fixed;
    # the auto forget jobs need no lambda.json: only the new seed's run
    "seed": (lambda c: c.update(seeds=[0, 1, 2]),
             {"train": 6, "fisher": 2, "lambda_grid": 2, "choose_lambda": 1, "forget": 6 + 6,
              "forget_auto": 4, "summarise": 7 + 3, "figure": 3, "table": 5, "all": 1}),
    # a data set entry: its data, models, lambda and forget jobs; every table and Fig. 2 again
    "benchmark": (lambda c: c["benchmarks"].append(
        {**c["benchmarks"][1], "id": "syn", "label": "generated", "dataset": "synthetic",
         "data_options": {"num_classes": 10, "image_shape": [3, 8, 8], "train_per_class": 20,
                          "test_per_class": 10}}),
                  {"prepare_data": 1, "train": 6, "fisher": 2, "lambda_grid": 2,
                   "choose_lambda": 1, "forget": 6, "forget_auto": 4, "summarise": 5 + 3,
                   "figure": 1, "table": 5, "all": 1}),
    # a changed lambda: that benchmark's forget jobs and what they feed (its sweep figure marks
    # the lambdas), no training
    "lambda": (lambda c: c["benchmarks"][0].update({"lambda": [1e-4, 10.0]}),
               {"choose_lambda": 1, "forget": 6, "summarise": 4, "figure": 1, "table": 5,
                "all": 1}),
    # changed training settings: that benchmark's models and everything downstream of them
    "epochs": (lambda c: c["benchmarks"][1]["train"].update(epochs=3),
               {"train": 6, "fisher": 2, "lambda_grid": 2, "choose_lambda": 1, "forget": 6,
                "forget_auto": 4, "summarise": 6 + 3, "figure": 2, "table": 5, "all": 1}),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXTENSIONS))
def test_changing_the_config_runs_exactly_the_affected_jobs(tiny_run, name):
    tmp, path, work = tiny_run
    edit, expected = EXTENSIONS[name]
    config = yaml.safe_load(path.read_text())
    edit(config)
    changed = write_config(tmp / f"changed-{name.replace(' ', '_')}.yaml", config)
    counts = job_counts(snakemake("--configfile", str(changed), "--dry-run", cwd=work).stdout)
    assert counts == expected


@pytest.mark.slow
def test_a_real_incremental_run_leaves_untouched_outputs_alone(tiny_run):
    """After adding a forget class, only the new forget jobs (both rules) and Table 8 are written:
    every other output keeps its bytes and its modification time."""
    tmp, path, work = tiny_run
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in (tmp / "results").rglob("*")
              if p.is_file() and "logs" not in p.parts and "benchmarks" not in p.parts
              and ".snakemake" not in p.parts}
    config = yaml.safe_load(path.read_text())
    config["other_forget_classes"] = [1, 3]
    changed = write_config(tmp / "changed-real.yaml", config)
    snakemake("--configfile", str(changed), "--cores", "2", cwd=work)
    rewritten = {p for p, (mtime, data) in before.items()
                 if p.stat().st_mtime_ns != mtime or p.read_bytes() != data}
    assert rewritten == {tmp / "results/summaries/forget_other_classes.csv",
                         tmp / "results/summaries/forget_other_classes_auto.csv"}
    assert (tmp / "results/fm/tmix0.1_uniform/seed1/forget3/metrics.json").is_file()
    assert (tmp / "results/fm/tmix0.1_uniform/seed1/forget3_auto/metrics.json").is_file()
