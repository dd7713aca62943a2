"""Why one code per class is enough (paper, Sec. 4.3 and App. B): how far a Fisher is from the
oracle's, and how large the loss gradient is at the trained weights.

``fisher_error``
    the paper's FIM approximation error (Figs. 5 and 10): the L2 norm of the difference between a
    diagonal Fisher and the oracle's (from all training data), divided by the number of parameters.
``loss_gradients``
    the gradient of the mean loss over the samples of each class set (whole training set, forget
    classes, remaining classes: Table 6), streamed a chunk at a time.
``gradient_stats`` / ``group_magnitudes``
    per-tensor sums of a gradient, and the mean absolute value per parameter of a group of tensors
    named by prefix (Table 6's columns: a ResNet's stem and its four stages).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .errors import MnemuError
from .fisher import LossFn, Samples, _chunks, _first_input, cross_entropy_per_sample, \
    default_chunk_size
from .models import eval_mode


def fisher_error(fisher: Mapping[str, torch.Tensor], oracle: Mapping[str, torch.Tensor]) -> float:
    """``||f - f_oracle||_2 / P``: both ``{parameter name: tensor}`` with the same names and
    shapes (one class set's diagonal Fisher, as :func:`mnemu.fisher.class_fisher` returns it),
    the norm over all P parameters together. A float; 0 for identical Fishers."""
    if set(fisher) != set(oracle):
        missing = sorted(set(fisher) ^ set(oracle))
        raise MnemuError(f"the two Fishers cover different parameters ({missing[0]}, ...); "
                         "compare Fishers of the same model")
    squares, count = 0.0, 0
    for name, f in fisher.items():
        o = oracle[name]
        if f.shape != o.shape:
            raise MnemuError(f"parameter {name} has shape {tuple(f.shape)} in one Fisher and "
                             f"{tuple(o.shape)} in the other; compare Fishers of the same model")
        squares += (f.double() - o.double().to(f.device)).square().sum().item()
        count += f.numel()
    if count == 0:
        raise MnemuError("the Fishers have no parameters; pass a model's Fisher")
    return squares ** 0.5 / count


def loss_gradients(
    model: nn.Module,
    inputs: Samples,
    labels: torch.Tensor | None,
    class_sets: Sequence[Sequence[int]],
    *,
    chunk_size: int | None = None,
    loss_fn: LossFn = cross_entropy_per_sample,
) -> list[dict[str, torch.Tensor]]:
    """Gradient of the mean loss over the samples whose label is in each class set.

    ``inputs`` ``[N, ...]`` with ``labels`` ``[N]``, or a data set (read a chunk at a time, in
    order; its ``.labels`` when ``labels`` is None). The model is in eval mode (BatchNorm's running
    statistics, as for the Fisher; restored afterwards) and no regulariser is added: the loss is
    the per-sample ``loss_fn`` (cross-entropy) averaged over the set's samples. Returns one
    ``{parameter name: gradient tensor}`` per class set (float32, on the model's device).
    """
    if labels is None:
        labels = getattr(inputs, "labels", None)
        if not isinstance(labels, torch.Tensor):
            raise MnemuError("no labels given and the data has no .labels tensor; pass the labels")
    labels = labels.long().cpu()
    if len(labels) != len(inputs):
        raise MnemuError("inputs and labels disagree in size; pass one label per sample")
    weights = torch.zeros(len(class_sets), len(labels))
    for k, classes in enumerate(class_sets):
        members = torch.isin(labels, torch.tensor(list(classes), dtype=torch.long))
        if not members.any():
            raise MnemuError(f"class set {list(classes)} has no samples; name classes the data has")
        weights[k, members] = 1.0 / members.sum().item()
    params = dict(model.named_parameters())
    device = next(iter(params.values())).device
    chunk_size = chunk_size or default_chunk_size(_first_input(inputs).numel(), device)
    sums = [{n: torch.zeros_like(p, dtype=torch.float32) for n, p in params.items()}
            for _ in class_sets]
    flags = {n: p.requires_grad for n, p in params.items()}
    try:
        for p in params.values():
            p.requires_grad_(True)
        with eval_mode(model):
            for start, x, y in _chunks(inputs, labels, chunk_size):
                losses = loss_fn(model(x.to(device)), y.to(device)).float()
                w = weights[:, start : start + len(y)].to(device)
                for k in range(len(class_sets)):
                    if not w[k].any():
                        continue  # no sample of this set in the chunk
                    grads = torch.autograd.grad((w[k] * losses).sum(), list(params.values()),
                                                retain_graph=True, allow_unused=True)
                    for (n, _), g in zip(params.items(), grads):
                        if g is not None:
                            sums[k][n] += g.float()
    finally:
        for n, p in params.items():
            p.requires_grad_(flags[n])
    return sums


def gradient_stats(gradient: Mapping[str, torch.Tensor]) -> dict[str, dict]:
    """Per parameter tensor: ``numel``, ``abs_sum`` (sum of |g|) and ``square_sum`` (sum of g^2),
    enough to give any group's mean |g| or L2 norm later without keeping the gradient."""
    return {n: {"numel": g.numel(), "abs_sum": g.double().abs().sum().item(),
                "square_sum": g.double().square().sum().item()} for n, g in gradient.items()}


def group_magnitudes(stats: Mapping[str, Mapping], groups: Mapping[str, Sequence[str]]
                     ) -> dict[str, float]:
    """Mean absolute gradient per parameter, ``sum |g| / number of parameters``, over the tensors
    of each group. ``stats`` as :func:`gradient_stats` gives; ``groups`` ``{group name: parameter
    name prefixes}`` (``"layer1"`` takes ``layer1.0.conv1.weight``, not ``layer10...``)."""
    result = {}
    for group, prefixes in groups.items():
        names = [n for n in stats if any(n == p or n.startswith(p + ".") for p in prefixes)]
        if not names:
            raise MnemuError(f"layer group {group!r} ({', '.join(prefixes)}) matches no parameter "
                             f"of the model (its parameters start {', '.join(list(stats)[:3])}, "
                             "...); fix the group's prefixes")
        count = sum(stats[n]["numel"] for n in names)
        result[group] = sum(stats[n]["abs_sum"] for n in names) / count
    return result
