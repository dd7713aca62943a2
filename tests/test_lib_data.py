"""Data sets (load_dataset options, Fashion-MNIST from the Debian package) and downloads, against a
local HTTP server on 127.0.0.1 that the tests start: no internet is touched."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

import mnemu
import mnemu.data
import mnemu.data.idx
from mnemu import MnemuError, load_dataset
from mnemu.download import MIRROR_ENV, RemoteFile, candidate_urls, download, is_valid


# --- a local HTTP server --------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list

    def do_GET(self):
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def lib_http_server(tmp_path):
    """A static file server on 127.0.0.1 (a free port) serving a fresh folder. Yields
    ``(base_url, folder, requests)``; ``requests`` lists the paths asked for."""
    folder = tmp_path / "served"
    folder.mkdir()
    requests: list = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder, requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --- download -----------------------------------------------------------------------------------


def test_download_with_matching_md5(lib_http_server, tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    base, served, requests = lib_http_server
    payload = bytes(range(256)) * 100
    (served / "blob.bin").write_bytes(payload)
    remote = RemoteFile("blob.bin", (f"{base}/blob.bin",), md5=md5(payload))
    dest = tmp_path / "data" / "sub" / "blob.bin"
    assert download(remote, dest) == dest
    assert dest.read_bytes() == payload
    assert leftovers(dest.parent) == []
    assert requests == ["/blob.bin"]
    # a valid copy is not fetched again
    download(remote, dest)
    assert requests == ["/blob.bin"]


def test_download_checksum_mismatch_leaves_nothing(lib_http_server, tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    base, served, _ = lib_http_server
    (served / "blob.bin").write_bytes(b"these are not the bytes you expect")
    remote = RemoteFile("blob.bin", (f"{base}/blob.bin",), md5="0" * 32)
    dest = tmp_path / "data" / "blob.bin"
    with pytest.raises(MnemuError) as err:
        download(remote, dest)
    message = str(err.value)
    assert "\n" not in message
    assert "checksum mismatch (expected md5 " + "0" * 32 + ")" in message
    assert f"download it by hand to {dest}" in message and MIRROR_ENV in message
    assert not dest.exists()
    assert leftovers(dest.parent) == []


def test_download_replaces_a_corrupt_copy_and_tries_urls_in_turn(lib_http_server, tmp_path,
                                                                 monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    base, served, requests = lib_http_server
    payload = b"good bytes" * 1000
    (served / "good.bin").write_bytes(payload)
    remote = RemoteFile("x.bin", (f"{base}/missing.bin", f"{base}/good.bin"),
                        sha256=hashlib.sha256(payload).hexdigest())
    dest = tmp_path / "x.bin"
    dest.write_bytes(b"half a down")
    download(remote, dest)
    assert dest.read_bytes() == payload
    assert requests == ["/missing.bin", "/good.bin"]
    assert leftovers(tmp_path) == []


def test_download_404_names_the_url_and_the_fix(lib_http_server, tmp_path, monkeypatch):
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    base, _, _ = lib_http_server
    remote = RemoteFile("gone.bin", (f"{base}/gone.bin",), md5="1" * 32)
    dest = tmp_path / "gone.bin"
    with pytest.raises(MnemuError, match=rf"could not download gone.bin \({base}/gone.bin: "
                                         r"(?i:.*not found.*)\); download it by hand to ") as err:
        download(remote, dest)
    assert "\n" not in str(err.value) and "md5 " + "1" * 32 in str(err.value)
    assert not dest.exists() and leftovers(tmp_path) == []


def test_mirror_variable_redirects_every_file(monkeypatch):
    remote = RemoteFile("train.gz", ("https://example.org/a/train.gz", "https://example.com/train.gz"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    assert candidate_urls(remote) == list(remote.urls)
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9/mirror/")
    assert candidate_urls(remote) == ["http://127.0.0.1:9/mirror/train.gz"]


def test_recompressed_gzip_passes_by_content_checksum(tmp_path):
    content = b"IDX content " * 500
    original = gzip.compress(content, compresslevel=9, mtime=0)
    recompressed = gzip.compress(content, compresslevel=1, mtime=12345)
    assert original != recompressed
    remote = RemoteFile("f.gz", (), md5=md5(original),
                        gunzip_sha256=hashlib.sha256(content).hexdigest())
    (tmp_path / "a.gz").write_bytes(original)
    (tmp_path / "b.gz").write_bytes(recompressed)
    (tmp_path / "c.gz").write_bytes(gzip.compress(content + b"!"))
    (tmp_path / "d.gz").write_bytes(b"not gzip")
    assert is_valid(tmp_path / "a.gz", remote)
    assert is_valid(tmp_path / "b.gz", remote)
    assert not is_valid(tmp_path / "c.gz", remote)
    assert not is_valid(tmp_path / "d.gz", remote)
    assert not is_valid(tmp_path / "missing.gz", remote)


# --- Fashion-MNIST through the mirror, from generated IDX files ----------------------------------


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes(), mtime=0)


def test_fashion_mnist_downloads_from_the_mirror(lib_http_server, tmp_path, monkeypatch):
    base, served, requests = lib_http_server
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (30, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.tile(np.arange(10), 3),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (20, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": np.repeat(np.arange(10), 2),
    }
    files = {}
    for name, array in arrays.items():
        data = _idx(array)
        (served / name).write_bytes(data)
        files[name] = RemoteFile(name, ("http://unreachable.invalid/" + name,), md5=md5(data))
    empty = tmp_path / "no-system-copy"
    empty.mkdir()
    monkeypatch.setattr(mnemu.data.idx, "FASHION_SYSTEM_DIR", empty)
    monkeypatch.setattr(mnemu.data.idx, "FASHION_FILES", files)
    monkeypatch.setenv(MIRROR_ENV, base + "/")
    root = tmp_path / "data"

    data = load_dataset("fashion_mnist", root)
    assert (len(data.train), len(data.test), data.input_shape) == (30, 20, (1, 28, 28))
    assert sorted(requests) == sorted("/" + name for name in arrays)
    assert data.class_names == mnemu.data.idx.FASHION_CLASSES
    assert torch.equal(data.train.labels, torch.from_numpy(arrays["train-labels-idx1-ubyte.gz"]))
    x, y = data.train[7]
    assert y == 7
    expected = torch.from_numpy(arrays["train-images-idx3-ubyte.gz"][7]).float().div(255)
    torch.testing.assert_close(x[0], expected)
    for name in arrays:
        assert (root / "fashion_mnist" / name).read_bytes() == (served / name).read_bytes()
    # a second load uses the verified copies
    again = load_dataset("fashion_mnist", root)
    assert (len(again.train), len(again.test)) == (30, 20)
    assert len(requests) == 4


# --- data that cannot be had -----------------------------------------------------------------------


@pytest.mark.parametrize("name, filename", [("cub", "CUB_200_2011.tgz"), ("lfw", "lfw-funneled.tgz"),
                                            ("cifar10", "cifar-10-python.tar.gz"),
                                            ("mnist", "train-images-idx3-ubyte.gz")])
def test_downloadable_data_missing_everywhere(name, filename, lib_http_server, tmp_path,
                                              monkeypatch):
    base, _, requests = lib_http_server
    monkeypatch.setenv(MIRROR_ENV, base)
    root = tmp_path / "data"
    with pytest.raises(MnemuError) as err:
        data = load_dataset(name, root)
        len(data.train), len(data.test)  # splits may be read when first used
    message = str(err.value)
    assert "\n" not in message
    assert f"could not download {filename}" in message and "not found" in message.lower()
    assert f"download it by hand to {root / name / filename}" in message
    assert requests == ["/" + filename]
    assert not any(p.is_file() for p in root.rglob("*"))


def test_stanford_cars_missing_says_where_to_put_it(tmp_path):
    with pytest.raises(MnemuError) as err:
        data = load_dataset("stanford_cars", tmp_path)
        len(data.train)
    message = str(err.value)
    assert "\n" not in message
    assert f"Stanford Cars devkit not found at {tmp_path / 'stanford_cars' / 'devkit'}" in message
    assert "Kaggle" in message and "cars_train_annos.mat" in message


def test_imagenet_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(MnemuError) as err:
        data = load_dataset("imagenet", tmp_path)
        len(data.train)
    message = str(err.value)
    assert "\n" not in message
    assert f"ImageNet train folder not found at {tmp_path / 'imagenet' / 'train'}" in message
    assert "image-net.org" in message and "path: /your/imagenet" in message
    with pytest.raises(MnemuError, match="ImageNet train folder not found at /nowhere/in"):
        data = load_dataset("imagenet", tmp_path, path="/nowhere/in")
        len(data.train)


def test_unknown_dataset():
    with pytest.raises(MnemuError, match="unknown data set 'mnist2'; use one of .*digits"):
        load_dataset("mnist2")
    assert {"cub", "digits", "fashion_mnist", "imagenet", "mnist", "stanford_cars",
            "synthetic", "cifar10", "lfw"} <= set(mnemu.dataset_names())


# --- in-memory data sets ----------------------------------------------------------------------------


def _all(dataset):
    """Every (image, label) of a split, one item at a time, stacked."""
    images, labels = zip(*(dataset[i] for i in range(len(dataset))))
    return torch.stack(images), torch.tensor([int(y) for y in labels])


def test_digits():
    data = load_dataset("digits")
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert data.class_names == [str(d) for d in range(10)]
    assert len(data.train) + len(data.test) == 1797
    counts_test = torch.bincount(data.test.labels, minlength=10)
    counts_all = counts_test + torch.bincount(data.train.labels, minlength=10)
    assert ((counts_test.float() / counts_all - 0.2).abs() < 0.01).all()  # stratified 80/20
    x, y = _all(data.test)
    assert x.shape == (len(data.test), 1, 8, 8) and torch.equal(y, data.test.labels)
    assert x.min() >= 0 and x.max() <= 1 and x.max() > 0.99  # (0, 1) normalisation: pixels
    assert data.mean == (0.0,) and data.std == (1.0,)
    assert data.options["augment"] is False
    again = load_dataset("digits")
    assert torch.equal(again.train.images, data.train.images)  # a fixed split


def test_dataset_items_equal_the_stored_images():
    data = load_dataset("digits")
    x, y = _all(data.train)
    assert torch.equal(x, data.train.images.float() / 255)  # mean 0, std 1
    assert torch.equal(y, data.train.labels)


def test_synthetic_shapes_and_seed():
    data = load_dataset("synthetic", num_classes=3, image_shape=(2, 6, 5), train_per_class=7,
                        test_per_class=4, seed=5)
    assert (len(data.train), len(data.test)) == (21, 12)
    assert data.input_shape == (2, 6, 5) and data.num_classes == 3
    assert data.class_names == ["class0", "class1", "class2"]
    assert torch.bincount(data.train.labels).tolist() == [7, 7, 7]
    assert torch.bincount(data.test.labels).tolist() == [4, 4, 4]
    x, _ = _all(data.train)
    assert x.shape == (21, 2, 6, 5)
    pixels = x * 0.25 + 0.5  # mean 0.5, std 0.25 undone
    assert pixels.min() >= -1e-6 and pixels.max() <= 1 + 1e-6
    same = load_dataset("synthetic", num_classes=3, image_shape=(2, 6, 5), train_per_class=7,
                        test_per_class=4, seed=5)
    other = load_dataset("synthetic", num_classes=3, image_shape=(2, 6, 5), train_per_class=7,
                         test_per_class=4, seed=6)
    assert torch.equal(same.train.images, data.train.images)
    assert not torch.equal(other.train.images, data.train.images)
    defaults = load_dataset("synthetic")
    assert defaults.input_shape == (3, 32, 32) and len(defaults.train) == 5000


def test_classes_option_relabels_in_the_given_order():
    full = load_dataset("digits")
    data = load_dataset("digits", classes=[3, 1])
    assert data.class_names == ["3", "1"] and data.num_classes == 2
    for split, full_split in ((data.train, full.train), (data.test, full.test)):
        keep = (full_split.labels == 3) | (full_split.labels == 1)
        assert torch.equal(split.images, full_split.images[keep])
        assert torch.equal(split.labels, (full_split.labels[keep] == 1).long())  # 3 -> 0, 1 -> 1
    assert data.options["classes"] == [3, 1]


def test_max_per_class_keeps_the_first_samples_of_each_class():
    full = load_dataset("digits")
    data = load_dataset("digits", max_train_per_class=5, max_test_per_class=2)
    assert torch.bincount(data.train.labels).tolist() == [5] * 10
    assert torch.bincount(data.test.labels).tolist() == [2] * 10
    for c in range(10):
        first = full.train.images[full.train.labels == c][:5]
        assert torch.equal(data.train.images[data.train.labels == c], first)
    both = load_dataset("digits", classes=[9, 0], max_train_per_class=3)
    assert torch.bincount(both.train.labels).tolist() == [3, 3]
    assert len(both.test) == int(((full.test.labels == 9) | (full.test.labels == 0)).sum())


def test_bad_data_options():
    with pytest.raises(MnemuError, match=r"classes \[10\] are out of range;.* 0\.\.9"):
        data = load_dataset("digits", classes=[0, 10])
        len(data.train)
    with pytest.raises(MnemuError, match="has an empty (train )?split"):
        data = load_dataset("digits", max_train_per_class=0)
        len(data.train)


def test_augment_keeps_shapes_and_changes_images():
    data = load_dataset("synthetic", num_classes=2, image_shape=(3, 8, 8), train_per_class=20,
                        test_per_class=2, augment=True)
    assert data.options["augment"] is True and data.test.augment is False
    torch.manual_seed(0)
    x, _ = _all(data.train)
    plain = (data.train.images.float() / 255 - 0.5) / 0.25
    assert x.shape == plain.shape and not torch.equal(x, plain)


def test_prepare_dataset_manifest():
    manifest = mnemu.prepare_dataset("digits", max_train_per_class=4)
    assert manifest["name"] == "digits" and manifest["num_classes"] == 10
    assert manifest["train_size"] == 40 and manifest["train_per_class"] == [4] * 10
    assert manifest["input_shape"] == [1, 8, 8]


# --- the real Fashion-MNIST (Debian package) ----------------------------------------------------


@pytest.fixture(scope="module")
def fashion(tmp_path_factory):
    """(Fashion-MNIST, the data root it was loaded with: stays empty)."""
    if not mnemu.data.idx.FASHION_SYSTEM_DIR.is_dir():
        pytest.skip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
    root = tmp_path_factory.mktemp("fashion_root")
    return load_dataset("fashion_mnist", root), root


def test_fashion_mnist_from_the_debian_package(fashion):
    fashion, root = fashion
    assert (len(fashion.train), len(fashion.test)) == (60000, 10000)
    assert list(root.iterdir()) == []  # read in place, nothing downloaded or copied
    assert fashion.input_shape == (1, 28, 28) and fashion.num_classes == 10
    assert fashion.class_names[0] == "T-shirt/top" and fashion.class_names[9] == "Ankle boot"
    assert torch.bincount(fashion.train.labels).tolist() == [6000] * 10
    assert torch.bincount(fashion.test.labels).tolist() == [1000] * 10
    x, _ = fashion.test[0]
    assert x.shape == (1, 28, 28) and x.min() >= 0 and x.max() <= 1  # not normalised (paper)
    # the Debian files are recompressed: they pass by content, not by Zalando's md5
    for name, remote in mnemu.data.idx.FASHION_FILES.items():
        path = mnemu.data.idx.FASHION_SYSTEM_DIR / name
        assert is_valid(path, remote)


def test_fashion_mnist_options(fashion):
    fashion, root = fashion
    data = load_dataset("fashion_mnist", root, classes=[9, 0], max_train_per_class=100)
    assert data.class_names == ["Ankle boot", "T-shirt/top"]
    assert torch.bincount(data.train.labels).tolist() == [100, 100]
    assert torch.bincount(data.test.labels).tolist() == [1000, 1000]
    first_boot = fashion.train.images[fashion.train.labels == 9][0]
    assert torch.equal(data.train.images[data.train.labels == 0][0], first_boot)
