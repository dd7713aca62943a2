"""Forgetting metrics (paper, Sec. 4.1): A_R, E_F and per-class accuracy on a test split."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .data import loader
from .models import eval_mode


@torch.no_grad()
def predict(
    model: nn.Module, dataset: Dataset, *, batch_size: int = 512, num_workers: int = 0
) -> dict[str, torch.Tensor]:
    """Run ``model`` (in eval mode) over ``dataset``; return ``labels``, ``predictions`` and the
    per-sample cross-entropy ``losses``, all on the CPU in dataset order."""
    device = next(model.parameters()).device
    labels, predictions, losses = [], [], []
    with eval_mode(model):
        for images, targets in loader(dataset, batch_size, shuffle=False, num_workers=num_workers):
            logits = model(images.to(device)).float()
            targets = targets.to(device)
            labels.append(targets.cpu())
            predictions.append(logits.argmax(1).cpu())
            losses.append(F.cross_entropy(logits, targets, reduction="none").cpu())
    return {"labels": torch.cat(labels), "predictions": torch.cat(predictions),
            "losses": torch.cat(losses)}


def retained_and_forgotten(remain_accuracy: float,
                           forget_accuracy: float) -> tuple[float, float]:
    """A_R and E_F (percent) from the accuracies (fractions) on the remaining classes' samples and
    on the forget classes' samples: the one definition of both."""
    return 100.0 * remain_accuracy, 100.0 - 100.0 * forget_accuracy


def forgetting_metrics(
    labels: torch.Tensor, predictions: torch.Tensor, forget_classes: Sequence[int], num_classes: int,
    *, per_class: bool = True,
) -> dict:
    """A_R = accuracy (%) on test samples of the remaining classes; E_F = 100 - accuracy (%) on
    the forget classes' samples (:func:`retained_and_forgotten`); plus overall and per-class
    accuracy (``per_class=False``: None, saving a pass per class where only A_R and E_F are
    wanted)."""
    correct = predictions == labels
    is_forget = torch.isin(labels, torch.tensor(list(forget_classes), dtype=labels.dtype))
    per_class_accuracy = None
    if per_class:
        per_class_accuracy = [100.0 * correct[labels == c].float().mean().item()
                              if (labels == c).any() else None for c in range(num_classes)]
    remain = correct[~is_forget].float().mean().item()
    forget = correct[is_forget].float().mean().item() if is_forget.any() else None
    a_r, e_f = retained_and_forgotten(remain, 0.0 if forget is None else forget)
    return {
        "A_R": a_r,
        "E_F": None if forget is None else e_f,
        "A_F": None if forget is None else 100.0 * forget,
        "accuracy": 100.0 * correct.float().mean().item(),
        "per_class_accuracy": per_class_accuracy,
        "forget_classes": sorted(int(c) for c in forget_classes),
    }


def evaluate(
    model: nn.Module,
    dataset: Dataset,
    forget_classes: Sequence[int],
    num_classes: int,
    *,
    batch_size: int = 512,
    num_workers: int = 0,
) -> dict:
    """:func:`forgetting_metrics` of ``model`` on ``dataset``."""
    out = predict(model, dataset, batch_size=batch_size, num_workers=num_workers)
    return forgetting_metrics(out["labels"], out["predictions"], forget_classes, num_classes)
