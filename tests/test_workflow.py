"""The Snakemake workflow: the paper DAG, lint and format, an end-to-end run of a tiny
configuration, incremental reruns when the config grows, and bad configs failing early."""

from __future__ import annotations

import csv
import json
import math
import os
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
from mnemu.reporting import PAPER_ITEMS, VERDICTS, browser, open_in_browser

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
#: What a copy of the workflow needs: the tiny run works on a copy, so tests may edit its files.
WORKFLOW_FILES = ["Snakefile", "workflow", "scripts", "config", "envs", "src", "profiles"]


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
    # Sections with tests of their own, switched off here. (Setting them, not deleting them:
    # Snakemake merges --configfile over config/config.yaml, whose values would come back.)
    config.update(imagenet={"enabled": False}, forget_time_scaling=None, multiclass_forget=[])
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
    # the cheap baselines, and ERM-KTP for its dash on the MLP (small.yaml's settings)
    config["baseline_methods"] = ["ssd", "erm_ktp", "retrain"]
    # App. C is optional (its own models and studies): left out to keep this run short
    config.update(appendix=None, appendix_benchmarks=[])
    config.update(w_data_benchmarks=["fm"], w_data_samples_per_class=[1, 10],
                  fim_error_benchmarks=["fm"], gradient_benchmark="dg")
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
    # 4 benchmarks x 3 seeds x (5 t_mix values + normal codes) models, each trained once,
    # + the appendix's LFW and CLIP-style models (Tables 7, 9), 3 seeds each.
    assert counts["train"] == 4 * 3 * 6 + 2 * 3
    # + classes {0,1}, {0,1,2}, {0,...,4} forgotten together (multiclass), + the appendix models
    assert counts["forget"] == 4 * 3 * (4 + 1 + 9 + 3) + 2 * 3
    assert counts["baseline"] == 4 * 3 * 5 and counts["retrain"] == 4 * 3 + 1  # + Fig. 12b
    # App. C: membership inference, blended codes on the CIFAR-10 column, output rates on two
    assert (counts["membership"], counts["backdoor"], counts["output_rate"]) == (3, 3, 6)
    # the same with lambda: auto (Tables 2, 3, 5, 8 show both), not for the codes ablation
    assert counts["forget_auto"] == 4 * 3 * (4 + 9)
    assert counts["figure"] + counts["table"] + counts["figure_csv"] == len(catalogue(config))
    # Table 4: data, then per architecture weights, fine-tune, Fisher, forget, 3 evaluations
    assert counts["imagenet_data"] == 1 and counts["imagenet_finetune"] == 3
    assert counts["imagenet_evaluate"] == 3 * 3 and counts["forget_time_scaling"] == 3
    assert result.returncode == 0
    # the models that forget (each benchmark's own t_mix, the main codes) and their lambda grids
    # are scheduled first; the other t_mix values and the codes ablation are not
    models = {b["id"]: b for b in config["benchmarks"] + config.get("appendix_benchmarks", [])}
    first = {}
    for block in re.split(r"\n(?=\[\w{3} )", out):  # a job's lines follow its time stamp
        rule = re.search(r"^(?:local)?rule (train|lambda_grid):", block, re.M)
        wildcards = re.search(r"wildcards: bench=(\w+), tmix=([0-9.]+), codes=(\w+)", block)
        if rule and wildcards:
            bench, tmix, codes = wildcards.groups()
            forgets = (float(tmix) == float(models[bench]["t_mix"])
                       and codes == config["code_distribution"])
            first[rule.group(1), bench, tmix, codes] = ("priority: 10" in block, forgets)
    assert len(first) > 20 and all(flag == forgets for flag, forgets in first.values())
    assert any(forgets for _, forgets in first.values())


def test_paper_dry_run_of_table2_and_fig3_lists_every_methods_jobs():
    out = snakemake("--dry-run", "paper_figures/table2.csv", "paper_figures/fig3.pdf").stdout
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    seeds, benches = config["seeds"], [b["id"] for b in config["benchmarks"]]
    methods = config["baseline_methods"]
    assert set(methods) == {"fastmu", "lwsf", "sfdn", "ssd", "erm_ktp", "retrain"}
    for bench in benches:
        t_mix = next(f"{b['t_mix']:g}" for b in config["benchmarks"] if b["id"] == bench)
        for seed in seeds:
            for method in methods:  # on the benchmark's main model, every seed
                path = (f"results/paper/{bench}/retrain_forget0/seed{seed}/metrics.json"
                        if method == "retrain" else
                        f"results/paper/{bench}/tmix{t_mix}_uniform/seed{seed}/baselines/"
                        f"{method}_forget0.json")
                assert path in out, path
    counts = job_counts(out)
    assert counts["baseline"] == len(benches) * len(seeds) * (len(methods) - 1)
    assert counts["retrain"] == len(benches) * len(seeds)
    for rule in ("baseline", "retrain"):  # each asks for a GPU in the paper configuration
        blocks = re.findall(rf"rule {rule}:\n(?:.+\n)*?\s+resources: (.+)", out)
        assert blocks and all("gpu=1" in b for b in blocks), rule


def test_slurm_profile_dry_run_resolves_resources():
    out = snakemake("--profile", "slurm", "--dry-run", "paper_figures/table5.csv").stdout
    assert "gpu=1" in out  # training asks for a GPU in the paper configuration
    assert "rule train:" in out
    out = snakemake("--profile", "slurm", "--dry-run", "paper_figures/table4.csv").stdout
    for rule in ("imagenet_data", "imagenet_weights", "imagenet_finetune", "imagenet_fisher",
                 "imagenet_forget", "imagenet_evaluate"):
        assert f"rule {rule}:" in out
    finetune = out[out.index("rule imagenet_finetune:"):]
    assert "gpu=1" in finetune[:finetune.index("\n\n")]


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
    assert "| Ours |" in table2 and "| Ours (auto) |" in table2
    assert "(rule: fixed)" in table2 and "(rule: select on validation)" in table2
    assert "E_F (auto)" in (figures / "table8.md").read_text()
    fixed = json.loads((tmp / "results" / "fm" / "lambda.json").read_text())
    assert fixed == {"benchmark": "fm", "lambda1": 1e-3, "lambda2": 10.0, "lambda_rule": "fixed",
                     "selected": False}


@pytest.mark.slow
def test_tiny_run_tables_have_the_baselines_and_retraining(tiny_run):
    tmp, _, _ = tiny_run
    table2 = (tmp / "figures" / "table2.md").read_text()
    rows = [line.split("|")[1].strip() for line in table2.splitlines() if line.startswith("| ")]
    assert rows[1:] == ["Before forgetting", "SSD", "ERM-KTP", "Retrain", "Ours", "Ours (auto)"]
    assert "| ERM-KTP | — |" in table2 and "— ERM-KTP on Fashion-MNIST subset (MLP): CNNs only" in table2
    cells = {(r["row"], r["benchmark"]): r for r in read_rows(tmp / "figures" / "table3.csv")}
    assert cells[("Retrain", "fm")]["mean"] == "100.0"  # never shown the class: never predicts it
    for seed in (0, 1):
        record = json.loads((tmp / f"results/dg/tmix0.1_uniform/seed{seed}/baselines/"
                                    "erm_ktp_forget0.json").read_text())
        assert record["method"] == "erm_ktp" and record["timer"]["seconds"] > 0
        assert record["settings"]["seed"] == seed and record["settings"]["ktp_epochs"] == 3
        assert (tmp / f"results/dg/retrain_forget0/seed{seed}/model.pt").is_file()
    ours = json.loads((tmp / "results/fm/tmix0.1_uniform/seed0/forget0/metrics.json").read_text())
    assert ours["timer"]["memory_kind"] == "cpu_rss_sampled"  # the baselines' timer
    assert (tmp / "figures" / "fig3.pdf").read_bytes()[:5] == b"%PDF-"


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
                                  ("Ours", "after", ""),
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


@pytest.mark.slow
def test_tiny_run_report_lists_every_paper_item_and_opens_in_a_browser(tiny_run):
    """The report of the tiny run: every paper item with a verdict or as missing, the stand-in
    warning, each rule's cost; then Chromium loads it with no broken image (screenshot beside)."""
    tmp, _, _ = tiny_run
    page = tmp / "figures/report.html"
    data = json.loads((tmp / "figures/report.json").read_text())
    assert [i["item"] for i in data["items"]] == [name for name, _ in PAPER_ITEMS]
    assert all(i["verdict"] in VERDICTS for i in data["items"])
    verdicts = {i["item"]: i["verdict"] for i in data["items"]}
    assert verdicts["Table 4"] == "missing" and verdicts["Table 2"] != "missing"
    assert data["stand_ins"] and "Stand-in data" in page.read_text()
    assert {"train", "forget", "figures", "tables"} <= {r["rule"] for r in
                                                         data["provenance"]["rules"]}
    if browser() is None:
        pytest.skip("no headless Chromium to open the report: apt-get install chromium")
    seen = open_in_browser(page, tmp / "figures/report.png")
    assert seen["items"] == [name for name, _ in PAPER_ITEMS]
    assert seen["images"] >= 1 and seen["broken_images"] == 0
    assert (tmp / "figures/report.png").stat().st_size > 0


@pytest.mark.slow
def test_snakemake_report_registers_every_artefact_with_its_caption(tiny_run):
    import zipfile

    tmp, path, work = tiny_run
    snakemake("--configfile", str(path), "--report", str(tmp / "snakemake-report.zip"), cwd=work)
    names = zipfile.ZipFile(tmp / "snakemake-report.zip").namelist()
    for artefact in catalogue(yaml.safe_load(path.read_text())):
        registered = "pdf" if artefact.kind == "figure" else "csv"
        assert any(n.endswith(f"{artefact.id}.{registered}") for n in names), artefact.id


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
    text, stat = code.read_text(), code.stat()
    code.write_text(text + "# restyled\n")
    out = snakemake("--configfile", str(path), "--dry-run", cwd=work).stdout
    code.write_text(text)  # the copy as it was, for the tests that follow
    os.utime(code, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert job_counts(out) == {"table": 1, "report": 1, "all": 1}
    assert output_paths(out) == {str(tmp / f"figures/{name}") for name in (
        "table5.csv", "table5.md", "report.html", "report.json")}


EXTENSIONS = {
    # a forget class: one forget job per benchmark and seed and its auto twin, then Table 8 and
    # the report (baselines forget the main classes only)
    "forget class": (lambda c: c.update(other_forget_classes=[1, 2]),
                     {"forget": 4, "forget_auto": 4, "summarise": 2, "table": 1, "report": 1,
                      "all": 1}),
    # a t_mix value for Table 5: a model and its forget steps per benchmark and seed, and Fig. 10's
    # code and oracle Fisher and error of fm's new models
    "t_mix": (lambda c: c.update(t_mix_forgetting=[0.1, 0.5]),
              {"train": 4, "fisher": 4, "forget": 4, "forget_auto": 4, "fim_error": 2,
               "summarise": 3, "table": 1, "figure": 1, "report": 1, "all": 1}),
    # a seed: every model of the new seed, its grids, baselines and analyses; dg selects lambda
    # over the three seeds' grids again, so its forget jobs of the other seeds rerun with the new
    # choice (fm's is fixed; auto needs no lambda.json); every artefact again
    "seed": (lambda c: c.update(seeds=[0, 1, 2]),
             {"train": 6, "baseline": 4, "fisher": 6, "forget": 12, "forget_auto": 4,
              "layer_gradients": 1, "retrain": 2, "summarise": 15, "figure": 7, "fim_error": 3,
              "forget_w_data": 3, "lambda_grid": 2, "choose_lambda": 1, "table": 6, "report": 1,
              "all": 1}),
    # a data set entry: its data, models, lambda, forget and baseline jobs. Every figure and
    # table is redrawn: they take the benchmark list as a parameter (labels, columns).
    "benchmark": (lambda c: c["benchmarks"].append(
        {**c["benchmarks"][1], "id": "syn", "label": "generated", "dataset": "synthetic",
         "data_options": {"num_classes": 10, "image_shape": [3, 8, 8], "train_per_class": 20,
                          "test_per_class": 10}}),
                  {"prepare_data": 1, "train": 6, "fisher": 2, "lambda_grid": 2,
                   "choose_lambda": 1, "forget": 6, "forget_auto": 4, "baseline": 4,
                   "retrain": 2, "summarise": 9, "figure": 7, "table": 6, "report": 1, "all": 1}),
    # a changed lambda: that benchmark's forget jobs (paper rule and ours-w-data) and what they
    # feed; no training, no baseline, no auto forget
    "lambda": (lambda c: c["benchmarks"][0].update({"lambda": [1e-4, 10.0]}),
               {"choose_lambda": 1, "forget": 6, "forget_w_data": 6, "summarise": 5,
                "figure": 7, "table": 6, "report": 1, "all": 1}),
    # changed training settings: that benchmark's models, its retraining and everything
    # downstream of them
    "epochs": (lambda c: c["benchmarks"][1]["train"].update(epochs=3),
               {"train": 6, "fisher": 2, "lambda_grid": 2, "choose_lambda": 1, "forget": 6,
                "forget_auto": 4, "baseline": 4, "retrain": 2, "layer_gradients": 2,
                "summarise": 11, "figure": 7, "table": 6, "report": 1, "all": 1}),
    # a baseline setting: that method's jobs, the baselines summary, Tables 2, 3 and Fig. 3
    "baseline setting": (lambda c: c["baselines"]["ssd"].update(alpha=5.0),
                         {"baseline": 4, "summarise": 1, "figure": 1, "table": 2, "report": 1,
                          "all": 1}),
    # an N of Figs. 4-5: its Fisher, ours-w-data and FIM error per seed; those figures again
    "samples per class": (lambda c: c.update(w_data_samples_per_class=[1, 10, 100]),
                          {"fisher": 2, "forget_w_data": 2, "fim_error": 2, "summarise": 2,
                           "figure": 2, "report": 1, "all": 1}),
    # a layer group of Table 6: the table alone (the gradients are kept per tensor)
    "layer group": (lambda c: c["gradient_layer_groups"].append(
        {"name": "head", "prefixes": ["fc"]}), {"table": 1, "report": 1, "all": 1}),
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
