"""Choosing and reshaping samples: class selection, the first n per class, resizing, splits."""

from __future__ import annotations

import torch

from ..errors import MnemuError


def select_indices(labels: torch.Tensor, classes, max_per_class) -> torch.Tensor:
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


def check_classes(classes, num_classes: int) -> None:
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise MnemuError(f"classes {bad} are out of range; this data set's classes are "
                         f"0..{num_classes - 1}")


def relabel(class_names: list[str], classes):
    """A lookup old label -> new label (-1: dropped), and the kept class names."""
    if classes is None:
        return torch.arange(len(class_names)), list(class_names)
    check_classes(classes, len(class_names))
    remap = torch.full((len(class_names),), -1, dtype=torch.long)
    remap[torch.tensor(list(classes))] = torch.arange(len(classes))
    return remap, [class_names[c] for c in classes]


def resize(images: torch.Tensor, size: int | None) -> torch.Tensor:
    """Square-resize uint8 images (area averaging when shrinking), for cheaper quick runs."""
    if size is None or tuple(images.shape[-2:]) == (size, size):
        return images
    mode = "area" if size < images.shape[-1] else "bilinear"
    resized = torch.nn.functional.interpolate(images.float(), size=(size, size), mode=mode)
    return resized.round().clamp(0, 255).to(torch.uint8)


def stratified_split(labels: torch.Tensor, test_fraction: float, seed: int):
    """(train indices, test indices): per class, a seeded random ``test_fraction`` is test."""
    generator = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in labels.unique().tolist():
        members = (labels == c).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_test = round(len(members) * test_fraction)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values
