"""Image-file data sets: CUB-200-2011, Stanford Cars, LFW and ImageNet, read as (path, label)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..download import RemoteFile, download, extract_once
from ..errors import MnemuError
from .registry import Source

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
IMAGE_EXTENSIONS = (".jpeg", ".jpg", ".png")

CUB_ARCHIVE = RemoteFile(
    "CUB_200_2011.tgz",
    ("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",),
    md5="97eceeb196236b17998738112f37df78")
# sha256 as scikit-learn lists its figshare copy (the first URL). torchvision's md5 of the UMass
# file is not required too: that the two name the same bytes is not established.
LFW_ARCHIVE = RemoteFile(
    "lfw-funneled.tgz",
    ("https://ndownloader.figshare.com/files/5976015",
     "http://vis-www.cs.umass.edu/lfw/lfw-funneled.tgz"),
    sha256="b47c8422c8cded889dc5a13418c4bc2abbda121092b3533a83306f90d900100a")

#: The 40 CUB-200-2011 classes and 49 Stanford Cars classes of the paper: the first task of the
#: Learning-with-Selective-Forgetting benchmark (Shibata et al., 2021), as 1-based class ids
#: (classes.txt; devkit/cars_meta.mat). Its code trains on pre-built folders and splits CIFAR-100
#: into tasks in natural class order, so task 0 is taken to be the first 40 / 49 classes.
CUB_CLASSES = tuple(range(1, 41))
CARS_CLASSES = tuple(range(1, 50))


def _source(class_names, train, test, resize_crop=False) -> Source:
    """A file source whose samples are already listed."""
    return Source(list(class_names), (3, 224, 224), IMAGENET_MEAN, IMAGENET_STD,
                  lambda: train, lambda: test, resize_crop)


def _require_dir(path: Path, what: str, how: str) -> None:
    if not path.is_dir():
        raise MnemuError(f"{what} not found at {path}; {how}")


def _check_ids(class_ids, known, what: str) -> None:
    bad = [c for c in class_ids if c not in known]
    if bad:
        raise MnemuError(f"class_ids {bad} are not {what} classes; use ids "
                         f"{min(known)}..{max(known)}")


# --- CUB-200-2011 ------------------------------------------------------------------------------


def cub(root: Path, class_ids: Sequence[int] = CUB_CLASSES, **_) -> Source:
    """CUB-200-2011 with its own train/test split (train_test_split.txt), the given classes
    relabelled 0..k-1 in the order given, images in image-id order."""
    archive = download(CUB_ARCHIVE, root / "cub" / CUB_ARCHIVE.name)
    folder = extract_once(archive, root / "cub" / "extracted",
                          "CUB_200_2011/train_test_split.txt") / "CUB_200_2011"

    def table(name):  # "<id> <value>" lines
        with open(folder / name) as handle:
            return dict(line.split(maxsplit=1) for line in handle.read().splitlines() if line)

    paths, labels = table("images.txt"), table("image_class_labels.txt")
    is_train, names = table("train_test_split.txt"), table("classes.txt")
    _check_ids(class_ids, {int(k) for k in names}, "CUB-200-2011")
    keep = {cls: k for k, cls in enumerate(class_ids)}
    train, test = [], []
    for image_id, rel in sorted(paths.items(), key=lambda kv: int(kv[0])):
        cls = int(labels[image_id])
        if cls in keep:
            target = train if is_train[image_id].strip() == "1" else test
            target.append((str(folder / "images" / rel.strip()), keep[cls]))
    return _source([names[str(c)].strip() for c in class_ids], train, test)


def cub_num_classes(root: Path, class_ids: Sequence[int] = CUB_CLASSES, **_) -> int:
    return len(class_ids)


# --- Stanford Cars -----------------------------------------------------------------------------


def stanford_cars(root: Path, class_ids: Sequence[int] = CARS_CLASSES, **_) -> Source:
    """Stanford Cars in torchvision's layout; the given classes (1-based ids of cars_meta.mat)."""
    folder = root / "stanford_cars"
    how = ("the original download site is gone: get the Stanford Cars images and devkit (e.g. from "
           "Kaggle's 'stanford-cars-dataset') and lay them out as torchvision's StanfordCars expects "
           f"({folder}/devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_train/, cars_test/, "
           "cars_test_annos_withlabels.mat)")
    _require_dir(folder / "devkit", "Stanford Cars devkit", how)
    from scipy.io import loadmat

    meta = loadmat(folder / "devkit" / "cars_meta.mat", squeeze_me=True)["class_names"].tolist()
    _check_ids(class_ids, set(range(1, len(meta) + 1)), "Stanford Cars")
    keep = {cls: k for k, cls in enumerate(class_ids)}

    def split(mat, images):
        samples = []
        for a in np.atleast_1d(loadmat(mat, squeeze_me=True)["annotations"]):
            if int(a["class"]) in keep:
                samples.append((str(images / a["fname"]), keep[int(a["class"])]))
        return samples

    train = split(folder / "devkit" / "cars_train_annos.mat", folder / "cars_train")
    test = split(folder / "cars_test_annos_withlabels.mat", folder / "cars_test")
    return _source([meta[c - 1] for c in class_ids], train, test)


def cars_num_classes(root: Path, class_ids: Sequence[int] = CARS_CLASSES, **_) -> int:
    return len(class_ids)


# --- LFW ---------------------------------------------------------------------------------------


def lfw(root: Path, num_identities: int = 100, test_fraction: float = 0.2, **_) -> Source:
    """LFW (funneled): the ``num_identities`` people with the most images (ties by name), labelled
    in that order; per person a seeded random ``test_fraction`` (at least one image) is test."""
    archive = download(LFW_ARCHIVE, root / "lfw" / LFW_ARCHIVE.name)
    folder = extract_once(archive, root / "lfw" / "extracted", "lfw_funneled") / "lfw_funneled"
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
    return _source([p.name for p in people], train, test)


def lfw_num_classes(root: Path, num_identities: int = 100, **_) -> int:
    return num_identities


# --- ImageNet ----------------------------------------------------------------------------------

#: Ground truth of a flat val/ folder, looked for in the ImageNet folder: "<file> <wnid>" lines,
#: or the Kaggle ImageNet challenge's CSV (ImageId,PredictionString; its first word is the wnid).
VAL_LABELS = ("val_labels.txt", "LOC_val_solution.csv")


def _imagenet_folder(root: Path, path) -> Path:
    return Path(path) if path else root / "imagenet"


def _imagenet_how(folder: Path) -> str:
    return ("ImageNet cannot be downloaded automatically: get ILSVRC2012 from image-net.org and "
            f"put it in {folder} as train/<wnid>/*.JPEG plus val/<wnid>/*.JPEG (or val/*.JPEG with "
            f"{VAL_LABELS[0]} or {VAL_LABELS[1]} beside them) (or pass path: /your/imagenet)")


def imagenet_missing_files(root: Path, path: str | None = None, **_) -> str | None:
    """What the ImageNet folder lacks (one line: what, where, how), from directory entries only;
    None when train/ has class folders and val/ has class folders or a label file beside it."""
    folder = _imagenet_folder(root, path)
    for split in ("train", "val"):
        if not (folder / split).is_dir():
            return f"ImageNet {split} folder not found at {folder / split}; {_imagenet_how(folder)}"
    if not any(p.is_dir() for p in (folder / "train").iterdir()):
        return (f"ImageNet train folder {folder / 'train'} has no <wnid>/ class folders; "
                f"{_imagenet_how(folder)}")
    val = folder / "val"
    labelled = any((folder / name).is_file() for name in VAL_LABELS)
    if not labelled and not any(p.is_dir() for p in val.iterdir()):
        return (f"ImageNet val folder {val} has no val/<wnid>/ class folders and no labels: put "
                f"{VAL_LABELS[0]} ('<file> <wnid>' lines) or Kaggle's {VAL_LABELS[1]} in {folder}, "
                "or sort the images into class folders (e.g. with the widely used valprep.sh)")
    return None


def imagenet(root: Path, path: str | None = None, **_) -> Source:
    """ILSVRC2012: train/<wnid>/ images and the val images (in val/<wnid>/, or flat with a label
    file), classes in wnid order; resized to 256 and centre-cropped."""
    folder = _imagenet_folder(root, path)
    how = _imagenet_how(folder)
    for split in ("train", "val"):
        _require_dir(folder / split, f"ImageNet {split} folder", how)
    from torchvision.datasets.folder import find_classes, make_dataset

    names, index = find_classes(str(folder / "train"))
    train = make_dataset(str(folder / "train"), index, extensions=IMAGE_EXTENSIONS)
    if any(p.is_dir() for p in (folder / "val").iterdir()):
        try:
            test = make_dataset(str(folder / "val"), index, extensions=IMAGE_EXTENSIONS)
        except FileNotFoundError as err:
            raise MnemuError(f"ImageNet val folder {folder / 'val'}: {err}; give every train "
                             "class a val/<wnid>/ folder of images") from err
    else:
        test = _flat_val(folder, index)
    return _source(names, train, test, resize_crop=True)


def _val_wnids(folder: Path) -> tuple[Path, dict[str, str]] | None:
    """(the label file, image name without extension -> wnid), or None when there is none."""
    text, kaggle = (folder / name for name in VAL_LABELS)
    if text.is_file():
        pairs = (line.split() for line in text.read_text().splitlines() if line.strip())
        return text, {Path(f).stem: wnid for f, wnid in pairs}
    if kaggle.is_file():
        with open(kaggle, newline="") as handle:
            return kaggle, {row["ImageId"]: row["PredictionString"].split()[0]
                            for row in csv.DictReader(handle)}
    return None


def _flat_val(folder: Path, index: dict[str, int]) -> list[tuple[str, int]]:
    val = folder / "val"
    images = sorted(p for p in val.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    found = _val_wnids(folder)
    if found is None:
        raise MnemuError(
            f"ImageNet val folder {val} has no val/<wnid>/ class folders and no labels: put "
            f"{VAL_LABELS[0]} ('<file> <wnid>' lines) or Kaggle's {VAL_LABELS[1]} in {folder}, "
            "or sort the images into class folders (e.g. with the widely used valprep.sh)")
    labels_file, wnids = found
    samples = []
    for image in images:
        wnid = wnids.get(image.stem)
        if wnid is None or wnid not in index:
            why = "has no label" if wnid is None else f"is labelled {wnid}, not a train class"
            raise MnemuError(f"ImageNet val image {image.name} {why} in {labels_file}; fix the "
                             "label file or remove the image")
        samples.append((str(image), index[wnid]))
    return samples


def imagenet_num_classes(root: Path, path: str | None = None, **_) -> int:
    """The number of train/<wnid>/ folders when ImageNet is in place, else ILSVRC2012's 1000."""
    train = _imagenet_folder(root, path) / "train"
    if not train.is_dir():
        return 1000
    return sum(1 for p in train.iterdir() if p.is_dir())
