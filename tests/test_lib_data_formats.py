"""Data sets from small files in their real formats (IDX, CIFAR-10's pickled batches in a tar.gz,
CUB-200-2011, Stanford Cars' devkit .mat files, LFW funneled, ImageNet's folders), built in
temporary folders; the registry (user data sets, class counts without reading data)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import pickle
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

import mnemu.data.cifar
import mnemu.data.folders
import mnemu.data.idx
import mnemu.data.registry
from mnemu import MnemuError, load_dataset
from mnemu.data import Source, dataset_num_classes, register_dataset
from mnemu.download import MIRROR_ENV, RemoteFile


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any download attempt fails at once (nothing listens on port 9)."""
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9")


def checked(path: Path) -> RemoteFile:
    """A RemoteFile that the file at ``path`` passes (md5 and sha256)."""
    data = path.read_bytes()
    return RemoteFile(path.name, (), md5=hashlib.md5(data).hexdigest(),
                      sha256=hashlib.sha256(data).hexdigest())


def write_tar(path: Path, folder: Path, arcname: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return path


def write_jpeg(path: Path, colour=(200, 30, 90), size=(6, 5)) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path, quality=95)


def unnormalise(x: torch.Tensor, mean, std) -> torch.Tensor:
    return x * torch.tensor(std).view(-1, 1, 1) + torch.tensor(mean).view(-1, 1, 1)


# --- MNIST: IDX files ----------------------------------------------------------------------------


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX as LeCun describes it: magic 0x0000 08 <ndim> (unsigned bytes), big-endian sizes."""
    magic = 0x0800 + array.ndim
    return gzip.compress(struct.pack(f">I{array.ndim}I", magic, *array.shape)
                         + array.astype(np.uint8).tobytes())


def test_mnist_idx_files_in_place(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    arrays = {"train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28)),
              "train-labels-idx1-ubyte.gz": rng.integers(0, 10, 12),
              "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28)),
              "t10k-labels-idx1-ubyte.gz": np.array([3, 1, 4, 1, 5])}
    files = {}
    for name, array in arrays.items():
        path = tmp_path / "mnist" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(idx_bytes(array))
        files[name] = checked(path)
    monkeypatch.setattr(mnemu.data.idx, "MNIST_FILES", files)
    data = load_dataset("mnist", tmp_path)
    assert data.test.labels.tolist() == [3, 1, 4, 1, 5]
    assert torch.equal(data.train.images[:, 0],
                       torch.from_numpy(arrays["train-images-idx3-ubyte.gz"].astype(np.uint8)))
    x, y = data.test[2]
    assert y == 4 and x.shape == (1, 28, 28)
    torch.testing.assert_close(x[0], torch.from_numpy(arrays["t10k-images-idx3-ubyte.gz"][2]
                                                      .astype(np.float32)) / 255)


# --- CIFAR-10: Python 2 pickles in a tar.gz -----------------------------------------------------


def _py2_str(b: bytes) -> bytes:  # a Python 2 str: SHORT_BINSTRING or BINSTRING
    return b"U" + bytes([len(b)]) + b if len(b) < 256 else b"T" + struct.pack("<i", len(b)) + b


def _int(v: int) -> bytes:  # BININT1 or BININT
    return b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v)


def py2_batch(images: np.ndarray, labels: list[int]) -> bytes:
    """A CIFAR-10 batch as Python 2 with numpy 1 pickled it (protocol 2): a dict of str keys,
    'data' a uint8 array [N, 3072] rebuilt by numpy.core.multiarray._reconstruct."""
    dtype = (b"cnumpy\ndtype\n(" + _py2_str(b"u1") + _int(0) + _int(1) + b"tR("
             + _int(3) + _py2_str(b"|") + b"NNN" + _int(-1) + _int(-1) + _int(0) + b"tb")
    array = (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _int(0) + b"\x85"
             + _py2_str(b"b") + b"\x87R(" + _int(1) + b"(" + _int(len(images)) + _int(3072)
             + b"t" + dtype + b"\x89" + _py2_str(images.tobytes()) + b"tb")
    label_list = b"](" + b"".join(_int(v) for v in labels) + b"e"
    return (b"\x80\x02}(" + _py2_str(b"batch_label") + _py2_str(b"training batch 1 of 5")
            + _py2_str(b"labels") + label_list + _py2_str(b"data") + array + b"u.")


def make_cifar(root: Path, per_batch: int = 4):
    """A cifar-10-python.tar.gz of six small batches; returns (path, train images, train labels,
    test images, test labels) with images uint8 [N, 3, 32, 32]."""
    rng = np.random.default_rng(0)
    folder = root / "src" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, per_batch).tolist()
        (folder / name).write_bytes(py2_batch(images, labels))
        batches[name] = images.reshape(-1, 3, 32, 32), labels
    archive = write_tar(root / "cifar10" / "cifar-10-python.tar.gz", folder, "cifar-10-batches-py")
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    return (archive, np.concatenate([x for x, _ in train]), sum((y for _, y in train), []),
            *batches["test_batch"])


def test_cifar10_python2_batches_load(tmp_path, monkeypatch):
    archive, train_x, train_y, test_x, test_y = make_cifar(tmp_path)
    monkeypatch.setattr(mnemu.data.cifar, "CIFAR10_ARCHIVE", checked(archive))
    data = load_dataset("cifar10", tmp_path)
    assert (len(data.train), len(data.test)) == (20, 4) and data.options["augment"] is True
    assert torch.equal(data.train.images, torch.from_numpy(train_x))
    assert data.train.labels.tolist() == train_y and data.test.labels.tolist() == test_y
    x, _ = data.test[1]
    torch.testing.assert_close(unnormalise(x, data.mean, data.std),
                               torch.from_numpy(test_x[1]).float() / 255)


def test_cifar10_archive_needs_both_checksums(tmp_path, monkeypatch):
    archive = make_cifar(tmp_path)[0]
    good = checked(archive)
    wrong_sha = RemoteFile(good.name, good.urls, md5=good.md5, sha256="0" * 64)
    monkeypatch.setattr(mnemu.data.cifar, "CIFAR10_ARCHIVE", wrong_sha)
    with pytest.raises(MnemuError, match=f"could not download cifar-10-python.tar.gz .* "
                                         f"\\(md5 {good.md5} and sha256 0{{64}}\\)"):
        len(load_dataset("cifar10", tmp_path).train)
    assert not (tmp_path / "cifar10" / "extracted").exists()  # never unpacked


def test_cifar_batch_with_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": Evil(), "labels": [0]}, protocol=2))
    with pytest.raises(MnemuError, match=f"{path} is not a CIFAR-10 batch .*refused "
                                         f"(posix|os|nt)\\.system"):
        mnemu.data.cifar.read_batch(path)
    assert not marker.exists()
    images = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072)  # the real format loads
    path.write_bytes(py2_batch(images, [7, 2]))
    x, y = mnemu.data.cifar.read_batch(path)
    assert y == [7, 2] and np.array_equal(x, images.reshape(2, 3, 32, 32))


# --- CUB-200-2011 ---------------------------------------------------------------------------------


def test_cub_classes_1_to_40_splits_and_labels(tmp_path, monkeypatch):
    src = tmp_path / "src" / "CUB_200_2011"
    names = {c: f"{c:03d}.Bird_{c}" for c in range(1, 46)}
    lines = {"images.txt": [], "image_class_labels.txt": [], "train_test_split.txt": []}
    expected = {"1": [], "0": []}
    image_id = 0
    for c in [45, *range(1, 45)]:  # ids not in class order
        for is_train in ("1", "0"):
            image_id += 1
            rel = f"{names[c]}/img_{image_id}.jpg"
            write_jpeg(src / "images" / rel, colour=(c * 5, 100, 0))
            lines["images.txt"].append(f"{image_id} {rel}")
            lines["image_class_labels.txt"].append(f"{image_id} {c}")
            lines["train_test_split.txt"].append(f"{image_id} {is_train}")
            if c <= 40:
                expected[is_train].append((rel, c - 1))
    for name, rows in lines.items():
        (src / name).write_text("\n".join(rows) + "\n")
    (src / "classes.txt").write_text("".join(f"{c} {n}\n" for c, n in names.items()))
    archive = write_tar(tmp_path / "cub" / "CUB_200_2011.tgz", src, "CUB_200_2011")
    monkeypatch.setattr(mnemu.data.folders, "CUB_ARCHIVE", checked(archive))

    data = load_dataset("cub", tmp_path, image_size=8)
    assert data.num_classes == 40 and data.class_names == [names[c] for c in range(1, 41)]
    assert data.input_shape == (3, 8, 8) and data.options["augment"] is True
    for split, which in ((data.train, "1"), (data.test, "0")):
        got = [(str(Path(p).relative_to(tmp_path / "cub" / "extracted" / "CUB_200_2011" /
                                        "images")), y) for p, y in split.samples]
        assert got == expected[which]
    x, y = data.test[0]  # class 1's test image, colour (5, 100, 0)
    assert x.shape == (3, 8, 8) and y == 0
    pixels = unnormalise(x, data.mean, data.std).mean((1, 2)) * 255
    assert torch.allclose(pixels, torch.tensor([5.0, 100.0, 0.0]), atol=4)
    picked = load_dataset("cub", tmp_path, class_ids=[44, 2])
    assert picked.class_names == [names[44], names[2]]
    assert sorted(y for _, y in picked.train.samples) == [0, 1]


# --- Stanford Cars -------------------------------------------------------------------------------


def test_stanford_cars_devkit_mat_files(tmp_path):
    from scipy.io import savemat

    folder = tmp_path / "stanford_cars"
    (folder / "devkit").mkdir(parents=True)
    names = [f"Maker Model {c}" for c in range(1, 61)]
    savemat(folder / "devkit" / "cars_meta.mat", {"class_names": np.array(names, dtype=object)})
    fields = [("bbox_x1", "O"), ("bbox_y1", "O"), ("bbox_x2", "O"), ("bbox_y2", "O"),
              ("class", "O"), ("fname", "O")]
    expected = {}
    for split, images, mat in (("train", "cars_train", "devkit/cars_train_annos.mat"),
                               ("test", "cars_test", "cars_test_annos_withlabels.mat")):
        classes = list(range(60, 0, -1))  # files in reverse class order
        rows = np.zeros(len(classes), dtype=fields)
        for i, c in enumerate(classes):
            fname = f"{i + 1:05d}.jpg"
            write_jpeg(folder / images / fname)
            rows[i] = (1, 1, 5, 4, c, fname)
        savemat(folder / mat, {"annotations": rows})
        expected[split] = [(str(folder / images / f"{i + 1:05d}.jpg"), c - 1)
                           for i, c in enumerate(classes) if c <= 49]
    data = load_dataset("stanford_cars", tmp_path, image_size=8)
    assert data.num_classes == 49 and data.class_names == names[:49]
    assert data.train.samples == expected["train"] and data.test.samples == expected["test"]
    assert data.train[0][0].shape == (3, 8, 8)


# --- LFW -----------------------------------------------------------------------------------------


def test_lfw_keeps_the_100_people_with_most_images(tmp_path, monkeypatch):
    src = tmp_path / "src" / "lfw_funneled"
    counts = {"Zed_Most": 6}
    counts.update({f"Person_{k:03d}": 2 + k % 3 for k in range(99)})  # 2 to 4 images
    counts.update({"Aaron_Single": 1, "Abel_Single": 1, "Ada_Single": 1})  # left out
    for person, n in counts.items():
        for i in range(1, n + 1):
            write_jpeg(src / person / f"{person}_{i:04d}.jpg", size=(3, 3))
    archive = write_tar(tmp_path / "lfw" / "lfw-funneled.tgz", src, "lfw_funneled")
    monkeypatch.setattr(mnemu.data.folders, "LFW_ARCHIVE", checked(archive))

    data = load_dataset("lfw", tmp_path)
    assert data.num_classes == 100 == dataset_num_classes("lfw", tmp_path)
    assert data.class_names[0] == "Zed_Most"
    assert set(data.class_names) == {p for p, n in counts.items() if n > 1}
    fours = [f"Person_{k:03d}" for k in range(99) if k % 3 == 2]
    assert data.class_names[1 : 1 + len(fours)] == fours  # then 4 images each, by name
    for label, person in enumerate(data.class_names):
        test = [Path(p).name for p, y in data.test.samples if y == label]
        train = [Path(p).name for p, y in data.train.samples if y == label]
        assert len(test) == 1  # max(1, round(0.2 n)) for n <= 6
        assert sorted(test + train) == [f"{person}_{i:04d}.jpg"
                                        for i in range(1, counts[person] + 1)]
    top = load_dataset("lfw", tmp_path, num_identities=3)
    assert top.class_names == ["Zed_Most", *fours[:2]]


# --- ImageNet ------------------------------------------------------------------------------------


WNIDS = ["n01440764", "n01443537", "n01484850"]


def make_imagenet(folder: Path, val_layout: str) -> list[tuple[str, str]]:
    """train/<wnid>/ with 2 images each and val/ in the given layout; returns (val file, wnid)."""
    val = [(f"ILSVRC2012_val_{i:08d}.JPEG", WNIDS[(i * 2) % 3]) for i in range(1, 7)]
    for wnid in WNIDS:
        for i in range(2):
            write_jpeg(folder / "train" / wnid / f"{wnid}_{i}.JPEG", size=(4, 4))
    for name, wnid in val:
        sub = folder / "val" / wnid if val_layout == "folders" else folder / "val"
        write_jpeg(sub / name, size=(4, 4))
    if val_layout == "labels.txt":
        (folder / "val_labels.txt").write_text("".join(f"{n} {w}\n" for n, w in val))
    if val_layout == "kaggle":
        with open(folder / "LOC_val_solution.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ImageId", "PredictionString"])
            for name, wnid in reversed(val):
                writer.writerow([Path(name).stem, f"{wnid} 10 20 30 40 {wnid} 1 2 3 4"])
    return val


@pytest.mark.parametrize("layout", ["folders", "labels.txt", "kaggle"])
def test_imagenet_val_layouts(layout, tmp_path):
    val = make_imagenet(tmp_path / "imagenet", layout)
    data = load_dataset("imagenet", tmp_path, image_size=4)
    assert data.class_names == WNIDS and data.options["augment"] is False
    assert sorted(y for _, y in data.train.samples) == [0, 0, 1, 1, 2, 2]
    got = sorted((Path(p).name, data.class_names[y]) for p, y in data.test.samples)
    assert got == sorted(val)
    assert data.test[0][0].shape == (3, 4, 4)
    assert dataset_num_classes("imagenet", tmp_path) == 3


def test_imagenet_flat_val_without_labels_says_how_to_convert(tmp_path):
    make_imagenet(tmp_path / "imagenet", "flat")
    with pytest.raises(MnemuError) as err:
        load_dataset("imagenet", tmp_path)
    message = str(err.value)
    assert "\n" not in message and "no val/<wnid>/ class folders and no labels" in message
    assert "val_labels.txt" in message and "LOC_val_solution.csv" in message
    assert "valprep.sh" in message
    (tmp_path / "imagenet" / "val_labels.txt").write_text("ILSVRC2012_val_00000001.JPEG n099\n")
    with pytest.raises(MnemuError, match="ILSVRC2012_val_00000001.JPEG is labelled n099, not a "
                                         "train class"):
        load_dataset("imagenet", tmp_path)


# --- registry and class counts --------------------------------------------------------------------


def test_class_counts_from_the_options_alone(tmp_path):
    expected = [("mnist", {}, 10), ("cifar10", {}, 10), ("fashion_mnist", {}, 10),
                ("cub", {}, 40), ("stanford_cars", {}, 49), ("lfw", {}, 100),
                ("imagenet", {}, 1000), ("synthetic", {}, 10),
                ("synthetic", {"num_classes": 7}, 7), ("cub", {"class_ids": range(1, 11)}, 10),
                ("lfw", {"num_identities": 20}, 20), ("mnist", {"classes": [3, 1, 4]}, 3)]
    for name, options, n in expected:
        assert dataset_num_classes(name, tmp_path, **options) == n, (name, options)
    assert list(tmp_path.iterdir()) == []  # nothing fetched, nothing written
    with pytest.raises(MnemuError, match=r"classes \[10\] are out of range"):
        dataset_num_classes("cifar10", tmp_path, classes=[0, 10])
    with pytest.raises(MnemuError, match="unknown data set 'nope'"):
        dataset_num_classes("nope")
    for options in ({}, {"classes": [2, 5]}, {"max_train_per_class": 3}):
        loaded = load_dataset("digits", **options)
        assert dataset_num_classes("digits", **options) == loaded.num_classes


def test_a_user_registered_data_set_loads_by_name(tmp_path, monkeypatch):
    monkeypatch.setattr(mnemu.data.registry, "_DATASETS", dict(mnemu.data.registry._DATASETS))
    calls = []

    def stripes(root, width: int = 4, **_):
        def read(n):
            def reader():
                calls.append(n)
                labels = torch.arange(n) % 3
                images = (labels * 100).to(torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, width)
                return images.contiguous(), labels

            return reader

        return Source(["a", "b", "c"], (1, 2, width), (0.0,), (1.0,), read(9), read(6))

    register_dataset("stripes", stripes, num_classes=3)
    assert "stripes" in mnemu.dataset_names()
    assert dataset_num_classes("stripes", classes=[2, 0]) == 2
    data = load_dataset("stripes", tmp_path, width=5, classes=[2, 0], max_train_per_class=2)
    assert calls == [] and data.input_shape == (1, 2, 5) and data.class_names == ["c", "a"]
    assert data.train.labels.tolist() == [1, 0, 1, 0] and len(data.test) == 4
    x, y = data.train[0]
    assert y == 1 and x.shape == (1, 2, 5) and torch.all(x == 0)
    assert torch.all(data.train[1][0] == 200 / 255)

    files = [(str(tmp_path / f"{k}.png"), k % 2) for k in range(4)]
    for path, label in files:
        write_jpeg(Path(path), colour=(255 * label, 0, 0))
    register_dataset("pictures", lambda root, **_: Source(
        ["dark", "red"], (3, 6, 6), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), lambda: files,
        lambda: files[:2]), num_classes=2, default_augment=False)
    pictures = load_dataset("pictures", tmp_path)
    assert pictures.train.samples == files and pictures.test[1][0].shape == (3, 6, 6)
    assert pictures.test[1][0][0].mean() > 0.95  # red channel of the red picture


def test_importing_mnemu_loads_no_download_code():
    code = ("import sys, mnemu, mnemu.metrics\n"
            "data = mnemu.load_dataset('digits')\n"
            "len(data.train)\n"
            "assert 'mnemu.download' not in sys.modules, 'download imported'\n"
            "assert 'mnemu.data.cifar' not in sys.modules\n"
            "import mnemu.data.cifar\n"
            "assert 'mnemu.download' in sys.modules\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr
