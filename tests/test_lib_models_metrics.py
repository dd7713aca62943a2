"""Models (create_model), metrics (A_R, E_F, per-class accuracy) and atomic files."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import mnemu
from mnemu import MnemuError, create_model, forgetting_metrics, predict
from mnemu.files import atomic_write, write_json


def test_paper_mlp():
    model = create_model("mlp", 10, (1, 28, 28))
    assert (model.fc1.in_features, model.fc1.out_features) == (784, 1000)
    assert (model.fc2.in_features, model.fc2.out_features) == (1000, 10)
    x = torch.rand(3, 1, 28, 28)
    expected = model.fc2(torch.sigmoid(model.fc1(x.flatten(1))))
    assert torch.equal(model(x), expected)
    assert create_model("mlp", 4, (1, 8, 8), hidden=16).fc1.out_features == 16


def test_cifar_resnet18():
    model = create_model("resnet18_cifar", 10, (3, 32, 32), width=8)
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model.modules())
    assert model.conv1.out_channels == 8 and model.fc.in_features == 64
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, 10)
    assert create_model("resnet18_cifar", 3, (1, 8, 8), width=4)(torch.rand(2, 1, 8, 8)).shape == (2, 3)
    default = create_model("resnet18_cifar", 10, (3, 32, 32))
    assert default.conv1.out_channels == 64
    assert sum(p.numel() for p in default.parameters()) == pytest.approx(11.17e6, rel=0.01)


def test_torchvision_resnet18_heads_and_channels():
    model = create_model("resnet18", 40, (3, 64, 64)).eval()
    assert model.fc.out_features == 40
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 40)
    grey = create_model("resnet18", 5, (1, 32, 32)).eval()
    assert grey.conv1.in_channels == 1 and grey(torch.rand(1, 1, 32, 32)).shape == (1, 5)
    assert create_model("resnet18", 40, (3, 64, 64), keep_imagenet_head=True).fc.out_features == 1000


def test_model_errors():
    with pytest.raises(MnemuError, match="unknown model 'vgg'; use one of mlp, resnet18, "):
        create_model("vgg", 10, (3, 32, 32))
    with pytest.raises(MnemuError, match="bad options for model 'mlp'"):
        create_model("mlp", 10, (1, 28, 28), depth=3)
    with pytest.raises(MnemuError, match="model 'mlp' has no pretrained weights; set pretrained: false"):
        create_model("mlp", 10, (1, 28, 28), pretrained=True)
    assert {"mlp", "resnet18_cifar", "resnet18"} <= set(mnemu.model_names())


def test_forgetting_metrics_by_hand():
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 1, 2, 0, 2, 2])
    m = forgetting_metrics(labels, predictions, [0], 4)
    assert m["A_F"] == pytest.approx(50.0) and m["E_F"] == pytest.approx(50.0)
    assert m["A_R"] == pytest.approx(100.0 * 5 / 6)
    assert m["accuracy"] == pytest.approx(100.0 * 6 / 8)
    assert m["per_class_accuracy"][:3] == pytest.approx([50.0, 100.0, 75.0])
    assert m["per_class_accuracy"][3] is None  # no test sample
    several = forgetting_metrics(labels, predictions, [2, 0], 4)
    assert several["forget_classes"] == [0, 2]
    assert several["E_F"] == pytest.approx(100.0 - 100.0 * 4 / 6)
    assert several["A_R"] == pytest.approx(100.0)
    none = forgetting_metrics(labels, predictions, [], 4)
    assert none["E_F"] is None and none["A_R"] == pytest.approx(none["accuracy"])


def test_predict_and_evaluate():
    model = nn.Linear(3, 2)
    model.train()
    x = torch.randn(7, 3)
    y = torch.tensor([0, 1, 0, 1, 1, 0, 1])
    out = predict(model, TensorDataset(x, y), batch_size=3)
    assert model.training  # mode restored
    assert torch.equal(out["labels"], y)
    with torch.no_grad():
        logits = model(x)
    assert torch.equal(out["predictions"], logits.argmax(1))
    torch.testing.assert_close(out["losses"], nn.functional.cross_entropy(logits, y, reduction="none"))
    metrics = mnemu.evaluate(model, TensorDataset(x, y), [1], 2)
    assert metrics == forgetting_metrics(y, logits.argmax(1), [1], 2)


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"

    def fail(handle):
        handle.write(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert list(tmp_path.iterdir()) == []
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert target.read_text() == '{\n "a": 1\n}\n'  # the previous version kept
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_checkpoint_save_and_extra_entries(tmp_path):
    model = create_model("mlp", 3, (1, 2, 2), hidden=4)
    codes = mnemu.make_codes(3, (1, 2, 2))
    spec = {"name": "mlp", "num_classes": 3, "input_shape": [1, 2, 2], "options": {"hidden": 4}}
    path = mnemu.Checkpoint(model, codes, spec).save(tmp_path / "c.pt", note="extra")
    assert torch.load(path, weights_only=True)["note"] == "extra"
    loaded = mnemu.load_checkpoint(path)
    assert loaded.class_names == ["0", "1", "2"]
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[k], v)
