"""Data sets behind one call, :func:`load_dataset`, and their preparation, :func:`prepare_dataset`.

Small data sets (MNIST, Fashion-MNIST, CIFAR-10, scikit-learn digits, generated images) are held in
memory as uint8 tensors; large ones (CUB, Stanford Cars, LFW, ImageNet) are read from image files.
Every loader returns normalised float images ``[C, H, W]`` and integer labels ``0 .. C-1``.
"""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .download import RemoteFile, download, is_valid
from .errors import MnemuError

#: Where data sets live unless a root is given.
DATA_ENV = "MNEMU_DATA"
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def default_root() -> Path:
    return Path(os.environ.get(DATA_ENV, "data"))


# --------------------------------------------------------------------------------------------
# Data set objects


class TensorImages(Dataset):
    """In-memory images ``uint8 [N, C, H, W]`` with labels; optional crop+flip augmentation.

    ``__getitems__`` serves a whole batch ``(images, labels)`` with tensor operations, which a
    DataLoader uses when its ``collate_fn`` is :func:`collate`: per-sample Python work would
    cost more than training the paper's MLP.
    """

    def __init__(self, images, labels, mean, std, augment: bool = False, crop_padding: int = 4):
        self.images = images
        self.labels = labels
        self.mean = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.augment = augment
        self.crop_padding = crop_padding

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        images, labels = self.__getitems__([index])
        return images[0], int(labels[0])

    def __getitems__(self, indices: Sequence[int]):
        index = torch.as_tensor(indices, dtype=torch.long)
        x = self.images[index].float().div_(255)
        if self.augment:
            x = _random_crop_flip(x, self.crop_padding)
        return (x - self.mean) / self.std, self.labels[index]


def collate(batch):
    """DataLoader ``collate_fn``: passes a batch :class:`TensorImages` built whole, else stacks."""
    if isinstance(batch, tuple):
        return batch
    return default_collate(batch)


def loader(dataset: Dataset, batch_size: int, **kwargs) -> DataLoader:
    """A DataLoader that takes whole batches from in-memory data sets."""
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate, **kwargs)


def _random_crop_flip(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Random crop with zero padding and random horizontal flip, one draw per image (torch RNG)."""
    n, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,)).tolist()
    dx = torch.randint(0, 2 * padding + 1, (n,)).tolist()
    flip = (torch.rand(n) < 0.5).tolist()
    out = torch.empty_like(x)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


class FileImages(Dataset):
    """Images read from files, as ``(path, label)`` pairs, through a torchvision transform."""

    def __init__(self, samples: list[tuple[str, int]], transform: Callable):
        self.samples = samples
        self.transform = transform
        self.labels = torch.tensor([label for _, label in samples], dtype=torch.long)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        from PIL import Image

        path, label = self.samples[index]
        with Image.open(path) as image:
            return self.transform(image.convert("RGB")), label


class DataSplits:
    """A data set: train and test splits plus what a model and its codes need to know.

    ``train`` and ``test`` are built when first used, so a job that only evaluates never reads
    the training images.
    """

    def __init__(self, name: str, make_train: Callable[[], Dataset], make_test: Callable[[], Dataset],
                 input_shape, class_names: list[str], mean, std, options: dict):
        self.name = name
        self._make = {"train": make_train, "test": make_test}
        self._built: dict[str, Dataset] = {}
        self.input_shape = tuple(input_shape)
        self.class_names = list(class_names)
        self.mean, self.std = tuple(mean), tuple(std)
        self.options = options

    def _split(self, which: str) -> Dataset:
        if which not in self._built:
            dataset = self._make[which]()
            if len(dataset) == 0:
                raise MnemuError(f"data set {self.name!r} has an empty {which} split with these "
                                 f"options; check classes and max_{which}_per_class")
            self._built[which] = dataset
        return self._built[which]

    @property
    def train(self) -> Dataset:
        return self._split("train")

    @property
    def test(self) -> Dataset:
        return self._split("test")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --------------------------------------------------------------------------------------------
# Sources


def _idx_files(base_urls: Sequence[str], md5s: dict, sha256s: dict | None = None):
    return {
        name: RemoteFile(name, tuple(u + name for u in base_urls), md5=md5,
                         gunzip_sha256=(sha256s or {}).get(name))
        for name, md5 in md5s.items()
    }


_MNIST_FILES = _idx_files(
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
_FASHION_FILES = _idx_files(
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

_CIFAR10 = RemoteFile("cifar-10-python.tar.gz",
                      ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                      md5="c58f30108f718f92721af3b95e74349a")
_CUB = RemoteFile(
    "CUB_200_2011.tgz",
    ("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",),
    md5="97eceeb196236b17998738112f37df78")
# md5 as torchvision lists it; sha256 as scikit-learn lists its figshare copy.
_LFW = RemoteFile(
    "lfw-funneled.tgz",
    ("https://ndownloader.figshare.com/files/5976015",
     "http://vis-www.cs.umass.edu/lfw/lfw-funneled.tgz"),
    md5="1b42dfed7d15c9b2dd63d5e5840c86ad",
    sha256="b47c8422c8cded889dc5a13418c4bc2abbda121092b3533a83306f90d900100a")


def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fetch_idx(name: str, files: dict, root: Path, system_dir: Path | None = None) -> dict:
    """Paths of the four IDX files: a verified system copy if there is one, else downloaded."""
    paths = {}
    for filename, remote in files.items():
        system = system_dir / filename if system_dir else None
        if system is not None and is_valid(system, remote):
            paths[filename] = system
        else:
            paths[filename] = download(remote, root / name / filename)
    return paths


@dataclass
class TensorSource:
    """An in-memory data set before selection: a reader per split, and what it holds."""

    read: dict  # split name -> () -> (uint8 images [N, C, H, W], int64 labels [N])
    class_names: list
    mean: tuple
    std: tuple
    shape: tuple


def _idx_dataset(name, files, root, class_names, system_dir=None) -> TensorSource:
    def reader(prefix):
        def read():
            wanted = [f"{prefix}-images-idx3-ubyte.gz", f"{prefix}-labels-idx1-ubyte.gz"]
            paths = _fetch_idx(name, {f: files[f] for f in wanted}, root, system_dir)
            images, labels = (_read_idx(paths[f]) for f in wanted)
            return (torch.from_numpy(images.copy()).unsqueeze(1),
                    torch.from_numpy(labels.astype(np.int64)))

        return read

    return TensorSource({"train": reader("train"), "test": reader("t10k")}, class_names,
                        (0.0,), (1.0,), (1, 28, 28))


def _mnist(root, **_):
    # The paper's MNIST inputs are not normalised (pixels in [0, 1]).
    return _idx_dataset("mnist", _MNIST_FILES, root, [str(d) for d in range(10)])


def _fashion_mnist(root, **_):
    return _idx_dataset("fashion_mnist", _FASHION_FILES, root, FASHION_CLASSES,
                        system_dir=FASHION_SYSTEM_DIR)


def _extract(archive: Path, into: Path, marker: str) -> Path:
    """Extract a tar archive once; the marker path appears only when extraction finished."""
    if (into / marker).exists():
        return into
    into.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=into.parent, prefix=f".{into.name}."))
    with tarfile.open(archive) as tar:
        tar.extractall(tmp, filter="data")
    if into.exists():
        import shutil

        shutil.rmtree(into)
    os.replace(tmp, into)
    return into


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck"]


def _cifar10(root, **_):
    def reader(names):
        def read():
            archive = download(_CIFAR10, root / "cifar10" / _CIFAR10.name)
            folder = _extract(archive, root / "cifar10" / "extracted",
                              "cifar-10-batches-py/test_batch") / "cifar-10-batches-py"
            images, labels = [], []
            for batch in names:
                with open(folder / batch, "rb") as handle:  # from the checksum-verified archive
                    entry = pickle.load(handle, encoding="latin1")
                images.append(np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                labels.extend(entry["labels"])
            return torch.from_numpy(np.concatenate(images)), torch.tensor(labels, dtype=torch.long)

        return read

    return TensorSource({"train": reader([f"data_batch_{i}" for i in range(1, 6)]),
                         "test": reader(["test_batch"])}, CIFAR10_CLASSES,
                        (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), (3, 32, 32))


def _digits(root, test_fraction: float = 0.2, **_):
    """scikit-learn's bundled 8x8 digits (1,797 images), split per class with a fixed seed."""

    def reader(which):
        def read():
            from sklearn.datasets import load_digits

            bunch = load_digits()
            images = torch.from_numpy(np.rint(bunch.images * (255 / 16)).astype(np.uint8))
            labels = torch.from_numpy(bunch.target.astype(np.int64))
            index = _stratified_split(labels, test_fraction, seed=0)[which]
            return images[index].unsqueeze(1), labels[index]

        return read

    return TensorSource({"train": reader(0), "test": reader(1)}, [str(d) for d in range(10)],
                        (0.0,), (1.0,), (1, 8, 8))


def _stratified_split(labels: torch.Tensor, test_fraction: float, seed: int):
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = round(len(members) * test_fraction)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def _synthetic(root, num_classes: int = 10, image_shape: Sequence[int] = (3, 32, 32),
               train_per_class: int = 500, test_per_class: int = 100, seed: int = 0, **_):
    """Generated images: per class a smooth random prototype; samples are shifted, noisy copies."""
    c, h, w = image_shape
    low = torch.rand(num_classes, c, 4, 4, generator=torch.Generator().manual_seed(seed))
    prototypes = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear",
                                                 align_corners=False)

    def reader(per_class, stream):
        def read():
            generator = torch.Generator().manual_seed(seed * 1000 + stream)
            labels = torch.arange(num_classes).repeat_interleave(per_class)
            x = prototypes[labels]
            shifts = torch.randint(-2, 3, (len(labels), 2), generator=generator)
            for shift in shifts.unique(dim=0).tolist():
                members = (shifts == torch.tensor(shift)).all(1)
                x[members] = x[members].roll(tuple(shift), dims=(2, 3))
            blobs = torch.nn.functional.interpolate(
                torch.rand(len(labels), c, 8, 8, generator=generator), size=(h, w),
                mode="bilinear", align_corners=False)
            x = 0.6 * x + 0.4 * blobs + 0.05 * torch.randn(x.shape, generator=generator)
            return (x.clamp(0, 1) * 255).round().to(torch.uint8), labels

        return read

    return TensorSource({"train": reader(train_per_class, 1), "test": reader(test_per_class, 2)},
                        [f"class{k}" for k in range(num_classes)], (0.5,) * c, (0.25,) * c,
                        tuple(image_shape))


# --- image-file data sets ---------------------------------------------------------------------


def _file_transforms(image_size: int, augment: bool, mean, std, resize_crop: bool = False):
    from torchvision import transforms as T

    resize = [T.Resize(256), T.CenterCrop(image_size)] if resize_crop else [
        T.Resize((image_size, image_size))]
    flip = [T.RandomHorizontalFlip()] if augment else []
    tail = [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(resize + flip + tail), T.Compose(resize + tail)


def _require_dir(path: Path, what: str, how: str) -> None:
    if not path.is_dir():
        raise MnemuError(f"{what} not found at {path}; {how}")


#: The 40 CUB-200-2011 classes and 49 Stanford Cars classes of the paper: the first task of the
#: Learning-with-Selective-Forgetting benchmark (Shibata et al., 2021), as 1-based class ids
#: (classes.txt; devkit/cars_meta.mat). Its code trains on pre-built folders and splits CIFAR-100
#: into tasks in natural class order, so task 0 is taken to be the first 40 / 49 classes.
CUB_CLASSES = tuple(range(1, 41))
CARS_CLASSES = tuple(range(1, 50))


def _cub(root, class_ids: Sequence[int] = CUB_CLASSES, image_size: int = 224, **_):
    archive = download(_CUB, root / "cub" / _CUB.name)
    folder = _extract(archive, root / "cub" / "extracted", "CUB_200_2011/train_test_split.txt")
    folder = folder / "CUB_200_2011"

    def table(name):
        with open(folder / name) as handle:
            return dict(line.split(maxsplit=1) for line in handle.read().splitlines() if line)

    paths, labels, is_train = table("images.txt"), table("image_class_labels.txt"), table(
        "train_test_split.txt")
    names = table("classes.txt")
    keep = {cls: k for k, cls in enumerate(class_ids)}
    train, test = [], []
    for image_id, rel in sorted(paths.items(), key=lambda kv: int(kv[0])):
        cls = int(labels[image_id])
        if cls in keep:
            target = train if is_train[image_id].strip() == "1" else test
            target.append((str(folder / "images" / rel.strip()), keep[cls]))
    class_names = [names[str(c)].strip() for c in class_ids]
    return train, test, class_names, image_size


def _stanford_cars(root, class_ids: Sequence[int] = CARS_CLASSES, image_size: int = 224, **_):
    folder = root / "stanford_cars"
    how = ("the original download site is gone: get the Stanford Cars images and devkit (e.g. from "
           "Kaggle's 'stanford-cars-dataset') and lay them out as torchvision's StanfordCars expects "
           f"({folder}/devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_train/, cars_test/, "
           "cars_test_annos_withlabels.mat)")
    _require_dir(folder / "devkit", "Stanford Cars devkit", how)
    from scipy.io import loadmat

    meta = loadmat(folder / "devkit" / "cars_meta.mat", squeeze_me=True)["class_names"].tolist()
    keep = {cls: k for k, cls in enumerate(class_ids)}

    def split(mat, images):
        samples = []
        for a in loadmat(mat, squeeze_me=True)["annotations"]:
            if int(a["class"]) in keep:
                samples.append((str(images / a["fname"]), keep[int(a["class"])]))
        return samples

    train = split(folder / "devkit" / "cars_train_annos.mat", folder / "cars_train")
    test = split(folder / "cars_test_annos_withlabels.mat", folder / "cars_test")
    return train, test, [meta[c - 1] for c in class_ids], image_size


def _lfw(root, num_identities: int = 100, test_fraction: float = 0.2, image_size: int = 224, **_):
    """LFW (funneled): the ``num_identities`` people with the most images, split per person."""
    archive = download(_LFW, root / "lfw" / _LFW.name)
    folder = _extract(archive, root / "lfw" / "extracted", "lfw_funneled") / "lfw_funneled"
    people = sorted((p for p in folder.iterdir() if p.is_dir()),
                    key=lambda p: (-len(list(p.glob("*.jpg"))), p.name))[:num_identities]
    generator = torch.Generator().manual_seed(0)
    train, test = [], []
    for label, person in enumerate(people):
        files = sorted(person.glob("*.jpg"))
        order = torch.randperm(len(files), generator=generator).tolist()
        n_test = max(1, round(len(files) * test_fraction))
        for rank, i in enumerate(order):
            (test if rank < n_test else train).append((str(files[i]), label))
    return train, test, [p.name for p in people], image_size


def _imagenet(root, path: str | None = None, image_size: int = 224, **_):
    folder = Path(path) if path else root / "imagenet"
    how = ("ImageNet cannot be downloaded automatically: get ILSVRC2012 from image-net.org and "
           f"arrange it as {folder}/train/<wnid>/*.JPEG and {folder}/val/<wnid>/*.JPEG "
           "(or pass path: /your/imagenet)")
    for split in ("train", "val"):
        _require_dir(folder / split, f"ImageNet {split} folder", how)
    from torchvision.datasets.folder import make_dataset, find_classes

    names, index = find_classes(str(folder / "train"))
    train = make_dataset(str(folder / "train"), index, extensions=(".jpeg", ".jpg", ".png"))
    test = make_dataset(str(folder / "val"), index, extensions=(".jpeg", ".jpg", ".png"))
    return train, test, names, image_size


# --------------------------------------------------------------------------------------------
# Registry and public functions

_TENSOR_LOADERS = {
    "mnist": (_mnist, False),
    "fashion_mnist": (_fashion_mnist, False),
    "cifar10": (_cifar10, True),
    "digits": (_digits, False),
    "synthetic": (_synthetic, False),
}
_FILE_LOADERS = {
    "cub": (_cub, True, False),
    "stanford_cars": (_stanford_cars, True, False),
    "lfw": (_lfw, True, False),
    "imagenet": (_imagenet, False, True),
}


def dataset_names() -> list[str]:
    return sorted([*_TENSOR_LOADERS, *_FILE_LOADERS])


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
    loader (``class_ids`` for CUB/Cars: 1-based ids of the original data set; ``path`` for
    ImageNet; ``num_classes``, ``image_shape``, ``seed`` for ``synthetic``). Splits are read when
    first used.
    """
    root = Path(root) if root is not None else default_root()
    if name in _TENSOR_LOADERS:
        load, default_augment = _TENSOR_LOADERS[name]
        source = load(root, **options)
        augment = default_augment if augment is None else augment
        remap, class_names = _relabel(source.class_names, classes)
        shape = source.shape if image_size is None else (source.shape[0], image_size, image_size)

        def tensor_split(which, max_per_class, with_augment):
            def make():
                images, labels = source.read[which]()
                keep = _select(labels, classes, max_per_class)
                images = _resize(images[keep], image_size)
                return TensorImages(images, remap[labels[keep]], source.mean, source.std,
                                    with_augment)

            return make

        splits = DataSplits(name, tensor_split("train", max_train_per_class, augment),
                            tensor_split("test", max_test_per_class, False), shape, class_names,
                            source.mean, source.std, {})
    elif name in _FILE_LOADERS:
        load, default_augment, resize_crop = _FILE_LOADERS[name]
        if image_size is not None:
            options["image_size"] = image_size
        train, test, names, size = load(root, **options)
        augment = default_augment if augment is None else augment
        train_tf, test_tf = _file_transforms(size, augment, IMAGENET_MEAN, IMAGENET_STD, resize_crop)
        remap, class_names = _relabel(names, classes)

        def file_split(samples, max_per_class, transform):
            def make():
                labels = torch.tensor([y for _, y in samples], dtype=torch.long)
                keep = _select(labels, classes, max_per_class).tolist()
                return FileImages([(samples[i][0], int(remap[samples[i][1]])) for i in keep],
                                  transform)

            return make

        splits = DataSplits(name, file_split(train, max_train_per_class, train_tf),
                            file_split(test, max_test_per_class, test_tf), (3, size, size),
                            class_names, IMAGENET_MEAN, IMAGENET_STD, {})
    else:
        raise MnemuError(f"unknown data set {name!r}; use one of {', '.join(dataset_names())}")
    splits.options = {"augment": augment, "classes": list(classes) if classes else None,
                      "max_train_per_class": max_train_per_class,
                      "max_test_per_class": max_test_per_class, "image_size": image_size,
                      **options}
    return splits


def _resize(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """Square-resize uint8 images (area averaging when shrinking), for cheaper quick runs."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    mode = "area" if size < images.shape[-1] else "bilinear"
    resized = torch.nn.functional.interpolate(images.float(), size=(size, size), mode=mode)
    return resized.round().clamp(0, 255).to(torch.uint8)


def _select(labels: torch.Tensor, classes, max_per_class) -> torch.Tensor:
    """Indices of the samples to keep: in ``classes`` (if given), the first n of each class."""
    keep = torch.ones(len(labels), dtype=torch.bool)
    if classes is not None:
        keep = torch.isin(labels, torch.tensor(list(classes), dtype=labels.dtype))
    if max_per_class is not None:
        rank = torch.zeros(len(labels), dtype=torch.long)
        for c in labels.unique().tolist():
            members = (labels == c).nonzero().flatten()
            rank[members] = torch.arange(len(members))
        keep &= rank < max_per_class
    return keep.nonzero().flatten()


def _relabel(class_names: list[str], classes):
    """A lookup old label -> new label, and the kept class names."""
    if classes is None:
        return torch.arange(len(class_names)), list(class_names)
    bad = [c for c in classes if not 0 <= c < len(class_names)]
    if bad:
        raise MnemuError(f"classes {bad} are out of range; this data set's classes are "
                         f"0..{len(class_names) - 1}")
    remap = torch.full((len(class_names),), -1, dtype=torch.long)
    remap[torch.tensor(list(classes))] = torch.arange(len(classes))
    return remap, [class_names[c] for c in classes]


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
