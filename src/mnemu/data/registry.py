"""The data sets known by name: what a source is, how to register one, and how to look it up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

import torch

from ..errors import MnemuError

#: What a split reader returns: in-memory ``(uint8 images [N, C, H, W], int64 labels [N])``, or
#: image files as a list of ``(path, label)``. Labels are ``0 .. len(class_names) - 1``.
Samples = Union[tuple[torch.Tensor, torch.Tensor], list[tuple[str, int]]]


@dataclass
class Source:
    """A data set before selection, as a registered factory makes it from ``(root, **options)``.

    ``read_train`` and ``read_test`` read their split when called (not before), so making a
    source is cheap. ``input_shape`` is ``(C, H, W)`` as a model sees it: file images are resized
    to it (``resize_crop``: resize to 256 then centre-crop, as for ImageNet; else a square
    resize). ``mean`` and ``std`` (per channel, pixels in [0, 1]) normalise the images.
    """

    class_names: list[str]
    input_shape: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    read_train: Callable[[], Samples]
    read_test: Callable[[], Samples]
    resize_crop: bool = False


@dataclass(frozen=True)
class Registered:
    """A registered data set: its source factory, its class count, its default augmentation."""

    make_source: Callable[..., Source]  # (root: Path, **options) -> Source
    num_classes: Callable[..., int]  # (root: Path, **options) -> int; reads no data
    default_augment: bool
    #: (root: Path, **options) -> a one-line problem (what is missing, where to put it) or None;
    #: inspects paths only. None for data sets that are fetched or generated.
    missing_files: Callable[..., str | None] | None = None


_DATASETS: dict[str, Registered] = {}


def register_dataset(name: str, source_factory: Callable[..., Source], *,
                     num_classes: int | Callable[..., int], default_augment: bool = False,
                     missing_files: Callable[..., str | None] | None = None) -> None:
    """Make a data set loadable by name with :func:`mnemu.data.load_dataset`.

    ``source_factory(root: Path, **options)`` returns a :class:`Source`; it should accept and
    ignore options it does not know (``**_``). ``num_classes`` is the class count, or a function
    ``(root, **options) -> int`` that gives it without reading data. ``default_augment`` is the
    training split's augmentation unless a caller chooses: crop+flip for in-memory images, a
    horizontal flip for files. ``missing_files(root, **options)`` says, without reading data,
    what a data set placed by hand lacks (one line) or returns None.
    """
    count = num_classes if callable(num_classes) else (lambda root, **_: num_classes)
    _DATASETS[name] = Registered(source_factory, count, default_augment, missing_files)


def lookup(name: str) -> Registered:
    if name not in _DATASETS:
        raise MnemuError(f"unknown data set {name!r}; use one of {', '.join(dataset_names())}")
    return _DATASETS[name]


def dataset_names() -> list[str]:
    return sorted(_DATASETS)
