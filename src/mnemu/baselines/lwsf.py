"""LwSF: Learning with Selective Forgetting (Shibata, Irie, Ikami, Mitsuzumi, IJCAI 2021), as a
class-removal baseline.

LwSF trains with one random "mnemonic code" per class mixed into the data; when classes are to
be deleted it keeps training (on a new task's data, if any) with losses that preserve the other
classes and let the deleted ones go, using the codes of the preserved classes in place of their
old data (Table 1 of the one-shot paper: O(E (N_new + C_R)), data-free). Here, with no new task:
the model is the one trained with codes (mnemu's training *is* LwSF's code mixing, except that
mnemu replaces a sample by its code while LwSF blends them), and forgetting runs ``epochs``
optimiser steps on the codes, each with

- keep: ``lmd_keep * CE(model(code_c), c)`` over the remaining classes' codes;
- LwF with random targets for the deleted classes (the authors' ``is_lwf_rand``):
  ``lmd_lwf * T^2 * [KL(teacher * m || model * m) + KL(random * (1-m) || model * (1-m))]`` on the
  softened logits of every code, where the teacher is the model before forgetting, ``random`` a
  freshly initialised copy and ``m`` masks the remaining classes' logits;
- EWC: ``lmd_ewc * sum F_R (w - w_0)^2`` with ``F_R`` the remaining classes' code Fisher.

Simplified: no new task (``retain_per_class`` > 0 adds remaining-class training samples to the
keep and LwF losses, as a stand-in for new data; 0, the default, is data-free); the model trains
in train mode, so BatchNorm statistics follow the codes' batches, as they would in LwSF's
training; cross-entropy in
place of the authors' additive-margin softmax; EWC's Fisher from the codes. Weights and optimiser
follow their CUB configuration (ini/cub_t5.ini): lmd_keep 10, lmd_lwf 5, lmd_ewc 100, SGD lr 1e-3,
weight decay 5e-4, T = 2.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data import loader
from ..errors import MnemuError
from ..fisher import class_fisher
from .common import reinitialised, require_codes, sample_per_class, subset, train_labels


@dataclass
class Settings:
    epochs: int = 200           # optimiser steps over the codes (their epochs_per_task)
    lr: float = 1e-3            # SGD (cub_t5.ini)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lmd_keep: float = 10.0
    lmd_lwf: float = 5.0
    lmd_ewc: float = 100.0
    temperature: float = 2.0
    retain_per_class: int = 0   # 0: data-free (codes only)
    batch_size: int = 128       # remaining-class samples per step when retain_per_class > 0
    seed: int = 0

    def __post_init__(self):
        if self.epochs < 1 or self.retain_per_class < 0:
            raise MnemuError(f"LwSF epochs must be >= 1 and retain_per_class >= 0, got "
                             f"{self.epochs}, {self.retain_per_class}")


def _kl(student, target, temperature):
    return F.kl_div(F.log_softmax(student / temperature, dim=1),
                    F.softmax(target / temperature, dim=1), reduction="batchmean")


def forget(model, data, forget_classes, settings: Settings, *, device, codes=None, **_):
    codes = require_codes("LwSF", codes, data.num_classes).to(device)
    remain = [c for c in range(data.num_classes) if c not in forget_classes]
    keep_mask = torch.ones(data.num_classes, device=device)
    keep_mask[list(forget_classes)] = 0.0
    code_labels = torch.arange(data.num_classes, device=device)
    remain_t = torch.tensor(remain, device=device)

    teacher = copy.deepcopy(model).eval()  # the model before forgetting
    random_net = reinitialised(model, settings.seed).to(device).eval()
    (fisher_remain,) = class_fisher(model, codes, code_labels, [remain])
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    student = model  # run_baseline hands every method its own copy

    def targets(x):
        with torch.no_grad():
            return teacher(x), random_net(x)

    code_teacher, code_random = targets(codes)
    retain_batches = None
    if settings.retain_per_class > 0:
        generator = torch.Generator().manual_seed(settings.seed)
        idx = sample_per_class(train_labels(data.train), remain, settings.retain_per_class, generator)
        retain_set = subset(data.train, idx)

        def cycle():
            while True:
                yield from loader(retain_set, settings.batch_size, shuffle=True, generator=generator)

        retain_batches = cycle()

    optimizer = torch.optim.SGD(student.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    t2 = settings.temperature ** 2
    student.train()
    for _ in range(settings.epochs):
        inputs, teacher_logits, random_logits = codes, code_teacher, code_random
        extra_x = extra_y = None
        if retain_batches is not None:
            extra_x, extra_y = next(retain_batches)
            extra_x, extra_y = extra_x.to(device), extra_y.to(device)
            t, r = targets(extra_x)
            inputs = torch.cat([codes, extra_x])
            teacher_logits, random_logits = torch.cat([code_teacher, t]), torch.cat([code_random, r])
        logits = student(inputs)
        keep = F.cross_entropy(logits[remain_t], remain_t)
        if extra_y is not None:
            keep = keep + F.cross_entropy(logits[len(codes):], extra_y)
        lwf = t2 * (_kl(logits * keep_mask, teacher_logits * keep_mask, settings.temperature)
                    + _kl(logits * (1 - keep_mask), random_logits * (1 - keep_mask), settings.temperature))
        ewc = sum((fisher_remain[n] * (p - anchor[n]).square()).sum()
                  for n, p in student.named_parameters())
        loss = settings.lmd_keep * keep + settings.lmd_lwf * lwf + settings.lmd_ewc * ewc
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    student.eval()
    return student, {"steps": settings.epochs, "retain_samples_per_class": settings.retain_per_class}
