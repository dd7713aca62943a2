"""The data sets mnemu knows. Each family module is imported when one of its data sets is first
used, so that importing mnemu (to evaluate a model, say) loads no download code."""

from __future__ import annotations

import importlib

from .registry import register_dataset


def _later(module: str, function: str):
    """``mnemu.data.<module>.<function>``, imported on first call."""

    def call(*args, **kwargs):
        found = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        return found(*args, **kwargs)

    call.__qualname__ = f"{module}.{function}"
    return call


def _given_num_classes(root, num_classes: int = 10, **_) -> int:
    return num_classes


# default_augment as the paper's: crop+flip for CIFAR-10, a horizontal flip for the image files
# trained from ImageNet weights (CUB, Cars, LFW), none for MNIST and ImageNet.
register_dataset("mnist", _later("idx", "mnist"), num_classes=10)
register_dataset("fashion_mnist", _later("idx", "fashion_mnist"), num_classes=10)
register_dataset("cifar10", _later("cifar", "cifar10"), num_classes=10, default_augment=True)
register_dataset("digits", _later("generated", "digits"), num_classes=10)
register_dataset("synthetic", _later("generated", "synthetic"), num_classes=_given_num_classes)
register_dataset("cub", _later("folders", "cub"), num_classes=_later("folders", "cub_num_classes"),
                 default_augment=True)
register_dataset("stanford_cars", _later("folders", "stanford_cars"),
                 num_classes=_later("folders", "cars_num_classes"), default_augment=True)
register_dataset("lfw", _later("folders", "lfw"), num_classes=_later("folders", "lfw_num_classes"),
                 default_augment=True)
register_dataset("imagenet", _later("folders", "imagenet"),
                 num_classes=_later("folders", "imagenet_num_classes"),
                 missing_files=_later("folders", "imagenet_missing_files"))
