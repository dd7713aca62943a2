"""What the baselines share: the ``Unsupported`` error, settings from a dict, class-wise sampling
of a training split without loading it, and the model's output layer."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from ..errors import MnemuError


class Unsupported(MnemuError):
    """A baseline cannot run on this model (e.g. ERM-KTP on an MLP: "CNNs only"); ``reason`` is
    what a results table shows next to its dash."""

    def __init__(self, method: str, reason: str):
        self.method, self.reason = method, reason
        super().__init__(f"{method} does not support this model: {reason}; "
                         f"leave {method} out for this model")


def make_settings(cls, overrides: dict | None):
    """``cls(**overrides)`` with a one-line error naming the unknown keys and the known ones."""
    overrides = dict(overrides or {})
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise MnemuError(f"unknown setting(s) {unknown} for {cls.__qualname__.split('.')[0]}; "
                         f"use some of {sorted(known)}")
    return cls(**overrides)


def train_labels(train_set: Dataset) -> torch.Tensor:
    """The labels of a training split, without reading its images (``.labels``, as mnemu's data
    sets have)."""
    labels = getattr(train_set, "labels", None)
    if not isinstance(labels, torch.Tensor):
        raise MnemuError("the training split has no .labels tensor; use a data set from "
                         "mnemu.load_dataset (or give it a .labels tensor of class indices)")
    return labels.long()


def indices_of(labels: torch.Tensor, classes: Sequence[int]) -> torch.Tensor:
    """Indices (dataset order) of the samples whose label is in ``classes``."""
    return torch.isin(labels, torch.tensor(list(classes), dtype=labels.dtype)).nonzero().flatten()


def sample_per_class(labels: torch.Tensor, classes: Sequence[int], per_class: int | None,
                     generator: torch.Generator) -> torch.Tensor:
    """Up to ``per_class`` random sample indices of each class in ``classes`` (all if None)."""
    chosen = []
    for c in classes:
        members = (labels == c).nonzero().flatten()
        if per_class is not None and len(members) > per_class:
            members = members[torch.randperm(len(members), generator=generator)[:per_class]]
        chosen.append(members)
    return torch.cat(chosen) if chosen else torch.zeros(0, dtype=torch.long)


def subset(dataset: Dataset, indices: torch.Tensor) -> Subset:
    """A view of ``dataset`` (its batched ``__getitems__`` kept), nothing loaded."""
    return Subset(dataset, indices.tolist())


def output_layer(model: nn.Module, num_classes: int) -> nn.Linear:
    """The classifier head: the last ``nn.Linear`` with ``num_classes`` outputs."""
    heads = [m for m in model.modules() if isinstance(m, nn.Linear) and m.out_features == num_classes]
    if not heads:
        raise MnemuError(f"found no Linear layer with {num_classes} outputs (the classifier head) "
                         f"in the model; the method needs one")
    return heads[-1]


def reinitialised(model: nn.Module, seed: int) -> nn.Module:
    """A copy of ``model`` with fresh random weights (each module's ``reset_parameters``, BatchNorm
    statistics too), drawn from ``seed`` without touching the global random state."""
    fresh = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in fresh.modules():
            if hasattr(module, "reset_running_stats"):
                module.reset_running_stats()
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
    return fresh


def require_codes(method: str, codes: torch.Tensor | None, num_classes: int) -> torch.Tensor:
    if codes is None:
        raise MnemuError(f"{method} needs the model's mnemonic codes; pass codes=checkpoint.codes")
    if len(codes) != num_classes:
        raise MnemuError(f"{method} got {len(codes)} codes for {num_classes} classes; pass the "
                         f"checkpoint's codes (one per class)")
    return codes
