"""Models of one's own (mnemu.register_model) through training, checkpoints and the command line
in a new process; a timm model and torchvision's ResNeXt-50 trained and reloaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import mnemu
from mnemu import MnemuError, TrainSettings

SRC = Path(__file__).resolve().parents[1] / "src"

PLUGIN = textwrap.dedent("""
    import torch
    from torch import nn
    import mnemu

    class TinyNet(nn.Module):
        def __init__(self, num_classes, channels, hidden):
            super().__init__()
            self.conv = nn.Conv2d(channels, 4, 3, padding=1)
            self.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.ReLU(),
                                      nn.Linear(hidden, num_classes))

        def forward(self, x):
            return self.head(torch.relu(self.conv(x)))

    def build(num_classes, input_shape, pretrained, hidden=16):
        net = TinyNet(num_classes, input_shape[0], hidden)
        net(torch.zeros(1, *input_shape))  # materialise the lazy layer
        return net

    mnemu.register_model("tiny_net", build)
""")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """The folder of a module ``my_models`` that registers ``tiny_net``; imported here too (the
    registry is restored afterwards)."""
    (tmp_path / "my_models.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(mnemu.models, "_REGISTRY", dict(mnemu.models._REGISTRY))
    sys.modules.pop("my_models", None)
    mnemu.load_plugins(["my_models"])
    yield tmp_path
    sys.modules.pop("my_models", None)


def _cli(args, cwd, env_extra=None):
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    env.pop("MNEMU_PLUGINS", None)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "mnemu.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_registered_model_trains_forgets_and_evaluates_in_new_processes(plugin, lib_synthetic_options,
                                                                       lib_settings):
    assert "tiny_net" in mnemu.model_names()
    out = plugin / "tiny.pt"
    trained = mnemu.train_checkpoint("synthetic", "tiny_net", lib_settings(epochs=10, lr=0.1), out,
                                     data_options=lib_synthetic_options,
                                     model_options={"hidden": 24}, device="cpu")
    assert trained.model.head[1].out_features == 24  # the option reached the builder
    reloaded = mnemu.load_checkpoint(out)
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(reloaded.model.eval()(x), trained.model.eval()(x))

    # a new process knows tiny_net only through the plugin module
    unknown = _cli(["evaluate", str(out), "--forget-classes", "0"], plugin)
    assert unknown.returncode == 2
    assert unknown.stderr.count("\n") == 1 and "unknown model 'tiny_net'" in unknown.stderr
    assert "--plugin MODULE or MNEMU_PLUGINS=MODULE" in unknown.stderr

    forgot = _cli(["forget", str(out), "--classes", "0", "--lambda1", "1e-3", "--lambda2", "10",
                   "--out", str(plugin / "forgot.pt"), "--plugin", "my_models", "--device", "cpu"],
                  plugin, {"PYTHONPATH": f"{SRC}{os.pathsep}{plugin}"})
    assert forgot.returncode == 0, forgot.stderr
    evaluated = _cli(["evaluate", str(plugin / "forgot.pt"), "--json", str(plugin / "m.json"),
                      "--device", "cpu"],
                     plugin, {"PYTHONPATH": f"{SRC}{os.pathsep}{plugin}",
                              "MNEMU_PLUGINS": "my_models"})
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads((plugin / "m.json").read_text())
    # the same numbers as forgetting and evaluating here, in this process
    forgotten, _ = mnemu.forget(reloaded.model, reloaded.codes, [0], 1e-3, 10)
    data = reloaded.dataset()
    expected = mnemu.evaluate(forgotten, data.test, [0], data.num_classes)
    assert metrics["A_R"] == pytest.approx(expected["A_R"]) and metrics["E_F"] == pytest.approx(
        expected["E_F"])


def test_bad_registrations_and_plugins(plugin):
    with pytest.raises(MnemuError, match="built into mnemu"):
        mnemu.register_model("mlp", lambda *a: None)
    with pytest.raises(MnemuError, match="cannot be registered"):
        mnemu.register_model("timm:x", lambda *a: None)
    with pytest.raises(MnemuError, match="is not callable"):
        mnemu.register_model("x", 3)
    with pytest.raises(MnemuError, match="cannot import plugin module 'no_such_module_x'"):
        mnemu.load_plugins(["no_such_module_x"])


# --- a timm model and torchvision's ResNeXt-50, trained and reloaded ----------------------------


@pytest.mark.parametrize("model", ["timm:resnet18", "resnext50_32x4d"])
def test_timm_and_resnext_train_with_codes_and_reload(tmp_path, model):
    out = tmp_path / "m.pt"
    options = {"num_classes": 3, "image_shape": [3, 32, 32], "train_per_class": 4,
               "test_per_class": 2}
    trained = mnemu.train_checkpoint("synthetic", model, TrainSettings(t_mix=0.5, batch_size=6,
                                                                       steps=2, seed=0),
                                     out, data_options=options, device="cpu")
    assert trained.training["history"][-1]["steps"] == 2
    reloaded = mnemu.load_checkpoint(out)
    assert reloaded.model_spec["name"] == model
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        expected = trained.model.eval()(x)
        assert expected.shape == (2, 3)
        assert torch.equal(reloaded.model.eval()(x), expected)
    torch.manual_seed(0)  # the initial weights train_checkpoint started from (seed 0)
    initial = mnemu.create_model(model, 3, (3, 32, 32)).state_dict()
    assert not torch.equal(initial["fc.weight"], reloaded.model.state_dict()["fc.weight"])
