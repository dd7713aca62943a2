"""Resuming training mid-epoch: after a save every N steps, after SIGKILL / SIGTERM (which saves
the state at the step it comes), with
augmentation and batch norm (whose results depend on every random draw and every batch)."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import mnemu
from mnemu import TrainSettings, make_codes

SRC = Path(__file__).resolve().parents[1] / "src"

#: 4 classes of 3x8x8 generated images, 40 per class, with crop+flip augmentation.
AUGMENTED = {"num_classes": 4, "image_shape": [3, 8, 8], "train_per_class": 40,
             "test_per_class": 5, "seed": 0, "augment": True}


class Interrupt(Exception):
    pass


def _fresh_model():
    torch.manual_seed(0)
    return mnemu.create_model("resnet18_cifar", 4, (3, 8, 8), width=4)


def _stop_at_forward(model, calls):
    """Make the model raise on its ``calls``-th training forward pass (a crash mid-epoch)."""
    count = [0]

    def hook(module, args):
        if module.training:
            count[0] += 1
            if count[0] == calls:
                raise Interrupt

    return model.register_forward_pre_hook(hook)


def _count_forwards(model):
    count = [0]
    model.register_forward_pre_hook(lambda m, a: count.__setitem__(0, count[0] + m.training))
    return count


# 160 samples, batch 16: 10 steps per epoch; 25 steps = 3 epochs, the last cut short
@pytest.mark.parametrize("crash_at_step, saved_epoch, saved_batches", [(5, 0, 3), (15, 1, 2)])
def test_steps_run_resumes_mid_epoch_exactly(tmp_path, crash_at_step, saved_epoch, saved_batches):
    data = mnemu.load_dataset("synthetic", **AUGMENTED)
    codes = make_codes(4, (3, 8, 8), seed=0)
    settings = TrainSettings(t_mix=0.3, batch_size=16, steps=25, save_every_steps=3, seed=0,
                             lr=0.05, schedule="cosine")
    reference = _fresh_model()
    ref_history = mnemu.train_with_codes(reference, data.train, codes, settings, device="cpu")

    state_path = tmp_path / "run.state"
    crashing = _fresh_model()
    _stop_at_forward(crashing, crash_at_step)
    with pytest.raises(Interrupt):
        mnemu.train_with_codes(crashing, data.train, codes, settings, device="cpu",
                               state_path=state_path)
    state = torch.load(state_path, weights_only=True)["resume"]
    assert (state["epoch"], state["within"]["batches"]) == (saved_epoch, saved_batches)

    resumed = mnemu.create_model("resnet18_cifar", 4, (3, 8, 8), width=4)  # other weights
    forwards = _count_forwards(resumed)
    # how often the state is saved is no part of the result: a state saved every 3 steps resumes
    history = mnemu.train_with_codes(resumed, data.train, codes,
                                     dataclasses.replace(settings, save_every_steps=7),
                                     device="cpu", state_path=state_path)
    assert forwards[0] == 25 - (10 * saved_epoch + saved_batches)  # it resumed mid-epoch
    for name, value in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], value), name
    assert [(h["steps"], h["loss"], h["train_accuracy"]) for h in history] == \
        [(h["steps"], h["loss"], h["train_accuracy"]) for h in ref_history]


def test_save_every_steps_does_not_change_the_result(tmp_path):
    data = mnemu.load_dataset("synthetic", **AUGMENTED)
    codes = make_codes(4, (3, 8, 8), seed=0)
    results = []
    for every in (None, 4):
        model = _fresh_model()
        settings = TrainSettings(t_mix=0.3, batch_size=16, epochs=2, save_every_steps=every)
        mnemu.train_with_codes(model, data.train, codes, settings, device="cpu",
                               state_path=tmp_path / f"{every}.state")
        results.append(model.state_dict())
    for name in results[0]:
        assert torch.equal(results[0][name], results[1][name]), name


def test_save_every_steps_must_be_positive():
    with pytest.raises(mnemu.MnemuError, match="save_every_steps must be at least 1"):
        TrainSettings(save_every_steps=0)


# --- a process killed mid-epoch -----------------------------------------------------------------

_TRAIN_SCRIPT = textwrap.dedent("""
    import logging
    import sys
    import torch
    import mnemu

    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)  # the same kernels in every process
    mnemu.train_checkpoint(
        "synthetic", "resnet18_cifar",
        mnemu.TrainSettings(t_mix=0.3, epochs=3, batch_size=16, lr=0.05, save_every_steps=None),
        sys.argv[1], data_options={data!r}, model_options={{"width": 4}}, device="cpu")
""").format(data={**AUGMENTED, "train_per_class": 100})


def _train_process(tmp_path, out) -> subprocess.Popen:
    script = tmp_path / "train_script.py"
    script.write_text(_TRAIN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(script), str(out)], env=env,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def uninterrupted_weights(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uninterrupted")
    process = _train_process(tmp, tmp / "ref.pt")
    assert process.wait(timeout=120) == 0, process.stderr.read()
    return mnemu.load_checkpoint(tmp / "ref.pt").model.state_dict()


@pytest.mark.slow  # three training processes, about 10 s on an idle 2-core machine
@pytest.mark.parametrize("kill_with", [signal.SIGKILL, signal.SIGTERM])
def test_killed_mid_epoch_then_rerun_equals_uninterrupted(tmp_path, uninterrupted_weights,
                                                         kill_with):
    out = tmp_path / "m.pt"
    state = tmp_path / "m.pt.state"
    process = _train_process(tmp_path, out)
    deadline = time.monotonic() + 120
    while not state.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(kill_with)  # first epoch saved: the second has just begun
    assert process.wait(timeout=60) == -kill_with, process.stderr.read()
    assert not out.exists()
    saved = torch.load(state, weights_only=True)["resume"]
    assert saved["epoch"] == 1
    if kill_with == signal.SIGTERM:  # saved at the step it came, mid-epoch (no periodic saves)
        assert saved["within"]["batches"] >= 1
        assert "training stopped by SIGTERM in epoch 2" in process.stderr.read()
        resumed = f"resuming epoch 2 after batch {saved['within']['batches']}"
    else:  # SIGKILL cannot be caught: back to the end of epoch 1
        assert saved["within"] is None
        resumed = "resuming after epoch 1"

    rerun = _train_process(tmp_path, out)
    log = rerun.communicate(timeout=120)[1]
    assert rerun.returncode == 0, log
    assert resumed in log
    weights = mnemu.load_checkpoint(out).model.state_dict()
    for name, value in uninterrupted_weights.items():
        assert torch.equal(weights[name], value), name
    assert not state.exists()


def test_training_uses_deterministic_kernels_and_restores_the_settings(lib_synthetic_options):
    data = mnemu.load_dataset("synthetic", **lib_synthetic_options)
    cudnn = torch.backends.cudnn
    before = (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled())
    seen = []

    def look(record):
        seen.append((cudnn.deterministic, cudnn.benchmark,
                     torch.are_deterministic_algorithms_enabled(),
                     torch.is_deterministic_algorithms_warn_only_enabled(),
                     os.environ.get("CUBLAS_WORKSPACE_CONFIG")))

    mnemu.train_with_codes(mnemu.create_model("mlp", 4, (1, 8, 8), hidden=8), data.train,
                           make_codes(4, (1, 8, 8)), TrainSettings(epochs=1, batch_size=32),
                           device="cpu", progress=look)
    assert seen[0][:4] == (True, False, True, True) and seen[0][4] in (":4096:8", ":16:8")
    assert (cudnn.deterministic, cudnn.benchmark,
            torch.are_deterministic_algorithms_enabled()) == before
