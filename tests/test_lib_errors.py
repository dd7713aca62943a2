"""Bad input: each gives a one-line MnemuError naming the problem and the fix, and writes nothing,
through the library and through the CLI (exit status 2, ``mnemu <cmd>: error: ...`` on stderr)."""

from __future__ import annotations

import re
import shutil

import pytest
import torch

import mnemu
from mnemu import MnemuError, load_checkpoint
from mnemu.cli import main


class Payload:
    """Unpickling this calls ``open(marker, "w")``: a file appears if the pickle is executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def one_line(err: BaseException) -> str:
    message = str(err)
    assert message and "\n" not in message
    return message


# --- bad checkpoint files, written on purpose ----------------------------------------------------


def _raw(path) -> dict:
    return torch.load(path, weights_only=True)


def make_bad_checkpoint(kind: str, good: str, folder) -> tuple:
    """Write a bad checkpoint of ``kind`` into ``folder``; return (path, message regex)."""
    path = folder / f"{kind}.pt"
    if kind == "plain_state_dict":
        torch.save(load_checkpoint(good).model.state_dict(), path)
        return path, r"is not a mnemu checkpoint \(a plain state_dict\?\); train with mnemu train"
    if kind == "empty_codes":
        raw = _raw(good)
        raw["codes"] = torch.empty(0)
        torch.save(raw, path)
        return path, "holds no mnemonic codes; forgetting needs the codes .* retrain with codes"
    if kind == "no_codes":
        raw = _raw(good)
        del raw["codes"]
        torch.save(raw, path)
        return path, "holds no mnemonic codes"
    if kind == "truncated":
        data = open(good, "rb").read()
        path.write_bytes(data[: len(data) // 2])
        return path, "cannot be read .*truncated, corrupted or not a torch file: copy it again or retrain"
    if kind == "not_torch":
        path.write_text("hello\n")
        return path, "cannot be read"
    if kind == "other_architecture":
        raw = _raw(good)
        other = mnemu.create_model("resnet18_cifar", 4, (1, 8, 8), width=4)
        raw["state_dict"] = other.state_dict()
        torch.save(raw, path)
        return path, "does not fit its model .*missing.*the model name, classes or input shape differ"
    if kind == "other_class_count":
        raw = _raw(good)
        raw["model_spec"] = {**raw["model_spec"], "num_classes": 5}
        torch.save(raw, path)
        return path, (r"does not fit its model \(fc2\.(weight is \(4, 32\), model wants \(5, 32\)|"
                      r"bias is \(4,\), model wants \(5,\))\)")
    if kind == "other_codes_shape":
        raw = _raw(good)
        raw["codes"] = torch.rand(4, 1, 4, 4)
        torch.save(raw, path)
        return path, r"has codes of shape \(4, 1, 4, 4\) for a model of 4 classes .*damaged: retrain"
    if kind == "pickled_object":
        raw = _raw(good)
        raw["data"] = {"name": "synthetic", "payload": Payload(folder / "EXECUTED")}
        torch.save(raw, path)
        return path, "holds pickled Python objects, which mnemu does not load .loading them could run code."
    if kind == "missing":
        return path, r"does not exist; train a model first \(mnemu train\)"
    raise AssertionError(kind)


BAD_KINDS = ["plain_state_dict", "empty_codes", "no_codes", "truncated", "not_torch",
             "other_architecture", "other_class_count", "other_codes_shape", "pickled_object",
             "missing"]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_load_checkpoint_rejects(kind, tmp_path, lib_tiny_checkpoint):
    path, message = make_bad_checkpoint(kind, lib_tiny_checkpoint, tmp_path)
    with pytest.raises(MnemuError, match=message) as err:
        load_checkpoint(path)
    assert str(path) in one_line(err.value)
    assert not (tmp_path / "EXECUTED").exists()


def test_pickled_payload_would_run_without_weights_only(tmp_path, lib_tiny_checkpoint):
    """The control for the test above: the payload is live, so only weights_only stops it."""
    path, _ = make_bad_checkpoint("pickled_object", lib_tiny_checkpoint, tmp_path)
    with pytest.raises(MnemuError):
        load_checkpoint(path)
    assert not (tmp_path / "EXECUTED").exists()
    torch.load(path, weights_only=False)
    assert (tmp_path / "EXECUTED").exists()


def test_good_checkpoint_loads(lib_tiny_checkpoint):
    checkpoint = load_checkpoint(lib_tiny_checkpoint)
    assert checkpoint.codes.shape == (4, 1, 8, 8)


# --- the CLI --------------------------------------------------------------------------------------


def run_cli(capsys, argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_cli_error(capsys, argv, message, outputs=()):
    """Exit status 2, one stderr line ``mnemu <cmd>: error: ...`` matching ``message``, and none of
    ``outputs`` (nor any temporary file beside them) exists afterwards."""
    code, _, err = run_cli(capsys, argv)
    assert code == 2, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith(f"mnemu {argv[0]}: error: "), err

    assert re.search(message, lines[0]), (message, err)
    for out in outputs:
        assert not out.exists(), out
        if out.parent.exists():
            assert not [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}")]
    return lines[0]


def _forget_argv(checkpoint, out, classes=("0",), lambda1="1e-3", lambda2="10"):
    # --lambda1=VALUE: argparse takes "-1e-3" after a space for an option
    return ["forget", checkpoint, "--classes", *classes, f"--lambda1={lambda1}",
            f"--lambda2={lambda2}", "--out", out, "--device", "cpu"]


def _grid_argv(checkpoint, out, classes=("0",), lambda1=("1e-3",), lambda2=("10",)):
    return ["grid", checkpoint, "--forget-classes", *classes, "--lambda1", *lambda1, "--lambda2",
            *lambda2, "--out", out, "--device", "cpu"]


@pytest.mark.parametrize("kind", BAD_KINDS)
@pytest.mark.parametrize("command", ["forget", "grid", "evaluate"])
def test_cli_rejects_bad_checkpoints(kind, command, tmp_path, capsys, lib_tiny_checkpoint):
    path, message = make_bad_checkpoint(kind, lib_tiny_checkpoint, tmp_path)
    out = tmp_path / "out" / "result"
    if command == "forget":
        argv = _forget_argv(path, out)
    elif command == "grid":
        argv = _grid_argv(path, out)
    else:
        argv = ["evaluate", path, "--forget-classes", "0", "--json", out, "--device", "cpu"]
    assert_cli_error(capsys, argv, message, [out])
    assert not (tmp_path / "EXECUTED").exists()


@pytest.fixture
def checkpoint_copy(tmp_path, lib_tiny_checkpoint):
    path = tmp_path / "model.pt"
    shutil.copy(lib_tiny_checkpoint, path)
    return path


@pytest.mark.parametrize("classes", [["7"], ["4"], ["-1"], ["0", "9"]])
def test_cli_forget_class_not_in_model(classes, tmp_path, capsys, checkpoint_copy):
    out = tmp_path / "forgot.pt"
    record = tmp_path / "record.json"
    bad = [c for c in classes if not 0 <= int(c) < 4][0]
    assert_cli_error(capsys, _forget_argv(checkpoint_copy, out, classes) + ["--record", record],
                     rf"forget class {bad} is not in the model: its classes are 0\.\.3",
                     [out, record])


def test_cli_forget_every_class(tmp_path, capsys, checkpoint_copy):
    out = tmp_path / "forgot.pt"
    assert_cli_error(capsys, _forget_argv(checkpoint_copy, out, ["0", "1", "2", "3"]),
                     "cannot forget every class", [out])


@pytest.mark.parametrize("lambda1, lambda2, name", [("0", "10", "lambda1"), ("-1e-3", "10", "lambda1"),
                                                    ("1e-3", "0", "lambda2"),
                                                    ("1e-3", "-10", "lambda2")])
def test_cli_forget_non_positive_lambda(lambda1, lambda2, name, tmp_path, capsys, checkpoint_copy):
    out = tmp_path / "forgot.pt"
    assert_cli_error(capsys, _forget_argv(checkpoint_copy, out, lambda1=lambda1, lambda2=lambda2),
                     f"{name} must be positive, got .*; the paper searches lambda1 in 1e-6..1", [out])


def test_cli_grid_bad_class_and_lambda(tmp_path, capsys, checkpoint_copy):
    out = tmp_path / "grid.csv"
    assert_cli_error(capsys, _grid_argv(checkpoint_copy, out, classes=["6"]),
                     "forget class 6 is not in the model", [out])
    assert_cli_error(capsys, _grid_argv(checkpoint_copy, out, lambda2=["10", "0"]),
                     "lambda2 must be positive", [out])


def test_cli_evaluate_bad_class(tmp_path, capsys, checkpoint_copy):
    out = tmp_path / "metrics.json"
    assert_cli_error(capsys, ["evaluate", checkpoint_copy, "--forget-classes", "5", "--json", out],
                     "forget class 5 is not in the model", [out])


@pytest.mark.parametrize("t_mix", ["1.5", "-0.1"])
def test_cli_train_t_mix_outside_unit_interval(t_mix, tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert_cli_error(capsys, ["train", "--dataset", "synthetic", "--model", "mlp", "--t-mix", t_mix,
                              "--epochs", "1", "--out", out, "--device", "cpu"],
                     rf"t_mix must be in \[0, 1\], got {t_mix}", [out])
    assert list(tmp_path.iterdir()) == []


def test_cli_train_unknown_dataset_and_model(tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert_cli_error(capsys, ["train", "--dataset", "nope", "--model", "mlp", "--out", out],
                     "unknown data set 'nope'; use one of .*fashion_mnist", [out])
    assert_cli_error(capsys, ["train", "--dataset", "synthetic", "--model", "nope", "--out", out,
                              "--data-option", "train_per_class=2", "--data-option",
                              "test_per_class=1", "--epochs", "1"],
                     "unknown model 'nope'; use one of .*mlp", [out])
    assert_cli_error(capsys, ["train", "--dataset", "synthetic", "--model", "mlp", "--out", out,
                              "--data-option", "oops"], "option 'oops' is not key=value", [out])
    assert list(tmp_path.iterdir()) == []


def test_cli_out_is_a_directory(tmp_path, capsys, checkpoint_copy):
    folder = tmp_path / "folder"
    folder.mkdir()
    code, _, err = run_cli(capsys, _forget_argv(checkpoint_copy, folder))
    assert code == 2 and "is a directory; give a file name" in err
    assert list(folder.iterdir()) == []


def test_cli_failure_keeps_an_existing_output(tmp_path, capsys, checkpoint_copy):
    """A rejected run leaves an earlier output as it was (nothing is half written)."""
    out = tmp_path / "forgot.pt"
    out.write_bytes(b"earlier result")
    code, _, _ = run_cli(capsys, _forget_argv(checkpoint_copy, out, lambda1="0"))
    assert code == 2 and out.read_bytes() == b"earlier result"
