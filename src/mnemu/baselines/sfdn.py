"""SFDN: Fisher forgetting (Golatkar, Achille, Soatto, "Eternal Sunshine of the Spotless Net:
Selective Forgetting in Deep Networks", CVPR 2020).

The Fisher information of the *remaining* data says which parameters the remaining classes need;
Gaussian noise is added to every parameter with variance ``alpha / F`` (large where the remaining
data does not care), so information specific to the forget classes is destroyed. As in the
authors' code (also run by the SSD harness):

- F is the true Fisher: per sample x, ``E_{y ~ p(y|x)} (d log p(y|x) / d theta)^2``, averaged
  over the remaining training samples (one backward per sample and class there; here every
  sample x class pair at once through :func:`mnemu.fisher.sum_squared_grads` with weights
  ``p(y|x) / N``).
- variance ``v = 1 / (F + 1e-8)`` clamped at 1e3 (at 1e2 for the classifier head), times alpha;
  for weight matrices and kernels, averaged over their second dimension (the input units: one
  variance per output row, per output channel and kernel position for a convolution).
- the head's rows of the forget classes get mean 0 and variance 1e-4; the head's variance and that
  of every 1-d parameter (biases, BatchNorm) are multiplied by 10.

The authors find the head by "first dimension equals the class count"; here it is the last Linear
layer with that many outputs (a hidden layer of that width is not mistaken for it). alpha = 1e-6
is the SSD harness's value (notes/method-details.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data import loader
from ..errors import MnemuError
from ..models import eval_mode
from ..fisher import sum_squared_grads
from .common import indices_of, output_layer, sample_per_class, subset, train_labels

#: Variance clamps and multipliers of the authors' code.
MAX_VARIANCE, MAX_HEAD_VARIANCE, FORGET_ROW_VARIANCE, SCALE_1D_AND_HEAD = 1e3, 1e2, 1e-4, 10.0


@dataclass
class Settings:
    alpha: float = 1e-6                  # noise scale (SSD harness)
    retain_per_class: int | None = None  # None: all remaining training data (the method); a number: a random subset
    pairs_per_pass: int = 640            # (sample, class) pairs per batched pass (speed/memory only)
    seed: int = 0

    def __post_init__(self):
        if not self.alpha > 0:
            raise MnemuError(f"SFDN alpha must be positive, got {self.alpha}")


def true_fisher(model, dataset, num_classes: int, pairs_per_pass: int, device) -> dict[str, torch.Tensor]:
    """Mean over ``dataset`` of ``sum_y p(y|x) (d CE(x, y) / d theta)^2`` per parameter."""
    total = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    count = len(dataset)
    with eval_mode(model):
        for images, _ in loader(dataset, max(1, pairs_per_pass // num_classes), shuffle=False):
            images = images.to(device)
            with torch.no_grad():
                probs = F.softmax(model(images).float(), dim=1)  # [B, C]
            b = len(images)
            # every (sample, class) pair once: inputs repeated C times, labels 0..C-1
            inputs = images.repeat_interleave(num_classes, dim=0)
            labels = torch.arange(num_classes, device=device).repeat(b)
            weights = (probs.reshape(1, -1) / count)
            sums = sum_squared_grads(model, inputs, labels, weights)
            for n, s in sums.items():
                total[n] += s[0]
    return total


def forget(model, data, forget_classes, settings: Settings, *, device, **_):
    labels = train_labels(data.train)
    remain = [c for c in range(data.num_classes) if c not in forget_classes]
    if settings.retain_per_class is None:
        retain_idx = indices_of(labels, remain)
    else:
        retain_idx = sample_per_class(labels, remain, settings.retain_per_class,
                                      torch.Generator().manual_seed(settings.seed))
    fisher = true_fisher(model, subset(data.train, retain_idx), data.num_classes,
                         settings.pairs_per_pass, device)
    head = output_layer(model, data.num_classes)
    head_params = {id(head.weight), id(head.bias) if head.bias is not None else None}
    noise_generator = torch.Generator(device=device).manual_seed(settings.seed)
    forget_rows = torch.tensor(list(forget_classes), device=device)
    with torch.no_grad():
        for name, p in model.named_parameters():
            is_head = id(p) in head_params
            variance = (1.0 / (fisher[name] + 1e-8)).clamp(max=MAX_VARIANCE)
            if is_head:
                variance = variance.clamp(max=MAX_HEAD_VARIANCE)
            variance = settings.alpha * variance
            if p.dim() > 1:  # shared over the input units, as the authors' code does
                variance = variance.mean(dim=1, keepdim=True).expand_as(p).clone()
            mean = p.detach().clone()
            if is_head:
                mean[forget_rows] = 0.0
                variance[forget_rows] = FORGET_ROW_VARIANCE
            if is_head or p.dim() == 1:
                variance = variance * SCALE_1D_AND_HEAD
            noise = torch.randn(p.shape, generator=noise_generator, device=device)
            p.copy_(mean + variance.sqrt() * noise)
    model.eval()
    return model, {"retain_samples": len(retain_idx)}
