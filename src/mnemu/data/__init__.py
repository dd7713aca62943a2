"""Data sets behind one call, :func:`load_dataset`, and their preparation, :func:`prepare_dataset`.

Small data sets (MNIST, Fashion-MNIST, CIFAR-10, scikit-learn digits, generated images) are held in
memory as uint8 tensors; large ones (CUB, Stanford Cars, LFW, ImageNet) are read from image files.
Every loader returns normalised float images ``[C, H, W]`` and integer labels ``0 .. C-1``.

Modules: ``datasets`` (the data set objects and the loader), ``registry`` (:class:`Source` and
:func:`register_dataset`), ``factory`` (loading by name with the shared options), ``select``
(class selection, resizing), and one module per family of sources: ``idx`` (MNIST,
Fashion-MNIST), ``cifar``, ``folders`` (CUB, Stanford Cars, LFW, ImageNet), ``generated`` (digits,
synthetic images); ``builtin`` registers them.
"""

from . import builtin  # noqa: F401  (registers the built-in data sets)
from .datasets import DataSplits, FileImages, TensorImages, collate, loader
from .factory import (DATA_ENV, dataset_num_classes, default_root, load_dataset, missing_files,
                      prepare_dataset)
from .registry import Samples, Source, dataset_names, register_dataset

__all__ = [
    "DATA_ENV", "DataSplits", "FileImages", "Samples", "Source", "TensorImages", "collate",
    "dataset_names", "dataset_num_classes", "default_root", "load_dataset", "loader",
    "missing_files",
    "prepare_dataset", "register_dataset",
]
