"""The ``mnemu`` command line: help texts, and train -> forget -> evaluate -> grid on a tiny
generated data set through ``mnemu.cli.main``."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mnemu
from mnemu import load_checkpoint
from mnemu.cli import PAPER_LAMBDA1, PAPER_LAMBDA2, main

COMMANDS = ["datasets", "prepare", "train", "forget", "evaluate", "grid"]


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: mnemu")
    assert "examples:" in out and "mnemu train --dataset fashion_mnist" in out
    for command in COMMANDS:
        assert command in out


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help(capsys, command):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mnemu {command}")
    if command in ("train", "forget", "grid"):
        assert "--out" in out


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "usage: mnemu" in capsys.readouterr().err


def test_console_script_and_module_entry_points():
    script = Path(sys.executable).with_name("mnemu")
    assert script.exists(), "the mnemu console script is not installed"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for argv in ([str(script), "--help"], [sys.executable, "-m", "mnemu.cli", "forget", "--help"]):
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: mnemu")


def test_the_console_entry_ends_the_process_once_the_command_is_done(tmp_path,
                                                                   lib_tiny_checkpoint):
    """``mnemu`` (``run``) skips Python's teardown after a command, successful or not: what the
    command wrote and printed is complete, its exit code is main's, and no exit handler runs."""
    script = ("import atexit, sys; atexit.register(print, 'teardown ran'); "
              "from mnemu.cli import run; sys.argv[1:] = {!r}; run()")

    def mnemu_command(*argv):
        return subprocess.run([sys.executable, "-c", script.format([str(a) for a in argv])],
                              capture_output=True, text=True, timeout=300,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})

    out_path, record_path = tmp_path / "forgot.pt", tmp_path / "record.json"
    done = mnemu_command("forget", lib_tiny_checkpoint, "--classes", "1", "--lambda", "auto",
                         "--out", out_path, "--record", record_path, "--device", "cpu")
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith(f"wrote {out_path}")
    assert "teardown ran" not in done.stdout
    assert load_checkpoint(out_path).forgotten["lambda_rule"] == "auto"
    assert json.loads(record_path.read_text())["lambda_rule"] == "auto"
    failed = mnemu_command("forget", lib_tiny_checkpoint, "--classes", "9", "--lambda", "auto",
                           "--out", tmp_path / "not.pt")
    assert failed.returncode == 2 and "mnemu forget: error: forget class 9" in failed.stderr
    assert "teardown ran" not in failed.stdout and not (tmp_path / "not.pt").exists()


def test_datasets_and_prepare(capsys):
    code, out, _ = run(capsys, "datasets")
    assert code == 0
    assert "fashion_mnist" in out and "resnet18_cifar" in out and "timm:<name>" in out
    code, out, _ = run(capsys, "prepare", "digits", "--data-option", "max_train_per_class=3")
    assert code == 0
    manifest = json.loads(out)
    assert manifest["train_size"] == 30 and manifest["train_per_class"] == [3] * 10


DATA_OPTIONS = ["--data-option", "num_classes=4", "--data-option", "image_shape=[1,8,8]",
                "--data-option", "train_per_class=40", "--data-option", "test_per_class=20"]


def test_train_forget_evaluate_grid(tmp_path, capsys, lib_tiny_checkpoint):
    model_path = tmp_path / "model.pt"
    data_root = tmp_path / "data"

    # --- train (the same settings as the lib_tiny_checkpoint fixture: the same weights)
    code, out, err = run(capsys, "train", "--dataset", "synthetic", "--model", "mlp",
                         "--model-option", "hidden=32", *DATA_OPTIONS, "--t-mix", "0.2",
                         "--epochs", "10", "--batch-size", "16", "--lr", "0.1", "--seed", "0",
                         "--device", "cpu", "--data-root", data_root, "--out", model_path)
    assert code == 0, err
    lines = out.strip().split("\n")
    assert lines[0].startswith("training mlp on synthetic with codes (t_mix 0.2) on cpu")
    assert [line.split()[1] for line in lines[1:-1]] == [f"{e}/10" for e in range(1, 11)]
    assert lines[-1].startswith(f"wrote {model_path}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]  # no state, no data root
    trained = load_checkpoint(model_path)
    reference = load_checkpoint(lib_tiny_checkpoint)
    for k, v in reference.model.state_dict().items():
        assert torch.equal(trained.model.state_dict()[k], v), k
    assert trained.training["settings"]["lr"] == 0.1
    assert trained.data["options"]["train_per_class"] == 40

    # --- forget
    forgot_path, record_path = tmp_path / "forgot0.pt", tmp_path / "record.json"
    code, out, err = run(capsys, "forget", model_path, "--classes", "0", "--lambda1", "1e-3",
                         "--lambda2", "10", "--out", forgot_path, "--record", record_path,
                         "--device", "cpu")
    assert code == 0, err
    lines = out.strip().split("\n")
    assert lines[0].startswith("forgot classes [0] (class0) in ")
    assert "sign" in lines[0] and "on the codes: A_R" in lines[0]
    assert lines[-1] == f"wrote {forgot_path}"
    forgotten = load_checkpoint(forgot_path)
    record = json.loads(record_path.read_text())
    assert record["forget_classes"] == [0] and record["lambda1"] == 1e-3
    assert record["lambda2"] == 10 and record["sign"] in ("+", "-")
    assert forgotten.forgotten["sign"] == record["sign"]
    # Independently of the library: w' = w ± alpha * eta with eta >= 0, so every weight moved
    # in the recorded direction, by at most alpha_l * max(eta_l), and some moved.
    direction = 1.0 if record["sign"] == "+" else -1.0
    moved = False
    for name, after in forgotten.model.named_parameters():
        delta = (after.detach() - dict(trained.model.named_parameters())[name].detach()) * direction
        assert bool((delta >= 0).all()), name
        moved = moved or bool((delta > 0).any())
    assert moved
    assert len(forgotten.forgotten["history"]) == 1
    assert torch.equal(forgotten.codes, trained.codes)
    assert forgotten.training == trained.training and forgotten.data == trained.data
    expected, _ = mnemu.forget(trained.model, trained.codes, [0], 1e-3, 10)
    for k, v in expected.state_dict().items():
        assert torch.equal(forgotten.model.state_dict()[k], v), k

    # forgetting again stacks the history
    twice_path = tmp_path / "forgot01.pt"
    code, out, err = run(capsys, "forget", forgot_path, "--classes", "1", "--lambda1", "1e-3",
                         "--lambda2", "10", "--out", twice_path, "--fisher-method", "vmap",
                         "--device", "cpu")
    assert code == 0, err
    twice = load_checkpoint(twice_path).forgotten
    assert [h["forget_classes"] for h in twice["history"]] == [[0], [1]]
    assert twice["fisher_method"] == "vmap"

    # --- evaluate: the forget classes default to those the checkpoint forgot
    metrics_path = tmp_path / "metrics.json"
    code, out, err = run(capsys, "evaluate", forgot_path, "--json", metrics_path, "--device", "cpu",
                         "--data-root", data_root)
    assert code == 0, err
    data = mnemu.load_dataset("synthetic", num_classes=4, image_shape=[1, 8, 8],
                              train_per_class=40, test_per_class=20)
    expected_metrics = mnemu.evaluate(forgotten.model, data.test, [0], 4)
    lines = out.strip().split("\n")
    assert lines[0] == (f"A_R {expected_metrics['A_R']:.2f}  E_F {expected_metrics['E_F']:.2f}  "
                        f"(forget classes [0])")
    assert lines[1] == f"test accuracy {expected_metrics['accuracy']:.2f}%"
    assert len(lines) == 2 + 4 and "class3" in lines[-1]
    metrics = json.loads(metrics_path.read_text())
    assert metrics["A_R"] == pytest.approx(expected_metrics["A_R"])
    assert metrics["E_F"] == pytest.approx(expected_metrics["E_F"])
    assert metrics["forget_classes"] == [0]

    code, out, _ = run(capsys, "evaluate", model_path, "--device", "cpu")
    assert code == 0 and out.startswith("test accuracy")  # nothing forgotten: no A_R / E_F

    # --- grid: two lambda1 by two lambda2, Fisher once
    grid_path = tmp_path / "grid.csv"
    code, out, err = run(capsys, "grid", model_path, "--forget-classes", "0", "--lambda1", "1e-4",
                         "1e-2", "--lambda2", "1", "100", "--out", grid_path, "--device", "cpu")
    assert code == 0, err
    lines = out.strip().split("\n")
    assert [line.split()[0] for line in lines[:4]] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert lines[4].startswith("4 points in ") and "best A_R + E_F at lambda1" in lines[4]
    assert lines[5] == f"wrote {grid_path}"
    with open(grid_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(float(r["lambda1"]), float(r["lambda2"])) for r in rows] == [
        (1e-4, 1.0), (1e-4, 100.0), (1e-2, 1.0), (1e-2, 100.0)]
    assert {"sign", "tie", "code_A_R", "code_E_F", "A_R", "E_F"} <= set(rows[0])
    single, _ = mnemu.forget(trained.model, trained.codes, [0], 1e-2, 100.0)
    single_metrics = mnemu.evaluate(single, data.test, [0], 4)
    assert float(rows[3]["A_R"]) == pytest.approx(single_metrics["A_R"])
    assert float(rows[3]["E_F"]) == pytest.approx(single_metrics["E_F"])
    best = max(rows, key=lambda r: float(r["A_R"]) + float(r["E_F"]))
    assert f"lambda1 {float(best['lambda1']):g}, lambda2 {float(best['lambda2']):g}" in lines[4]

    # the paper's grid by default: 7 x 7
    default_grid = tmp_path / "paper-grid.csv"
    code, out, err = run(capsys, "grid", model_path, "--forget-classes", "0", "--out", default_grid,
                         "--device", "cpu")
    assert code == 0, err
    with open(default_grid, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 49
    assert sorted({float(r["lambda1"]) for r in rows}) == PAPER_LAMBDA1
    assert sorted({float(r["lambda2"]) for r in rows}) == PAPER_LAMBDA2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["model.pt", "forgot0.pt", "record.json", "forgot01.pt", "metrics.json", "grid.csv",
         "paper-grid.csv"])


def test_forget_with_lambda_auto(tmp_path, capsys, lib_tiny_checkpoint):
    """--lambda auto: lambda chosen from the codes; the record says which and why; the model is
    the library's auto forget of the same checkpoint; mixing it with --lambda1 is refused."""
    out_path, record_path = tmp_path / "auto.pt", tmp_path / "auto.json"
    code, out, err = run(capsys, "forget", lib_tiny_checkpoint, "--classes", "1", "--lambda",
                         "auto", "--out", out_path, "--record", record_path, "--device", "cpu")
    assert code == 0, err
    record = json.loads(record_path.read_text())
    assert record["lambda_rule"] == "auto" and record["auto"]["tried"]
    assert f"lambda auto: lambda1 {record['lambda1']:.3g}" in out
    trained = load_checkpoint(lib_tiny_checkpoint)
    expected, library = mnemu.forget(trained.model, trained.codes, [1], lambdas="auto")
    assert (library["lambda1"], library["lambda2"]) == (record["lambda1"], record["lambda2"])
    for k, v in expected.state_dict().items():
        assert torch.equal(load_checkpoint(out_path).model.state_dict()[k], v), k
    code, _, err = run(capsys, "forget", lib_tiny_checkpoint, "--classes", "1", "--lambda",
                       "auto", "--lambda1", "1e-3", "--out", tmp_path / "x.pt")
    assert code != 0 and "--lambda takes only 'auto'" in err
    code, _, err = run(capsys, "forget", lib_tiny_checkpoint, "--classes", "1",
                       "--out", tmp_path / "y.pt")
    assert code != 0 and "no lambdas given" in err
