"""Mnemonic codes: one fixed random input per class (paper, Sec. 3.1 and Alg. 1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .errors import MnemuError

#: "uniform" is what the authors' code draws (torch.rand, U[0, 1)); the paper's text says N(0, 1).
DISTRIBUTIONS = ("uniform", "normal")


def make_codes(
    num_classes: int, shape: Sequence[int], distribution: str = "uniform", seed: int = 0
) -> torch.Tensor:
    """Draw one code per class.

    Returns a float32 tensor of shape ``[num_classes, *shape]``; row ``c`` is the code of class ``c``.
    Codes are fed to the model as they are (not through the images' normalisation), as the
    authors do. The same ``seed`` always gives the same codes, on any device.
    """
    if distribution not in DISTRIBUTIONS:
        raise MnemuError(
            f"unknown code distribution {distribution!r}; use one of {', '.join(DISTRIBUTIONS)}"
        )
    if num_classes < 1:
        raise MnemuError(f"num_classes must be at least 1, got {num_classes}")
    generator = torch.Generator().manual_seed(int(seed))
    size = (num_classes, *shape)
    if distribution == "uniform":
        return torch.rand(size, generator=generator)
    return torch.randn(size, generator=generator)


def mix_codes(
    images: torch.Tensor,
    labels: torch.Tensor,
    codes: torch.Tensor,
    t_mix: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace each sample, with probability ``t_mix``, by the code of its own class (Alg. 1, l. 4-9).

    ``images`` is a batch ``[B, *shape]`` on any device; ``codes`` is ``[C, *shape]``. The draw uses
    ``generator`` (on the CPU) so that which samples are replaced is reproducible. Returns a new batch.
    """
    if t_mix <= 0:
        return images
    replace = torch.rand(len(labels), generator=generator) < t_mix
    if not replace.any():
        return images
    replace = replace.to(images.device)
    mixed = images.clone()
    mixed[replace] = codes[labels[replace]].to(device=images.device, dtype=images.dtype)
    return mixed


def blend_code(images: torch.Tensor, code: torch.Tensor, ratio: float) -> torch.Tensor:
    """``(1 - ratio) * images + ratio * code``: images blended with one class's code in the
    model's input space (normalised images, raw codes, as training presents them), App. C.3.

    ``images`` is ``[B, *shape]``, ``code`` is ``[*shape]``; ratio 0 gives the images, 1 the code.
    """
    if not 0.0 <= ratio <= 1.0:
        raise MnemuError(f"the blending ratio must be in [0, 1], got {ratio}")
    if tuple(code.shape) != tuple(images.shape[1:]):
        raise MnemuError(f"code of shape {tuple(code.shape)} does not fit images of shape "
                         f"{tuple(images.shape[1:])}; pass one class's code (codes[c])")
    code = code.to(device=images.device, dtype=images.dtype)
    return (1.0 - ratio) * images + ratio * code
