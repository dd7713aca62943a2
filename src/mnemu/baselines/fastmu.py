"""FastMU / UNSIR (Tarun et al., "Fast Yet Effective Machine Unlearning", IEEE TNNLS 2023).

1. For each forget class, learn a batch of error-maximising noise: inputs ``N`` that maximise
   the model's loss on that class, ``max_N  CE(model(N), class) - l2 * mean_n ||N_n||^2``, by
   Adam on ``N`` (model fixed).
2. Impair: one epoch of training on the noise (labelled with its class, repeated) mixed with a
   small subset of the remaining classes' training data.
3. Repair: one epoch on the same remaining-data subset alone.

Defaults are those of the SSD harness (if-loops/selective-synaptic-dampening), which the paper's
baseline numbers follow (notes/method-details.md): noise batch 32, 25 noise steps, 500 retained
samples per class, Adam lr 1e-4 for impair and repair. The noise optimiser's lr 0.1, the L2
weight 0.1, the 20 repeats of the noise batch and the batch size 256 are UNSIR's own code's values;
that code impairs at Adam lr 0.02 and repairs at 0.01, which a run with few retained samples (few
steps per epoch) needs: at 1e-4 two steps change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from ..data import loader
from ..errors import MnemuError
from ..models import eval_mode
from .common import sample_per_class, subset, train_labels


@dataclass
class Settings:
    noise_batch: int = 32          # noise samples per forget class (harness)
    noise_steps: int = 25          # Adam steps on the noise (harness)
    noise_lr: float = 0.1          # UNSIR code
    noise_l2: float = 0.1          # weight of the noise's mean squared norm (UNSIR code)
    noise_repeats: int = 20        # the noise batch appears this many times in the impair epoch
    retain_per_class: int = 500    # remaining-class samples used by impair and repair (harness)
    impair_lr: float = 1e-4        # Adam (harness)
    repair_lr: float = 1e-4        # Adam (harness)
    impair_epochs: int = 1
    repair_epochs: int = 1
    batch_size: int = 256          # UNSIR code
    seed: int = 0

    def __post_init__(self):
        for name in ("noise_batch", "noise_steps", "noise_repeats", "retain_per_class", "batch_size"):
            if getattr(self, name) < 1:
                raise MnemuError(f"FastMU setting {name} must be at least 1, got {getattr(self, name)}")


class _Noise(Dataset):
    """Learned noise images with their forget-class labels, ``repeats`` times over."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, repeats: int):
        self.images, self.labels, self.repeats = images, labels, repeats

    def __len__(self) -> int:
        return len(self.labels) * self.repeats

    def __getitem__(self, index: int):
        index %= len(self.labels)
        return self.images[index], int(self.labels[index])


def error_maximising_noise(model: nn.Module, forget_class: int, shape, settings: Settings,
                           device: torch.device, generator: torch.Generator) -> torch.Tensor:
    """``[noise_batch, *shape]`` inputs that the model misclassifies for ``forget_class``."""
    noise = torch.randn(settings.noise_batch, *shape, generator=generator).to(device)
    noise.requires_grad_(True)
    optimizer = torch.optim.Adam([noise], lr=settings.noise_lr)
    labels = torch.full((settings.noise_batch,), forget_class, device=device)
    flags = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with eval_mode(model):
            for _ in range(settings.noise_steps):
                loss = (-F.cross_entropy(model(noise), labels)
                        + settings.noise_l2 * noise.square().flatten(1).sum(1).mean())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
    return noise.detach().cpu()


def _train_epochs(model, dataset, epochs, lr, batch_size, device, generator) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(epochs):
        batches = (loader(dataset, batch_size, shuffle=True, generator=generator)
                   if not isinstance(dataset, ConcatDataset) else
                   DataLoader(dataset, batch_size=batch_size, shuffle=True, generator=generator))
        for images, labels in batches:
            images, labels = images.to(device), torch.as_tensor(labels).to(device)
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(images), labels).backward()
            optimizer.step()


def forget(model, data, forget_classes, settings: Settings, *, device, **_):
    generator = torch.Generator().manual_seed(settings.seed)
    labels = train_labels(data.train)
    remain = [c for c in range(data.num_classes) if c not in forget_classes]
    retain = subset(data.train, sample_per_class(labels, remain, settings.retain_per_class, generator))
    noises = [error_maximising_noise(model, c, data.input_shape, settings, device, generator)
              for c in forget_classes]
    noise_labels = torch.cat([torch.full((settings.noise_batch,), c) for c in forget_classes])
    noisy = ConcatDataset([_Noise(torch.cat(noises), noise_labels, settings.noise_repeats), retain])
    _train_epochs(model, noisy, settings.impair_epochs, settings.impair_lr, settings.batch_size,
                  device, generator)
    _train_epochs(model, retain, settings.repair_epochs, settings.repair_lr, settings.batch_size,
                  device, generator)
    model.eval()
    return model, {"retain_samples": len(retain), "noise_samples": len(noise_labels)}
