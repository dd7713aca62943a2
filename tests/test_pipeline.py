"""The workflow's steps (mnemu.pipeline), called directly as the Snakemake scripts call them:
each record carries its run's identity, and a summary needs nothing but its input files."""

from __future__ import annotations

import csv
import json
import logging
import subprocess
import sys

import pytest
import torch

from mnemu import MnemuError, evaluate, load_checkpoint
from mnemu.jobs import classes_tag, summarise_step
from mnemu.pipeline import (baseline_step, choose_lambda_step, fisher_step, forget_step,
                            lambda_grid_step, prepare_data_step, train_settings, train_step)

BENCH = {"dataset": "synthetic",
         "data_options": {"num_classes": 4, "image_shape": [1, 8, 8], "train_per_class": 40,
                          "test_per_class": 20, "seed": 0},
         "model": "mlp", "model_options": {"hidden": 32}, "pretrained": False,
         "train": {"epochs": 8, "batch_size": 16, "lr": 0.1, "momentum": 0.9,
                   "weight_decay": 5e-4, "schedule": "none"}}
RUN = {"benchmark": "syn", "t_mix": 0.2, "codes": "uniform", "seed": 3}


def rows(path) -> list[dict]:
    with open(path) as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    train_step(BENCH, RUN, str(tmp / "data"), str(tmp / "model.pt"), str(tmp / "train.json"))
    return tmp


def test_train_step_records_its_run_and_trains_with_its_settings(trained):
    record = json.loads((trained / "train.json").read_text())
    assert {k: record[k] for k in RUN} == RUN
    assert record["settings"]["seed"] == 3 and record["settings"]["t_mix"] == 0.2
    assert record["settings"]["epochs"] == 8 and record["accuracy"] > 50
    checkpoint = load_checkpoint(trained / "model.pt")
    assert checkpoint.codes.shape == (4, 1, 8, 8)


def test_fisher_step_from_codes_and_from_data(trained):
    for source, samples in (("codes", 4), ("data5", 20)):
        out = trained / f"fisher_{source}.pt"
        fisher_step(str(trained / "model.pt"), source, "1", str(trained / "data"), "hooks",
                    str(out))
        payload = torch.load(out, weights_only=True)
        assert payload["num_samples"] == samples and payload["forget_classes"] == [1]
        assert set(payload["forget"]) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}


def test_grid_choice_and_forget_steps_carry_identity_into_one_summary(trained, caplog):
    caplog.set_level(logging.INFO, logger="mnemu")
    fisher_step(str(trained / "model.pt"), "codes", "0", str(trained / "data"), "hooks",
                str(trained / "fisher.pt"))
    grids = []
    for seed in (3, 4):  # the same model under two run names stands in for two seeds
        grid = trained / f"grid{seed}.csv"
        lambda_grid_step(str(trained / "model.pt"), str(trained / "fisher.pt"), [1e-3, 1e-1],
                         [1.0, 100.0], {**RUN, "seed": seed}, str(trained / "data"), str(grid))
        grids.append(str(grid))
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("grid point")]
    assert [m.split()[2] for m in progress] == ["1/4:", "2/4:", "3/4:", "4/4:"] * 2
    assert progress[-1].endswith("ETA 0:00:00")
    grid_rows = rows(grids[0])
    assert len(grid_rows) == 4
    assert {(r["benchmark"], r["seed"], r["forget"]) for r in grid_rows} == {("syn", "3", "0")}
    # select_on: test scores the test columns (the paper's practice) ...
    choose_lambda_step("syn", "select", grids, str(trained / "lambda.json"), select_on="test")
    choice = json.loads((trained / "lambda.json").read_text())
    scores = {(float(r["lambda1"]), float(r["lambda2"])): float(r["A_R"]) + float(r["E_F"])
              for r in grid_rows}
    assert choice["benchmark"] == "syn" and choice["selected"]
    assert scores[(choice["lambda1"], choice["lambda2"])] == max(scores.values())
    # ... the default, the validation columns (training samples)
    choose_lambda_step("syn", "select", grids, str(trained / "lambda.json"))
    choice = json.loads((trained / "lambda.json").read_text())
    val_scores = {(float(r["lambda1"]), float(r["lambda2"])): float(r["val_A_R"])
                  + float(r["val_E_F"]) for r in grid_rows}
    assert choice["lambda_rule"] == "select on validation"
    assert val_scores[(choice["lambda1"], choice["lambda2"])] == max(val_scores.values())

    forget_step(str(trained / "model.pt"), str(trained / "lambda.json"), "0", "hooks", RUN,
                str(trained / "data"), str(trained / "metrics.json"), str(trained / "forgot.pt"))
    metrics = json.loads((trained / "metrics.json").read_text())
    assert {k: metrics[k] for k in RUN} == RUN and metrics["forget"] == "0"
    assert (metrics["lambda1"], metrics["lambda2"]) == (choice["lambda1"], choice["lambda2"])
    assert metrics["after"]["E_F"] > metrics["before"]["E_F"]
    # timed by the baselines' timer, the per-phase seconds kept beside it
    assert metrics["timer"]["memory_kind"] == "cpu_rss_sampled"
    assert metrics["timer"]["seconds"] >= metrics["seconds"]["total"] > 0
    assert load_checkpoint(trained / "forgot.pt").forgotten["forget_classes"] == [0]
    assert metrics["lambda_rule"] == "select on validation"
    # no lambda file: lambda: auto, with the path that chose it in the record
    forget_step(str(trained / "model.pt"), None, "0", "hooks", RUN, str(trained / "data"),
                str(trained / "auto.json"), str(trained / "auto.pt"))
    auto = json.loads((trained / "auto.json").read_text())
    assert auto["lambda_rule"] == "auto" and auto["lambda1"] == auto["auto"]["s"]
    assert auto["auto"]["num_tried"] == len(auto["auto"]["tried"]) > 0

    summary = trained / "summary.csv"
    summarise_step([str(trained / "metrics.json"), str(trained / "train.json"), *grids],
                   str(summary))
    table = rows(summary)
    assert len(table) == 2 + 8
    first = table[0]
    assert (first["benchmark"], first["t_mix"], first["codes"], first["seed"]) == \
        ("syn", "0.2", "uniform", "3")
    assert float(first["after.E_F"]) == metrics["after"]["E_F"]  # nested keys flattened
    assert "before.per_class_accuracy" not in first  # lists stay in the JSON
    assert table[-1]["seed"] == "4" and table[-1]["lambda1"]


def test_fixed_lambdas_are_written_as_given(tmp_path):
    choose_lambda_step("b", [1e-4, 10.0], [], str(tmp_path / "lambda.json"))
    assert json.loads((tmp_path / "lambda.json").read_text()) == \
        {"benchmark": "b", "lambda1": 1e-4, "lambda2": 10.0, "lambda_rule": "fixed",
         "selected": False}
    choose_lambda_step("b", "auto", [], str(tmp_path / "auto.json"))
    assert json.loads((tmp_path / "auto.json").read_text()) == \
        {"benchmark": "b", "lambda_rule": "auto", "selected": False}


def test_grids_over_different_points_are_refused(tmp_path):
    paths = []
    for i, points in enumerate(([(1e-3, 1.0)], [(1e-2, 1.0)])):
        path = tmp_path / f"g{i}.csv"
        path.write_text("lambda1,lambda2,A_R,E_F\n" +
                        "".join(f"{l1},{l2},90,100\n" for l1, l2 in points))
        paths.append(str(path))
    with pytest.raises(MnemuError):
        choose_lambda_step("b", "select", paths, str(tmp_path / "lambda.json"))
    assert not (tmp_path / "lambda.json").exists()


def test_prepare_data_step_checks_the_class_count(tmp_path):
    with pytest.raises(MnemuError, match="num_classes: 5"):
        prepare_data_step("synthetic", BENCH["data_options"], str(tmp_path), str(tmp_path / "d.json"),
                          num_classes=5)
    assert not (tmp_path / "d.json").exists()


def test_summarise_step_refuses_nothing(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("a,b\n")
    with pytest.raises(MnemuError, match="nothing to summarise"):
        summarise_step([str(empty)], str(tmp_path / "out.csv"))


def test_the_light_steps_load_no_torch(tmp_path):
    """Summaries, tables, figures and the report run in processes that never import torch
    (about 4 s of CPU each here): the package's names load on first use."""
    record = tmp_path / "record.json"
    record.write_text(json.dumps({"benchmark": "b", "seconds": {"total": 1.5}, "per_class": [1]}))
    code = f"""
import csv, json, sys
import mnemu, mnemu.artefacts, mnemu.reporting
from mnemu.jobs import job, summarise_step
with job(None, 1):
    summarise_step([{str(record)!r}], {str(tmp_path / "summary.csv")!r})
assert "torch" not in sys.modules, "torch was imported"
print(json.dumps(list(csv.DictReader(open({str(tmp_path / "summary.csv")!r})))))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == [{"benchmark": "b",
                                                           "seconds.total": "1.5"}]


@pytest.mark.parametrize("fails", [False, True])
def test_a_script_job_ends_its_process_once_its_step_succeeds(tmp_path, fails):
    """exit_when_done skips Python's teardown only after a step that succeeded: its output, log
    and printed lines are all there, and nothing after the step runs; a failed step exits as
    usual, with its error in the log."""
    out, log_file = tmp_path / "out.json", tmp_path / "step.log"
    code = f"""
import logging
import torch
from mnemu.errors import MnemuError
from mnemu.files import write_json
from mnemu.jobs import job
with job({str(log_file)!r}, 1, exit_when_done=True):
    print("inside", end="")
    write_json({str(out)!r}, {{"sum": torch.ones(3).sum().item()}})
    logging.getLogger("mnemu").info("step done")
    if {fails}:
        raise MnemuError("the step failed on purpose")
print("after the step")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    log_text = log_file.read_text()
    assert "step done" in log_text and json.loads(out.read_text()) == {"sum": 3.0}
    assert result.stdout.startswith("inside")
    if fails:
        assert result.returncode == 1 and "the step failed on purpose" in log_text
        assert "MnemuError" in result.stderr and "after the step" not in result.stdout
    else:
        assert result.returncode == 0, result.stderr
        assert result.stdout == "inside" and result.stderr == ""


def test_the_package_exports_each_name_from_its_module():
    import importlib

    import mnemu
    from mnemu import forgetting

    assert sorted(mnemu.__all__) == sorted(mnemu._MODULE_OF)
    for name in mnemu.__all__:
        module = importlib.import_module(f"mnemu.{mnemu._MODULE_OF[name]}")
        assert getattr(mnemu, name) is getattr(module, name), name
    assert mnemu.forget is forgetting.forget  # the function, not the module it lives in
    with pytest.raises(AttributeError, match="no attribute 'forgets'"):
        mnemu.forgets


def test_classes_tag_is_one_spelling():
    assert classes_tag([5, 0, 2]) == "0+2+5" and classes_tag([1]) == "1"


def test_baseline_step_records_the_method_its_timer_and_the_run(trained):
    out = trained / "ssd.json"
    baseline_step(str(trained / "model.pt"), "ssd", "0", {"full_data_order": "dataset"}, RUN,
                  str(trained / "data"), str(out))
    record = json.loads(out.read_text())
    assert {k: record[k] for k in RUN} == RUN
    assert (record["method"], record["forget"], record["forget_classes"]) == ("ssd", "0", [0])
    assert record["settings"]["full_data_order"] == "dataset" and record["settings"]["alpha"] == 10
    assert record["timer"]["seconds"] > 0 and record["timer"]["peak_memory_bytes"] > 0
    # before: the model handed in, on the test split
    checkpoint = load_checkpoint(trained / "model.pt")
    data = checkpoint.dataset(str(trained / "data"))
    before = evaluate(checkpoint.model, data.test, [0], data.num_classes)
    assert record["before"]["A_R"] == pytest.approx(before["A_R"]) and "E_F" in record["after"]
    assert "unsupported" not in record


def test_an_unsupported_baseline_writes_its_reason_instead_of_failing(trained):
    out = trained / "erm_ktp.json"
    baseline_step(str(trained / "model.pt"), "erm_ktp", "0", {}, RUN, str(trained / "data"),
                  str(out))
    record = json.loads(out.read_text())
    assert record["method"] == "erm_ktp" and "CNNs only" in record["unsupported"]
    assert "after" not in record and "timer" not in record


def test_retraining_keeps_its_model_and_trains_with_the_run_seed(trained):
    settings = train_settings(BENCH, RUN)
    assert (settings["seed"], settings["t_mix"], settings["epochs"]) == (3, 0.2, 8)
    baseline_step(str(trained / "model.pt"), "retrain", "0", settings, RUN,
                  str(trained / "data"), str(trained / "retrain.json"),
                  str(trained / "retrain.pt"))
    record = json.loads((trained / "retrain.json").read_text())
    assert record["settings"]["seed"] == 3 and record["settings"]["epochs"] == 8
    assert record["after"]["E_F"] == 100  # never shown class 0: never predicts it
    assert record["after"]["A_R"] > 50
    retrained = load_checkpoint(trained / "retrain.pt")
    assert retrained.training["forget_classes"] == [0]
def test_appendix_steps_write_their_records(trained, tmp_path):
    """Membership, output rate, blended codes and class losses on a trained model: each record
    carries the run; the blend at 100 % is the code itself, so the model then outputs its class."""
    from mnemu.pipeline import backdoor_step, class_losses_step, membership_step, output_rate_step

    tmp = trained
    model, data = str(tmp / "model.pt"), str(tmp / "data")
    membership_step({"trained": model, "retrained": model}, "0", data, RUN,
                    str(tmp_path / "mia.csv"), str(tmp_path / "losses.csv"))
    aucs = rows(tmp_path / "mia.csv")
    assert {(r["model"], r["attack"]) for r in aucs} == {
        (m, a) for m in ("trained", "retrained") for a in ("loss_threshold", "logistic")}
    assert all(0.0 <= float(r["auc"]) <= 1.0 and r["seed"] == str(RUN["seed"]) for r in aucs)
    assert {r["split"] for r in rows(tmp_path / "losses.csv")} == {"train", "test"}
    output_rate_step({"forgotten": model}, "0", data, RUN, str(tmp_path / "rate.csv"))
    assert 0.0 <= float(rows(tmp_path / "rate.csv")[0]["output_rate"]) <= 100.0
    backdoor_step(model, 0, [0.0, 1.0], data, RUN, str(tmp_path / "bd.csv"),
                  str(tmp_path / "bd.pt"), num_images=2)
    by_ratio = {float(r["ratio"]): r for r in rows(tmp_path / "bd.csv")}
    # at 100 % every input is class 0's code: the model answers as it does for that code
    assert float(by_ratio[1.0]["code_class_rate"]) == 100.0
    images = torch.load(tmp_path / "bd.pt", weights_only=True)["images"]
    assert images.shape[:2] == (2, 2) and 0.0 <= images.min() and images.max() <= 1.0
    class_losses_step(model, {"unused": [0]}, data, RUN, str(tmp_path / "cl.csv"))
    groups = {r["group"] for r in rows(tmp_path / "cl.csv")}
    assert groups == {"unused", "remaining"}
