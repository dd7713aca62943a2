"""Data sets made on the spot: scikit-learn's bundled digits and generated images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .registry import Source
from .select import stratified_split


def digits(root: Path, test_fraction: float = 0.2, **_) -> Source:
    """scikit-learn's bundled 8x8 digits (1,797 images), split per class with a fixed seed."""

    def reader(which):
        def read():
            from sklearn.datasets import load_digits

            bunch = load_digits()
            images = torch.from_numpy(np.rint(bunch.images * (255 / 16)).astype(np.uint8))
            labels = torch.from_numpy(bunch.target.astype(np.int64))
            index = stratified_split(labels, test_fraction, seed=0)[which]
            return images[index].unsqueeze(1), labels[index]

        return read

    return Source([str(d) for d in range(10)], (1, 8, 8), (0.0,), (1.0,), reader(0), reader(1))


def synthetic(root: Path, num_classes: int = 10, image_shape: Sequence[int] = (3, 32, 32),
              train_per_class: int = 500, test_per_class: int = 100, seed: int = 0, **_) -> Source:
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

    return Source([f"class{k}" for k in range(num_classes)], tuple(image_shape), (0.5,) * c,
                  (0.25,) * c, reader(train_per_class, 1), reader(test_per_class, 2))
