"""SSD: Selective Synaptic Dampening (Foster, Schoepf, Brintrup, AAAI 2024).

Importances are diagonal Fisher estimates on the forget data (``imp_f``) and on the full training
data (``imp_D``). A parameter with ``imp_f > alpha * imp_D`` is specialised to the forget data; it
is scaled by ``beta = min(1, lambda * imp_D / imp_f)``. Nothing is trained.

As the SSD harness computes it (if-loops/selective-synaptic-dampening, notes/method-details.md),
the "Fisher" is per mini-batch: the squared gradient of each batch's *mean* loss, summed over
batches and divided by their number, the model in eval mode, batch 64. Its full-data loader is
sorted by class with the forget classes last (``full_data_order="by_class"``); because a batch's
mean gradient depends on which samples share it, that order changes ``imp_D``: on a 10-class
Fashion-MNIST MLP the harness order with alpha 10 dampened 10 weights and forgot nothing, while
dataset order forgot the class (``full_data_order="dataset"``). alpha = 10, lambda = 1 are the
paper's values, tuned on 20-105 classes; state both order and alpha with every result.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import loader
from ..errors import MnemuError
from ..models import eval_mode
from .common import indices_of, subset, train_labels

ORDERS = ("by_class", "dataset")


@dataclass
class Settings:
    alpha: float = 10.0               # selection threshold (paper; harness "selection_weighting")
    dampening: float = 1.0            # lambda (paper; harness "dampening_constant")
    batch_size: int = 64              # harness
    full_data_order: str = "by_class"  # harness: sorted by class, forget classes last

    def __post_init__(self):
        if self.full_data_order not in ORDERS:
            raise MnemuError(f"SSD full_data_order must be one of {ORDERS}, got {self.full_data_order!r}")
        if not (self.alpha > 0 and self.dampening > 0):
            raise MnemuError(f"SSD alpha and dampening must be positive, got {self.alpha}, {self.dampening}")


def batch_importance(model: nn.Module, dataset, batch_size: int, device) -> dict[str, torch.Tensor]:
    """``mean over batches of (d mean-batch-loss / d theta)^2`` per parameter, model in eval mode,
    batches in dataset order."""
    params = dict(model.named_parameters())
    importance = {n: torch.zeros_like(p) for n, p in params.items()}
    batches = 0
    with eval_mode(model):
        for images, labels in loader(dataset, batch_size, shuffle=False):
            loss = F.cross_entropy(model(images.to(device)), labels.to(device))
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for n, g in zip(params, grads):
                if g is not None:
                    importance[n] += g.square()
            batches += 1
    return {n: t / max(batches, 1) for n, t in importance.items()}


def forget(model, data, forget_classes, settings: Settings, *, device, **_):
    labels = train_labels(data.train)
    forget_idx = indices_of(labels, forget_classes)
    if settings.full_data_order == "by_class":
        remain = [c for c in range(data.num_classes) if c not in forget_classes]
        full_idx = torch.cat([indices_of(labels, [c]) for c in remain + list(forget_classes)])
    else:
        full_idx = torch.arange(len(labels))
    imp_forget = batch_importance(model, subset(data.train, forget_idx), settings.batch_size, device)
    imp_full = batch_importance(model, subset(data.train, full_idx), settings.batch_size, device)
    dampened = 0
    with torch.no_grad():
        for name, p in model.named_parameters():
            f, d = imp_forget[name], imp_full[name]
            selected = f > settings.alpha * d
            beta = (settings.dampening * d / f).clamp(max=1.0)
            p[selected] *= beta[selected]
            dampened += int(selected.sum())
    model.eval()
    return model, {"dampened_parameters": dampened,
                   "parameters": sum(p.numel() for p in model.parameters())}
