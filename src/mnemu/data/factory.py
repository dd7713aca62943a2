"""Loading a registered data set with the selection options every data set shares."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from .datasets import DataSplits, FileImages, TensorImages, file_transforms
from .registry import Samples, lookup
from .select import check_classes, relabel, resize, select_indices

#: Where data sets live unless a root is given.
DATA_ENV = "MNEMU_DATA"


def default_root() -> Path:
    return Path(os.environ.get(DATA_ENV, "data"))


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    augment: bool | None = None,
    classes: Sequence[int] | None = None,
    max_train_per_class: int | None = None,
    max_test_per_class: int | None = None,
    image_size: int | None = None,
    **options,
) -> DataSplits:
    """Load a data set by name (see :func:`dataset_names`), fetching it first if needed.

    ``augment`` switches the training split's augmentation (default: the paper's per data set:
    crop+flip for CIFAR-10, flip for CUB/Cars/LFW, none otherwise). ``classes`` keeps only
    those class indices (of the loaded data set, 0-based), relabelled 0..k-1 in the order given.
    ``max_*_per_class`` keep the first n samples of each class (a fixed order), and
    ``image_size`` resizes to a square, for quick runs. Other ``options`` go to the data set's
    source (``class_ids`` for CUB/Cars: 1-based ids of the original data set;
    ``num_identities`` for LFW; ``path`` for ImageNet; ``num_classes``, ``image_shape``,
    ``seed`` for ``synthetic``). Splits are read when first used.
    """
    root = Path(root) if root is not None else default_root()
    registered = lookup(name)
    source = registered.make_source(root, **options)
    augment = registered.default_augment if augment is None else augment
    remap, class_names = relabel(source.class_names, classes)
    channels = source.input_shape[0]
    shape = source.input_shape if image_size is None else (channels, image_size, image_size)

    def split(read: Callable[[], Samples], max_per_class, is_train: bool):
        def make():
            samples = read()
            with_augment = augment and is_train
            if isinstance(samples, list):  # image files
                transform = file_transforms(shape[-1], augment, source.mean, source.std,
                                            source.resize_crop)[0 if is_train else 1]
                labels = torch.tensor([y for _, y in samples], dtype=torch.long)
                keep = select_indices(labels, classes, max_per_class).tolist()
                return FileImages([(samples[i][0], int(remap[samples[i][1]])) for i in keep],
                                  transform)
            images, labels = samples
            keep = select_indices(labels, classes, max_per_class)
            return TensorImages(resize(images[keep], image_size), remap[labels[keep]],
                                source.mean, source.std, with_augment)

        return make

    splits = DataSplits(name, split(source.read_train, max_train_per_class, True),
                        split(source.read_test, max_test_per_class, False), shape,
                        class_names, source.mean, source.std, {})
    splits.options = {"augment": augment, "classes": list(classes) if classes else None,
                      "max_train_per_class": max_train_per_class,
                      "max_test_per_class": max_test_per_class, "image_size": image_size,
                      **options}
    return splits


def dataset_num_classes(name: str, root: str | Path | None = None, *,
                        classes: Sequence[int] | None = None, **options) -> int:
    """The number of classes :func:`load_dataset` gives with these options, read from the options
    alone (no data is read or fetched): for checking a configuration before any job runs."""
    root = Path(root) if root is not None else default_root()
    total = int(lookup(name).num_classes(root, **options))
    if classes is None:
        return total
    check_classes(classes, total)
    return len(classes)


def prepare_dataset(name: str, root: str | Path | None = None, **options) -> dict:
    """Fetch and check a data set; return a small manifest (sizes, classes) for the record."""
    splits = load_dataset(name, root, **options)
    counts = torch.bincount(splits.train.labels, minlength=splits.num_classes)
    return {
        "name": name,
        "train_size": len(splits.train),
        "test_size": len(splits.test),
        "num_classes": splits.num_classes,
        "input_shape": list(splits.input_shape),
        "class_names": splits.class_names,
        "train_per_class": counts.tolist(),
    }
