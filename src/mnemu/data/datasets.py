"""Data set objects: in-memory images, images read from files, and a pair of splits."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..errors import MnemuError


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


def file_transforms(image_size: int, augment: bool, mean, std, resize_crop: bool = False):
    """(train, test) transforms of file images: square resize (or ImageNet's resize 256 + centre
    crop), a random horizontal flip when ``augment``, then normalisation."""
    from torchvision import transforms as T

    resize = [T.Resize(256), T.CenterCrop(image_size)] if resize_crop else [
        T.Resize((image_size, image_size))]
    flip = [T.RandomHorizontalFlip()] if augment else []
    tail = [T.ToTensor(), T.Normalize(mean, std)]
    return T.Compose(resize + flip + tail), T.Compose(resize + tail)


def collate(batch):
    """DataLoader ``collate_fn``: passes a batch :class:`TensorImages` built whole, else stacks."""
    if isinstance(batch, tuple):
        return batch
    return default_collate(batch)


def loader(dataset: Dataset, batch_size: int, **kwargs) -> DataLoader:
    """A DataLoader that takes whole batches from in-memory data sets."""
    return DataLoader(dataset, batch_size=batch_size, collate_fn=collate, **kwargs)


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
