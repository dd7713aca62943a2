"""MNIST and Fashion-MNIST: four gzipped IDX files each, held in memory."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..download import RemoteFile, download, is_valid
from .registry import Source


def _idx_files(base_urls: Sequence[str], md5s: dict, sha256s: dict | None = None):
    return {
        name: RemoteFile(name, tuple(u + name for u in base_urls), md5=md5,
                         gunzip_sha256=(sha256s or {}).get(name))
        for name, md5 in md5s.items()
    }


MNIST_FILES = _idx_files(
    ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
    {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
)
# md5s are Zalando's (as torchvision lists them); the SHA-256s of the decompressed files let the
# recompressed copies of Debian's dataset-fashion-mnist package pass too.
FASHION_FILES = _idx_files(
    ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
    {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    {
        "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
)
#: Debian's dataset-fashion-mnist package installs the four files here.
FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes as an array of the shape its header gives."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fetch(name: str, files: dict, root: Path, system_dir: Path | None) -> dict:
    """Paths of IDX files: a verified system copy if there is one, else downloaded."""
    paths = {}
    for filename, remote in files.items():
        system = system_dir / filename if system_dir else None
        if system is not None and is_valid(system, remote):
            paths[filename] = system
        else:
            paths[filename] = download(remote, root / name / filename)
    return paths


def _idx_source(name, files, root, class_names, system_dir=None) -> Source:
    def reader(prefix):
        def read():
            wanted = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
            paths = _fetch(name, {f: files[f] for f in wanted}, root, system_dir)
            images, labels = (read_idx(paths[f]) for f in wanted)
            return (torch.from_numpy(images.copy()).unsqueeze(1),
                    torch.from_numpy(labels.astype(np.int64)))

        return read

    # The paper's MNIST inputs are not normalised (pixels in [0, 1]).
    return Source(class_names, (1, 28, 28), (0.0,), (1.0,), reader("train"), reader("t10k"))


def mnist(root: Path, **_) -> Source:
    return _idx_source("mnist", MNIST_FILES, root, [str(d) for d in range(10)])


def fashion_mnist(root: Path, **_) -> Source:
    return _idx_source("fashion_mnist", FASHION_FILES, root, FASHION_CLASSES,
                       system_dir=FASHION_SYSTEM_DIR)
