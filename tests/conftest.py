"""Shared fixtures of the library tests (tests/test_lib_*.py).

Fixture names start with ``lib_`` so that they do not collide with the workflow tests' fixtures.
"""

from __future__ import annotations

import pytest

import mnemu

#: A tiny generated data set: 4 classes of 1x8x8 images, 40 training and 20 test images per class.
_LIB_SYNTHETIC_OPTIONS = {"num_classes": 4, "image_shape": [1, 8, 8], "train_per_class": 40,
                          "test_per_class": 20, "seed": 0}


def _lib_settings(**overrides) -> mnemu.TrainSettings:
    values = {"t_mix": 0.2, "epochs": 3, "batch_size": 16, "seed": 0}
    values.update(overrides)
    return mnemu.TrainSettings(**values)


@pytest.fixture
def lib_synthetic_options() -> dict:
    """``load_dataset("synthetic", **options)`` options of a tiny data set: 4 classes of 1x8x8
    images, 40 training and 20 test images per class (a fresh dict per test)."""
    return dict(_LIB_SYNTHETIC_OPTIONS)


@pytest.fixture
def lib_settings():
    """Factory of small, fast :class:`mnemu.TrainSettings` (the paper's optimiser, t_mix 0.2,
    3 epochs, batch 16, seed 0); keyword arguments override."""
    return _lib_settings


@pytest.fixture(scope="session")
def lib_tiny_checkpoint(tmp_path_factory) -> str:
    """Path of a real mnemu checkpoint: an MLP (hidden 32) trained 10 epochs (lr 0.1) on the tiny
    synthetic data set with codes, on the CPU; it classifies its 4 codes right. Session-scoped:
    tests must not modify it (copy it first)."""
    out = tmp_path_factory.mktemp("lib_checkpoint") / "tiny.pt"
    mnemu.train_checkpoint("synthetic", "mlp", _lib_settings(epochs=10, lr=0.1), out,
                           data_options=dict(_LIB_SYNTHETIC_OPTIONS),
                           model_options={"hidden": 32}, device="cpu")
    return str(out)
