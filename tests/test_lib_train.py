"""Codes (make_codes, mix_codes), training with codes (Alg. 1), checkpoints, resuming."""

from __future__ import annotations

import dataclasses
import logging
import math

import pytest
import torch

import mnemu
from mnemu import MnemuError, TrainSettings, load_checkpoint, make_codes, mix_codes, train_checkpoint


class Interrupt(Exception):
    """Raised from the progress callback to simulate a crash after an epoch."""


def weights(path) -> dict:
    return load_checkpoint(path).model.state_dict()


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def assert_different_weights(a: dict, b: dict) -> None:
    assert any(not torch.equal(a[k], b[k]) for k in a)


# --- codes ------------------------------------------------------------------------------------


def test_make_codes_uniform_by_default_and_deterministic():
    codes = make_codes(10, (1, 28, 28), seed=3)
    assert codes.shape == (10, 1, 28, 28) and codes.dtype == torch.float32
    assert codes.min() >= 0 and codes.max() < 1
    assert abs(codes.mean().item() - 0.5) < 0.01  # uniform, not normal
    assert abs(codes.std().item() - math.sqrt(1 / 12)) < 0.01
    assert torch.equal(codes, make_codes(10, (1, 28, 28), seed=3))
    assert torch.equal(codes, make_codes(10, [1, 28, 28], "uniform", 3))
    assert not torch.equal(codes, make_codes(10, (1, 28, 28), seed=4))
    # the global RNG neither matters nor is consumed
    torch.manual_seed(123)
    state = torch.get_rng_state()
    assert torch.equal(codes, make_codes(10, (1, 28, 28), seed=3))
    assert torch.equal(state, torch.get_rng_state())


def test_make_codes_normal():
    codes = make_codes(20, (3, 16, 16), distribution="normal", seed=0)
    assert codes.shape == (20, 3, 16, 16)
    assert abs(codes.mean().item()) < 0.03 and abs(codes.std().item() - 1) < 0.03
    assert codes.min() < -2 and codes.max() > 2
    assert torch.equal(codes, make_codes(20, (3, 16, 16), distribution="normal", seed=0))


def test_make_codes_rejects_bad_arguments():
    with pytest.raises(MnemuError, match="unknown code distribution 'gaussian'; use one of uniform, normal"):
        make_codes(3, (1, 2, 2), distribution="gaussian")
    with pytest.raises(MnemuError, match="num_classes must be at least 1"):
        make_codes(0, (1, 2, 2))


def _batch(n=20000, classes=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    images = -torch.rand(n, 1, 3, 3, generator=g)  # negative: never equal to a code in [0, 1)
    labels = torch.randint(0, classes, (n,), generator=g)
    codes = make_codes(classes, (1, 3, 3), seed=1)
    return images, labels, codes


@pytest.mark.parametrize("t_mix", [0.1, 0.3, 0.8])
def test_mix_codes_replaces_about_t_mix_by_own_class_code(t_mix):
    images, labels, codes = _batch()
    original = images.clone()
    mixed = mix_codes(images, labels, codes, t_mix, torch.Generator().manual_seed(0))
    assert torch.equal(images, original)  # input not modified
    replaced = (mixed != images).flatten(1).any(1)
    assert abs(replaced.float().mean().item() - t_mix) < 0.015
    assert torch.equal(mixed[replaced], codes[labels[replaced]])  # its own class's code
    assert torch.equal(mixed[~replaced], images[~replaced])
    again = mix_codes(images, labels, codes, t_mix, torch.Generator().manual_seed(0))
    assert torch.equal(mixed, again)  # same generator seed, same draw
    other = mix_codes(images, labels, codes, t_mix, torch.Generator().manual_seed(1))
    assert not torch.equal(mixed, other)


def test_mix_codes_none_at_zero_all_at_one():
    images, labels, codes = _batch(n=500)
    assert torch.equal(mix_codes(images, labels, codes, 0.0), images)
    everything = mix_codes(images, labels, codes, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(everything, codes[labels])


# --- settings ---------------------------------------------------------------------------------


def test_train_settings_defaults_are_the_papers():
    s = TrainSettings()
    assert (s.lr, s.momentum, s.weight_decay, s.batch_size, s.epochs, s.schedule, s.t_mix,
            s.code_distribution) == (0.01, 0.9, 5e-4, 128, 200, "none", 0.1, "uniform")


@pytest.mark.parametrize("field, value, message", [
    ("t_mix", -0.1, r"t_mix must be in \[0, 1\], got -0.1"),
    ("t_mix", 1.5, r"t_mix must be in \[0, 1\], got 1.5"),
    ("epochs", 0, "epochs must be at least 1"),
    ("batch_size", 0, "batch_size must be at least 1"),
    ("steps", 0, "steps must be at least 1"),
    ("lr", 0.0, "lr must be positive"),
    ("schedule", "step", "schedule must be 'none' or 'cosine'"),
    ("code_distribution", "gaussian", "code_distribution must be one of"),
])
def test_train_settings_reject_bad_values(field, value, message):
    with pytest.raises(MnemuError, match=message) as err:
        TrainSettings(**{field: value})
    assert "\n" not in str(err.value)


def test_bad_t_mix_writes_nothing(tmp_path, lib_synthetic_options):
    out = tmp_path / "model.pt"
    with pytest.raises(MnemuError, match="t_mix"):
        train_checkpoint("synthetic", "mlp", TrainSettings(t_mix=2.0, epochs=1), out,
                         data_options=lib_synthetic_options)
    assert list(tmp_path.iterdir()) == []


# --- training and checkpoints -----------------------------------------------------------------


def _train(out, settings, options, progress=None, hidden=32):
    return train_checkpoint("synthetic", "mlp", settings, out, data_options=options,
                            model_options={"hidden": hidden}, device="cpu", progress=progress)


def test_same_seed_same_weights(tmp_path, lib_synthetic_options, lib_settings):
    _train(tmp_path / "a.pt", lib_settings(), lib_synthetic_options)
    _train(tmp_path / "b.pt", lib_settings(), lib_synthetic_options)
    _train(tmp_path / "c.pt", lib_settings(seed=1), lib_synthetic_options)
    a, b, c = (weights(tmp_path / f"{n}.pt") for n in "abc")
    assert_same_weights(a, b)
    assert_different_weights(a, c)


def test_training_learns_and_uses_codes(tmp_path, lib_synthetic_options, lib_settings):
    """The tiny model learns the synthetic classes (4: chance is 25 %) and its codes (what
    forgetting uses)."""
    checkpoint = _train(tmp_path / "m.pt", lib_settings(epochs=10, lr=0.1, t_mix=0.3),
                        lib_synthetic_options)
    data = mnemu.load_dataset("synthetic", **lib_synthetic_options)
    metrics = mnemu.evaluate(checkpoint.model, data.test, [0], data.num_classes)
    assert metrics["accuracy"] > 40
    codes_predicted = checkpoint.model(checkpoint.codes).argmax(1)
    assert torch.equal(codes_predicted, torch.arange(4))


def test_checkpoint_holds_codes_classes_normalisation_settings(tmp_path, lib_synthetic_options,
                                                               lib_settings):
    settings = lib_settings(code_distribution="normal")
    out = tmp_path / "m.pt"
    trained = _train(out, settings, lib_synthetic_options)
    assert not (tmp_path / "m.pt.state").exists()  # the resume state is removed at the end
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]  # no temporary files left

    raw = torch.load(out, weights_only=True)  # a weights-only file
    assert raw["format"] == "mnemu-checkpoint"
    loaded = load_checkpoint(out)
    assert torch.equal(loaded.codes, make_codes(4, (1, 8, 8), "normal", settings.seed))
    assert torch.equal(loaded.codes, trained.codes)
    assert loaded.class_names == ["class0", "class1", "class2", "class3"]
    assert loaded.num_classes == 4
    assert loaded.data["name"] == "synthetic"
    assert loaded.data["mean"] == [0.5] and loaded.data["std"] == [0.25]
    assert loaded.data["options"]["train_per_class"] == 40
    assert loaded.training["settings"] == dataclasses.asdict(settings)
    assert [h["epoch"] for h in loaded.training["history"]] == [1, 2, 3]
    assert loaded.model_spec == {"name": "mlp", "num_classes": 4, "input_shape": [1, 8, 8],
                                 "options": {"hidden": 32}, "pretrained": False}
    assert loaded.forgotten is None
    # an identical model: same weights, same outputs
    assert_same_weights(loaded.model.state_dict(), trained.model.state_dict())
    x = torch.rand(5, 1, 8, 8)
    trained.model.eval()
    assert torch.equal(loaded.model.eval()(x), trained.model(x))
    assert type(loaded.model) is type(trained.model)


def test_steps_cap_the_optimiser_steps(tmp_path, lib_synthetic_options, lib_settings):
    # 160 samples, batch 16: 10 steps per epoch; 13 steps = 2 epochs, the second cut short
    history = _train(tmp_path / "m.pt", lib_settings(epochs=50, steps=13),
                     lib_synthetic_options).training["history"]
    assert [h["steps"] for h in history] == [10, 13]


def test_train_with_codes_is_reproducible_in_place(lib_synthetic_options, lib_settings):
    data = mnemu.load_dataset("synthetic", **lib_synthetic_options)
    codes = make_codes(4, (1, 8, 8), seed=0)
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        model = mnemu.create_model("mlp", 4, (1, 8, 8), hidden=16)
        history = mnemu.train_with_codes(model, data.train, codes, lib_settings(epochs=2),
                                         device="cpu")
        results.append((model.state_dict(), history))
    assert_same_weights(results[0][0], results[1][0])
    assert [h["loss"] for h in results[0][1]] == [h["loss"] for h in results[1][1]]


# --- resuming ---------------------------------------------------------------------------------


def _interrupted(out, settings, options, after_epoch):
    def stop(record):
        if record["epoch"] == after_epoch:
            raise Interrupt

    with pytest.raises(Interrupt):
        _train(out, settings, options, progress=stop)
    assert not out.exists()
    assert out.with_name(out.name + ".state").exists()


@pytest.mark.parametrize("after_epoch, schedule", [(1, "none"), (3, "none"), (2, "cosine")])
def test_resume_after_interruption_equals_uninterrupted(tmp_path, lib_synthetic_options,
                                                        lib_settings, after_epoch, schedule):
    settings = lib_settings(epochs=4, schedule=schedule)
    reference = _train(tmp_path / "ref.pt", settings, lib_synthetic_options)

    out = tmp_path / "run" / "m.pt"
    _interrupted(out, settings, lib_synthetic_options, after_epoch)
    epochs_run = []
    resumed = _train(out, settings, lib_synthetic_options, progress=lambda r: epochs_run.append(
        r["epoch"]))
    assert epochs_run == list(range(after_epoch + 1, 5))  # it did resume, not retrain
    assert_same_weights(weights(out), weights(tmp_path / "ref.pt"))
    history, ref_history = resumed.training["history"], reference.training["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    for h, r in zip(history, ref_history):
        assert (h["loss"], h["train_accuracy"], h["steps"]) == (r["loss"], r["train_accuracy"],
                                                                r["steps"])
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.pt"]


def test_resume_through_train_with_codes(tmp_path, lib_synthetic_options, lib_settings):
    data = mnemu.load_dataset("synthetic", **lib_synthetic_options)
    codes = make_codes(4, (1, 8, 8), seed=0)
    settings = lib_settings(epochs=3)

    def fresh():
        torch.manual_seed(0)
        return mnemu.create_model("mlp", 4, (1, 8, 8), hidden=16)

    reference = fresh()
    mnemu.train_with_codes(reference, data.train, codes, settings, device="cpu")
    state_path = tmp_path / "train.state"

    def stop(record):
        if record["epoch"] == 2:
            raise Interrupt

    with pytest.raises(Interrupt):
        mnemu.train_with_codes(fresh(), data.train, codes, settings, device="cpu",
                               state_path=state_path, progress=stop)
    model = mnemu.create_model("mlp", 4, (1, 8, 8), hidden=16)  # other initial weights
    history = mnemu.train_with_codes(model, data.train, codes, settings, device="cpu",
                                     state_path=state_path)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert_same_weights(model.state_dict(), reference.state_dict())


@pytest.mark.parametrize("change", [{"lr": 0.02}, {"t_mix": 0.5}, {"seed": 1}, {"epochs": 4},
                                    {"num_workers": 1}, {"exclude_classes": (1,)}, "data size", "same-size data", "model"])
def test_state_for_other_settings_is_ignored(tmp_path, caplog, lib_synthetic_options, lib_settings,
                                             change):
    settings = lib_settings(epochs=3)
    options = dict(lib_synthetic_options)
    out = tmp_path / "m.pt"
    _interrupted(out, settings, options, 2)
    hidden = 32
    if change == "data size":
        options["train_per_class"] = 30
    elif change == "same-size data":  # other images, same size and labels
        options["seed"] = 1
    elif change == "model":  # another architecture
        hidden = 16
    else:
        settings = lib_settings(**{"epochs": 3, **change})
    reference = _train(tmp_path / "ref.pt", settings, options, hidden=hidden)
    epochs_run = []
    with caplog.at_level(logging.WARNING, logger="mnemu"):
        _train(out, settings, options, progress=lambda r: epochs_run.append(r["epoch"]),
               hidden=hidden)
    assert epochs_run == list(range(1, settings.epochs + 1))  # restarted
    assert "other settings" in caplog.text and "starting from scratch" in caplog.text
    assert_same_weights(weights(out), reference.model.state_dict())


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_unreadable_state_is_ignored_with_a_warning(tmp_path, caplog, lib_synthetic_options,
                                                    lib_settings, damage):
    settings = lib_settings(epochs=3)
    out = tmp_path / "m.pt"
    _interrupted(out, settings, lib_synthetic_options, 2)
    state_path = tmp_path / "m.pt.state"
    if damage == "truncate":
        data = state_path.read_bytes()
        state_path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        state_path.write_bytes(b"not a torch file at all")
    else:
        torch.save({"something": torch.zeros(3)}, state_path)
    reference = _train(tmp_path / "ref.pt", settings, lib_synthetic_options)
    epochs_run = []
    with caplog.at_level(logging.WARNING, logger="mnemu"):
        _train(out, settings, lib_synthetic_options,
               progress=lambda r: epochs_run.append(r["epoch"]))
    assert epochs_run == [1, 2, 3]
    assert "ignoring unreadable training state" in caplog.text
    assert_same_weights(weights(out), reference.model.state_dict())
    assert not state_path.exists()


# --- training without some classes -----------------------------------------------------------


class _RecordingModel(torch.nn.Module):
    """Wraps a model and keeps every training batch it is shown."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.seen = inner, []

    def forward(self, x):
        if self.training:
            self.seen.append(x.detach().clone())
        return self.inner(x)


def test_excluded_class_never_reaches_the_model(lib_synthetic_options, lib_settings):
    data = mnemu.load_dataset("synthetic", **lib_synthetic_options)
    codes = make_codes(4, (1, 8, 8), seed=0)
    torch.manual_seed(0)
    model = _RecordingModel(mnemu.create_model("mlp", 4, (1, 8, 8), hidden=16))
    history = mnemu.train_with_codes(model, data.train, codes,
                                     lib_settings(epochs=2, t_mix=0.5, exclude_classes=[0]),
                                     device="cpu")
    shown = torch.cat(model.seen).flatten(1)
    images, labels = data.train.__getitems__(list(range(len(data.train))))
    images = images.flatten(1)
    # 120 samples of classes 1-3 per epoch, batch 16: 8 steps per epoch
    assert len(shown) == 240 and [h["steps"] for h in history] == [8, 16]

    def shown_count(rows):
        return (shown[:, None, :] == rows[None]).all(-1).any(1).sum().item()

    assert shown_count(images[labels == 0]) == 0
    assert shown_count(codes[:1].flatten(1)) == 0
    assert shown_count(images[labels != 0]) + shown_count(codes[1:].flatten(1)) == 240
    assert shown_count(codes[1:].flatten(1)) > 60  # codes of the other classes are still mixed in
    assert model.inner.fc2.out_features == 4  # the full head


def test_model_trained_without_a_class_gives_it_low_probability(tmp_path, lib_synthetic_options,
                                                                lib_settings):
    data = mnemu.load_dataset("synthetic", **lib_synthetic_options)
    class0 = torch.stack([data.test[i][0] for i in range(len(data.test)) if data.test[i][1] == 0])

    def mean_probability_of_class0(settings):
        model = _train(tmp_path / "m.pt", settings, lib_synthetic_options).model.eval()
        with torch.no_grad():
            return model(class0).softmax(1)[:, 0].mean().item()

    normal = mean_probability_of_class0(lib_settings(epochs=10, lr=0.1))
    without = mean_probability_of_class0(lib_settings(epochs=10, lr=0.1, exclude_classes=(0,)))
    assert normal > 0.5 and without < 0.05


@pytest.mark.parametrize("exclude, message", [
    ((4,), r"exclude_classes \[4\] names a class outside 0..3"),
    ((0, 1, 2, 3), "leaves no class to train on"),
])
def test_exclude_classes_checked_against_the_model(tmp_path, lib_synthetic_options, lib_settings,
                                                   exclude, message):
    with pytest.raises(MnemuError, match=message) as err:
        _train(tmp_path / "m.pt", lib_settings(exclude_classes=exclude), lib_synthetic_options)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exclude, message", [
    ((-1,), "exclude_classes must be class indices"), (("a",), "exclude_classes must be class"),
    ((1, 1), "lists a class twice"),
])
def test_exclude_classes_rejects_bad_values(exclude, message):
    with pytest.raises(MnemuError, match=message):
        TrainSettings(exclude_classes=exclude)


def test_state_trained_without_a_class_is_not_resumed_with_it(tmp_path, caplog,
                                                              lib_synthetic_options, lib_settings):
    out = tmp_path / "m.pt"
    _interrupted(out, lib_settings(exclude_classes=(0,)), lib_synthetic_options, 2)
    epochs_run = []
    with caplog.at_level(logging.WARNING, logger="mnemu"):
        _train(out, lib_settings(), lib_synthetic_options,
               progress=lambda r: epochs_run.append(r["epoch"]))
    assert epochs_run == [1, 2, 3] and "other settings" in caplog.text


def test_eta_is_the_time_left_at_the_pace_so_far():
    from mnemu.progress import eta

    assert eta(10.0, 1, 3) == "0:00:20"  # 10 s per unit, 2 left
    assert eta(7200.0, 2, 3) == "1:00:00"
    assert eta(5.0, 3, 3) == "0:00:00"
    assert eta(0.0, 0, 5) == "?"


def test_each_epoch_logs_its_progress_with_an_eta(tmp_path, caplog, lib_synthetic_options,
                                                  lib_settings):
    with caplog.at_level(logging.INFO, logger="mnemu"):
        _train(tmp_path / "m.pt", lib_settings(epochs=2), lib_synthetic_options)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert "ETA " in lines[0] and lines[1].endswith("ETA 0:00:00")
