"""CIFAR-10: the python version's pickled batches, read by an unpickler that builds only arrays."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from ..download import RemoteFile, download, extract_once
from ..errors import MnemuError
from .registry import Source

# md5 as torchvision lists it, sha256 as Keras' cifar10.load_data does (170,498,071 bytes).
CIFAR10_ARCHIVE = RemoteFile(
    "cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
    md5="c58f30108f718f92721af3b95e74349a",
    sha256="6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce")
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck"]

# numpy pickles an array as _reconstruct(ndarray, ...) plus a dtype; the batches (pickled by
# Python 2 with numpy 1) name it under numpy.core, numpy 2 under numpy._core.
_reconstruct = np.ndarray.__reduce__(np.zeros(0))[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _ArrayUnpickler(pickle.Unpickler):
    """Builds builtin values and numpy arrays only: any other callable is refused unrun."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refused {module}.{name}")
        return _ALLOWED[(module, name)]


def read_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """One batch file: (uint8 images [N, 3, 32, 32], labels [N])."""
    try:
        with open(path, "rb") as handle:
            # Python 2 pickled the batches: its byte strings decode as latin-1
            entry = _ArrayUnpickler(handle, encoding="latin1").load()
        data, labels = entry["data"], list(entry["labels"])
        images = np.asarray(data, dtype=np.uint8).reshape(-1, 3, 32, 32)
    except (pickle.UnpicklingError, EOFError, TypeError, KeyError, ValueError, IndexError) as err:
        raise MnemuError(f"{path} is not a CIFAR-10 batch ({err}); delete the cifar10 folder "
                         "to fetch a fresh copy") from err
    if len(images) != len(labels):
        raise MnemuError(f"{path} holds {len(images)} images but {len(labels)} labels; delete "
                         "the cifar10 folder to fetch a fresh copy")
    return images, labels


def cifar10(root: Path, **_) -> Source:
    def reader(names):
        def read():
            archive = download(CIFAR10_ARCHIVE, root / "cifar10" / CIFAR10_ARCHIVE.name)
            folder = extract_once(archive, root / "cifar10" / "extracted",
                                  "cifar-10-batches-py/test_batch") / "cifar-10-batches-py"
            images, labels = [], []
            for batch in names:
                x, y = read_batch(folder / batch)
                images.append(x)
                labels.extend(y)
            return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)

        return read

    return Source(CIFAR10_CLASSES, (3, 32, 32), (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010),
                  reader([f"data_batch_{i}" for i in range(1, 6)]), reader(["test_batch"]))
