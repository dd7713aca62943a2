"""ERM-KTP (Lin, Chen, Wang, Lu, Zhou, Zhang, "ERM-KTP: Knowledge-Level Machine Unlearning via
Knowledge Transfer", CVPR 2023). CNNs only.

ERM (prepare, part of training): a gate matrix ``M`` [channels, classes] on the last
convolutional features, trained with the model: in "mask" epochs each training sample's pooled
features are multiplied by its class's column ``M[:, y]``, and the loss adds
``lambda_reg * (relu(|M|_1 - 0.1 * M.numel()) + 0.1 * sum_{i<j} <M[:, i], M[:, j]>)`` (sparse,
little overlap between classes: entanglement reduction). After every step each channel's row is
divided by its largest entry and clipped to [0, 1]. The mask is a training device only; at test
time the network runs without it.

KTP (the forget step): channels any forget class uses (``M[:, c] > 0``) are prohibited. A student
gets the teacher's head with those channels' columns and the forget classes' rows zeroed and kept
fixed; its backbone learns, on the remaining classes' training data, to reproduce the teacher's
last feature map and its pooled features with the prohibited channels zeroed (sum of two MSEs).

Settings follow the authors' code (RUIYUN-ML/ERM-KTP): SGD momentum 0.9, weight decay 5e-4,
lr 0.1, batch 256, lambda_reg 1e-3, mask epochs where ``epoch % 3 >= 2``; KTP 200 epochs with lr
x0.1 at epochs 10 and 20 (counted from epoch 5), student backbone freshly initialised.

Simplified: ERM starts from the model handed in (already trained, with codes) and runs
``erm_epochs`` more epochs at ``erm_lr`` rather than training from scratch for 200 epochs
(``erm_from_scratch=True`` restarts from random weights); the mask is applied to the pooled
features, which equals masking the map before average pooling; ``mask_lr_scale`` (1 in the
authors' code) lets a short ERM run sparsify its mask. Supported models: ResNet-style ones with a
``layer4`` feature stage and an ``fc`` head on its globally pooled output (mnemu's resnet18_cifar,
torchvision's and timm's ResNets).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data import loader
from ..errors import MnemuError
from .common import Unsupported, indices_of, reinitialised, subset, train_labels


@dataclass
class Settings:
    erm_epochs: int = 3
    erm_lr: float = 0.01
    erm_from_scratch: bool = False
    mask_lr_scale: float = 1.0
    lambda_reg: float = 1e-3
    mask_period: int = 3
    mask_epoch_min: int = 2
    ktp_epochs: int = 200
    ktp_lr: float = 0.1
    ktp_milestones: tuple[int, ...] = (10, 20)
    ktp_schedule_start: int = 5
    student_init: str = "random"   # "random" (the authors' code) or "copy" (start from the teacher)
    batch_size: int = 256
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0

    def __post_init__(self):
        self.ktp_milestones = tuple(self.ktp_milestones)
        if self.student_init not in ("random", "copy"):
            raise MnemuError(f"ERM-KTP student_init must be 'random' or 'copy', got {self.student_init!r}")
        if self.mask_period < 1 or self.ktp_epochs < 1 or self.erm_epochs < 0:
            raise MnemuError("ERM-KTP needs mask_period >= 1, ktp_epochs >= 1, erm_epochs >= 0")


def check(model: nn.Module) -> None:
    if not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        raise Unsupported("ERM-KTP", "CNNs only (its gate matrix masks convolutional channels)")
    if not (isinstance(getattr(model, "fc", None), nn.Linear) and hasattr(model, "layer4")):
        raise Unsupported("ERM-KTP", "needs a ResNet-style CNN with a layer4 stage and an fc head "
                                     "on its pooled features")


class _Taps:
    """Hooks: keep the layer4 map and the head's input; optionally scale the head's input."""

    def __init__(self, model: nn.Module):
        self.scale = None  # [B, D] or [D] multiplier of the pooled features, or None
        self.feature_map = self.pooled = None
        self.handles = [model.layer4.register_forward_hook(self._keep_map),
                        model.fc.register_forward_pre_hook(self._head_input)]

    def _keep_map(self, module, args, output):
        self.feature_map = output

    def _head_input(self, module, args):
        x = args[0] if self.scale is None else args[0] * self.scale
        self.pooled = x
        return (x,)

    def remove(self):
        for h in self.handles:
            h.remove()


def _clip(mask: torch.Tensor) -> None:
    with torch.no_grad():
        mask.copy_((mask / mask.max(dim=1, keepdim=True).values.clamp_min(1e-12)).clamp(0, 1))


def mask_penalty(mask: torch.Tensor) -> torch.Tensor:
    l1 = torch.relu(mask.abs().sum() - 0.1 * mask.numel())
    overlap = torch.triu(mask.t() @ mask, diagonal=1).sum()
    return l1 + 0.1 * overlap


def prepare(model, data, forget_classes, settings: Settings, *, device, **_):
    """ERM: train ``model`` in place with the class gate matrix; return the mask [D, C]."""
    if settings.erm_from_scratch:
        model.load_state_dict(reinitialised(model, settings.seed).state_dict())
    mask = nn.Parameter(torch.full((model.fc.in_features, data.num_classes), 0.5, device=device))
    _clip(mask)
    optimizer = torch.optim.SGD(
        [{"params": model.parameters()},
         {"params": [mask], "lr": settings.erm_lr * settings.mask_lr_scale}],
        lr=settings.erm_lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    generator = torch.Generator().manual_seed(settings.seed)
    taps = _Taps(model)
    model.train()
    try:
        for epoch in range(settings.erm_epochs):
            masked = epoch % settings.mask_period >= settings.mask_epoch_min
            for images, labels in loader(data.train, settings.batch_size, shuffle=True,
                                         generator=generator):
                images, labels = images.to(device), labels.to(device)
                taps.scale = mask[:, labels].t() if masked else None
                loss = F.cross_entropy(model(images), labels)
                if masked:
                    loss = loss + settings.lambda_reg * mask_penalty(mask)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                _clip(mask)
    finally:
        taps.remove()
    model.eval()
    return {"mask": mask.detach()}


def forget(model, data, forget_classes, settings: Settings, *, device, state, **_):
    mask = state["mask"]
    keep = (mask[:, list(forget_classes)] <= 0).all(dim=1).float()  # channels no forget class uses
    teacher = model.eval()
    student = (reinitialised(model, settings.seed) if settings.student_init == "random"
               else copy.deepcopy(model)).to(device)
    with torch.no_grad():
        student.fc.weight.copy_(teacher.fc.weight * keep)
        student.fc.weight[list(forget_classes)] = 0.0
        if student.fc.bias is not None:
            student.fc.bias.copy_(teacher.fc.bias)
            student.fc.bias[list(forget_classes)] = 0.0
    student.fc.requires_grad_(False)
    backbone = [p for n, p in student.named_parameters() if not n.startswith("fc.")]
    optimizer = torch.optim.SGD(backbone, lr=settings.ktp_lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(settings.ktp_milestones), 0.1)
    remain = [c for c in range(data.num_classes) if c not in forget_classes]
    remaining = subset(data.train, indices_of(train_labels(data.train), remain))
    generator = torch.Generator().manual_seed(settings.seed)
    teacher_taps, student_taps = _Taps(teacher), _Taps(student)
    teacher_taps.scale = keep
    try:
        for epoch in range(settings.ktp_epochs):
            student.train()
            for images, _ in loader(remaining, settings.batch_size, shuffle=True, generator=generator):
                images = images.to(device)
                with torch.no_grad():
                    teacher(images)
                student(images)
                loss = (F.mse_loss(student_taps.feature_map, teacher_taps.feature_map)
                        + F.mse_loss(student_taps.pooled, teacher_taps.pooled))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            if epoch >= settings.ktp_schedule_start:
                scheduler.step()
    finally:
        teacher_taps.remove()
        student_taps.remove()
    student.fc.requires_grad_(True)
    student.eval()
    return student, {"prohibited_channels": int((keep == 0).sum()), "channels": len(keep),
                     "remaining_samples": len(remaining)}
