"""Training with mnemonic codes (paper, Alg. 1 and Appendix A), resumable and reproducible."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from .checkpoint import Checkpoint, atomic_save, load_state
from .codes import DISTRIBUTIONS, make_codes, mix_codes
from .data import DataSplits, load_dataset, loader
from .errors import MnemuError
from .models import create_model, load_weights
from .progress import eta

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Appendix A: SGD, lr 0.01, momentum 0.9, weight decay 5e-4, 200 epochs, batch 128 (32 for
    CUB/Cars), cosine schedule except for MNIST. ``steps`` caps the optimiser steps (the paper's
    ImageNet fine-tuning runs 2,000 or 10,000 steps); ``seed`` fixes codes, shuffling, code
    replacement and augmentation. A resumable run writes its state after every epoch and every
    ``save_every_steps`` steps (None: after epochs only). ``exclude_classes`` are left out of training altogether (their
    samples and codes are never shown) while the model keeps all its outputs: the paper's
    "retrained without the forget classes" baseline and its Fig. 12 model."""

    t_mix: float = 0.1
    epochs: int = 200
    batch_size: int = 128
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "none"
    steps: int | None = None
    seed: int = 0
    code_distribution: str = "uniform"
    num_workers: int = 0
    exclude_classes: tuple[int, ...] = ()
    save_every_steps: int | None = 500

    def __post_init__(self):
        self.exclude_classes = tuple(self.exclude_classes)
        if any(isinstance(c, bool) or not isinstance(c, int) or c < 0 for c in self.exclude_classes):
            raise MnemuError(f"exclude_classes must be class indices (integers >= 0), got "
                             f"{list(self.exclude_classes)}")
        if len(set(self.exclude_classes)) != len(self.exclude_classes):
            raise MnemuError(f"exclude_classes lists a class twice: {list(self.exclude_classes)}; "
                             f"name each class once")
        if not 0.0 <= self.t_mix <= 1.0:
            raise MnemuError(f"t_mix must be in [0, 1], got {self.t_mix}; it is the probability "
                             f"of replacing a training sample by its class's code")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise MnemuError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.steps is not None and self.steps < 1:
            raise MnemuError(f"steps must be at least 1 (or unset), got {self.steps}")
        if self.save_every_steps is not None and self.save_every_steps < 1:
            raise MnemuError(f"save_every_steps must be at least 1 (or None: only after each "
                             f"epoch), got {self.save_every_steps}")
        if self.lr <= 0:
            raise MnemuError(f"lr must be positive, got {self.lr}")
        if self.schedule not in ("none", "cosine"):
            raise MnemuError(f"schedule must be 'none' or 'cosine', got {self.schedule!r}")
        if self.code_distribution not in DISTRIBUTIONS:
            raise MnemuError(f"code_distribution must be one of {DISTRIBUTIONS}, "
                             f"got {self.code_distribution!r}")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _epoch_seed(seed: int, epoch: int) -> int:
    """Every random draw of an epoch derives from (seed, epoch), so a resumed run repeats it."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{epoch}".encode()).digest()[:7], "big")


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def train_with_codes(
    model: nn.Module,
    train_set: Dataset,
    codes: torch.Tensor,
    settings: TrainSettings,
    *,
    device: torch.device | str | None = None,
    state_path: str | Path | None = None,
    progress: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train ``model`` in place on ``train_set`` with codes mixed in (Alg. 1); return the history.

    ``train_set`` yields ``(image, label)``; ``codes`` is ``[C, *image_shape]``. With
    ``state_path``, the full training state is written there (atomically) after every epoch and
    every ``settings.save_every_steps`` optimiser steps, and a run that finds a state with the
    same settings continues from it, mid-epoch too: the result equals an uninterrupted run's.
    ``progress`` is called with each epoch's record. Kernels are made deterministic while it runs
    (see :func:`deterministic_kernels`). With ``state_path``, SIGTERM (preemption, a time limit)
    saves the state at the next step before the process ends.
    """
    fingerprint = _fingerprint(settings, codes, model, train_set)
    train_set = _without_classes(train_set, settings.exclude_classes, len(codes))
    device = torch.device(device) if device is not None else default_device()
    model.to(device)
    codes_dev = codes.to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=settings.momentum,
                                weight_decay=settings.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)
    epochs = settings.epochs
    if settings.steps is not None:
        epochs = math.ceil(settings.steps / steps_per_epoch)
    total_steps = min(settings.steps or math.inf, epochs * steps_per_epoch)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=float(epochs))
                 if settings.schedule == "cosine" else None)
    state = None
    if state_path is not None and Path(state_path).exists():
        state = _resume(state_path, fingerprint, model, optimizer, scheduler)
    history = list(state["history"]) if state else []
    start = int(state["epoch"]) if state else 0

    def save(epoch: int, within: dict | None) -> None:
        atomic_save({"resume": {
            "fingerprint": fingerprint, "epoch": epoch, "history": history, "within": within,
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
        }}, state_path)

    criterion = nn.CrossEntropyLoss()
    run_began = time.perf_counter()
    with deterministic_kernels(), _saving_on_sigterm(state_path is not None) as stop_requested:
        for epoch in range(start, epochs):
            began = time.perf_counter()
            seed = _epoch_seed(settings.seed, epoch)
            _seed_everything(seed)
            shuffle = torch.Generator().manual_seed(seed + 1)
            mixing = torch.Generator().manual_seed(seed + 2)
            batches = iter(loader(train_set, settings.batch_size, shuffle=True, generator=shuffle,
                                  num_workers=settings.num_workers,
                                  pin_memory=device.type == "cuda"))
            within = state.get("within") if state and epoch == start else None
            done = 0
            tally = {"loss": 0.0, "correct": 0, "seen": 0}
            if within:  # resume mid-epoch: same shuffle and augmentation, then the saved RNGs
                for _ in range(within["batches"]):
                    next(batches)
                done, tally = within["batches"], dict(within["tally"])
                _set_rng_states(within["rng"], mixing)
            step = epoch * steps_per_epoch + done
            model.train()
            for images, labels in batches:
                if step >= total_steps:
                    break
                images = images.to(device, non_blocking=True)
                labels = labels.to(device, non_blocking=True)
                images = mix_codes(images, labels, codes_dev, settings.t_mix, mixing)
                optimizer.zero_grad(set_to_none=True)
                logits = model(images)
                loss = criterion(logits, labels)
                loss.backward()
                optimizer.step()
                step, done = step + 1, done + 1
                tally["loss"] += loss.item() * len(labels)
                tally["correct"] += (logits.argmax(1) == labels).sum().item()
                tally["seen"] += len(labels)
                if stop_requested():
                    save(epoch, {"batches": done, "tally": dict(tally), "rng": _rng_states(mixing)})
                    message = (f"training stopped by SIGTERM in epoch {epoch + 1} after batch "
                               f"{done}; its state is saved to {state_path}: run again to "
                               f"continue from there")
                    log.warning("%s", message)
                    raise MnemuError(message)
                if (state_path is not None and settings.save_every_steps is not None
                        and step % settings.save_every_steps == 0
                        and done < steps_per_epoch and step < total_steps):
                    save(epoch, {"batches": done, "tally": dict(tally), "rng": _rng_states(mixing)})
            if scheduler is not None:
                scheduler.step()
            seen = max(tally["seen"], 1)
            record = {"epoch": epoch + 1, "epochs": epochs, "steps": step,
                      "loss": tally["loss"] / seen, "train_accuracy": 100.0 * tally["correct"] / seen,
                      "seconds": time.perf_counter() - began}
            history.append(record)
            log.info("epoch %d/%d loss %.4f train-acc %.2f%% %.1fs, ETA %s", record["epoch"],
                     epochs, record["loss"], record["train_accuracy"], record["seconds"],
                     eta(time.perf_counter() - run_began, epoch + 1 - start, epochs - start))
            if state_path is not None:
                save(epoch + 1, None)
            if progress is not None:
                progress(record)
    return history


@contextlib.contextmanager
def _saving_on_sigterm(active: bool):
    """Within: SIGTERM (what SLURM sends on preemption or at the time limit, some seconds before
    SIGKILL) only sets a flag, which training checks after every step to save its state first.
    Yields that check. On exit the previous handler comes back and, if SIGTERM came, the signal
    is sent again, so the process ends as it would have without this (killed by SIGTERM)."""
    if not active or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield lambda: bool(received)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if received:
            os.kill(os.getpid(), signal.SIGTERM)


@contextlib.contextmanager
def deterministic_kernels():
    """Within: cuDNN picks deterministic kernels (no benchmarking) and PyTorch's deterministic
    algorithms are used where they exist (a warning where not), so that seeded GPU training
    repeats. The previous settings come back on exit. ``CUBLAS_WORKSPACE_CONFIG`` (which cuBLAS
    needs for repeatable matrix products and reads once per process) is set if unset, and stays."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    cudnn = torch.backends.cudnn
    saved = (cudnn.deterministic, cudnn.benchmark, torch.are_deterministic_algorithms_enabled(),
             torch.is_deterministic_algorithms_warn_only_enabled())
    cudnn.deterministic, cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        cudnn.deterministic, cudnn.benchmark = saved[0], saved[1]
        torch.use_deterministic_algorithms(saved[2], warn_only=saved[3])


def _rng_states(mixing: torch.Generator) -> dict:
    """Every random stream a training step draws from (code mixing; the global ones that
    augmentation in this process and dropout use), to continue a run mid-epoch."""
    numpy_state = np.random.get_state()
    return {"mixing": mixing.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
            "python": random.getstate(),
            "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)),
                      *numpy_state[2:]]}


def _set_rng_states(states: dict, mixing: torch.Generator) -> None:
    mixing.set_state(states["mixing"])
    torch.set_rng_state(states["torch"])
    if states["cuda"]:
        torch.cuda.set_rng_state_all(states["cuda"])
    random.setstate(_as_tuples(states["python"]))
    kind, keys, *rest = states["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))


def _as_tuples(value):
    """``random.setstate`` wants tuples where a saved state may hold lists."""
    return tuple(_as_tuples(v) for v in value) if isinstance(value, (list, tuple)) else value


def _without_classes(train_set: Dataset, exclude: tuple[int, ...], num_classes: int) -> Dataset:
    """``train_set`` without the samples of the classes ``exclude`` (itself if there are none)."""
    if not exclude:
        return train_set
    if max(exclude) >= num_classes:
        raise MnemuError(f"exclude_classes {list(exclude)} names a class outside 0..{num_classes - 1}; "
                         f"the model has {num_classes} classes")
    if len(exclude) == num_classes:
        raise MnemuError(f"exclude_classes {list(exclude)} leaves no class to train on; exclude "
                         f"fewer classes")
    labels = getattr(train_set, "labels", None)
    if not isinstance(labels, torch.Tensor):  # a generic data set: read every label once
        labels = torch.tensor([int(train_set[i][1]) for i in range(len(train_set))])
    keep = ~torch.isin(labels, torch.tensor(exclude))
    return Subset(train_set, keep.nonzero().flatten().tolist())


def _fingerprint(settings: TrainSettings, codes: torch.Tensor, model: nn.Module,
                 train_set: Dataset) -> str:
    """What a saved training state must match to be resumed: settings (num_workers too: each
    loader worker has its own augmentation stream), codes, the architecture and the training
    data."""
    # Not save_every_steps: how often the state is written does not change the result.
    described = {**asdict(settings), "save_every_steps": None, "train_size": len(train_set),
                 "codes": hashlib.sha256(codes.cpu().numpy().tobytes()).hexdigest(),
                 "model": [[k, list(v.shape)] for k, v in model.state_dict().items()],
                 "data": _data_digest(train_set)}
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()


def _data_digest(train_set: Dataset) -> str:
    """SHA-256 of what identifies an in-memory or file-list training set (images, labels, files,
    augmentation); other data sets are told apart by their size only."""
    digest = hashlib.sha256()
    for attr in ("images", "labels"):
        value = getattr(train_set, attr, None)
        if isinstance(value, torch.Tensor):
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
    if isinstance(getattr(train_set, "samples", None), list):
        digest.update(json.dumps(train_set.samples).encode())
    digest.update(repr(getattr(train_set, "augment", None)).encode())
    return digest.hexdigest()


def _resume(state_path, fingerprint, model, optimizer, scheduler) -> dict | None:
    """Load a saved training state into the model, optimiser and scheduler; return it, or None
    when it is unreadable or for other settings."""
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)["resume"]
    except Exception as err:  # a truncated or foreign file: start again rather than fail
        log.warning("ignoring unreadable training state %s (%s); starting from scratch",
                    state_path, str(err).splitlines()[0][:120])
        return None
    if state.get("fingerprint") != fingerprint:
        log.warning("training state %s is for other settings; starting from scratch", state_path)
        return None
    load_state(model, state["model"], f"training state {state_path}")
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    within = state.get("within")
    log.info("resuming %s from %s", f"epoch {state['epoch'] + 1} after batch {within['batches']}"
             if within else f"after epoch {state['epoch']}", state_path)
    return state


def train_checkpoint(
    dataset: str,
    model: str,
    settings: TrainSettings,
    out: str | Path,
    *,
    data_root: str | Path | None = None,
    data_options: dict | None = None,
    model_options: dict | None = None,
    pretrained: bool = False,
    init_weights: str | Path | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[dict], None] | None = None,
) -> Checkpoint:
    """Train a model on a named data set with codes and write its checkpoint to ``out``.

    ``init_weights`` (a weights file, see :func:`mnemu.models.load_weights`) starts from those
    weights instead of the builder's: fine-tuning from pretrained weights saved beforehand.

    The training state goes to ``<out>.state`` after every epoch, so a rerun after a crash
    resumes; it is removed once ``out`` is written.
    """
    data = load_dataset(dataset, data_root, **(data_options or {}))
    # Seed before anything draws: the weights' initialisation is random in every model.
    _seed_everything(settings.seed)
    net = create_model(model, data.num_classes, data.input_shape, pretrained=pretrained,
                       **(model_options or {}))
    if init_weights is not None:
        load_weights(net, init_weights)
    codes = make_codes(data.num_classes, data.input_shape, settings.code_distribution, settings.seed)
    checkpoint = Checkpoint(
        net, codes,
        {"name": model, "num_classes": data.num_classes, "input_shape": list(data.input_shape),
         "options": dict(model_options or {}), "pretrained": pretrained},
        data_description(data),
        {"settings": asdict(settings),
         **({"init_weights": str(init_weights)} if init_weights is not None else {})},
    )
    out = Path(out)
    state_path = out.with_name(out.name + ".state")
    began = time.perf_counter()
    history = train_with_codes(net, data.train, codes, settings, device=device,
                               state_path=state_path, progress=progress)
    checkpoint.training["history"] = history
    checkpoint.training["seconds"] = time.perf_counter() - began
    checkpoint.save(out)
    state_path.unlink(missing_ok=True)
    return checkpoint


def data_description(data: DataSplits) -> dict:
    return {"name": data.name, "options": data.options, "class_names": data.class_names,
            "mean": list(data.mean), "std": list(data.std)}
