"""Checkpoints: a model together with everything forgetting needs later (its codes above all).

A checkpoint is one ``torch.save`` file holding only tensors, numbers, strings, lists and dicts,
so it loads with ``torch.load(weights_only=True)``: loading never runs code from the file.
Files are written to a temporary name and renamed, so a crash never leaves a half-written one.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from .errors import DamagedFile, MnemuError
from .files import atomic_write
from .models import create_model

FORMAT = "mnemu-checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A trained model and its context.

    ``codes`` is ``[C, *input_shape]``, one mnemonic code per class (row c = class c).
    ``model_spec`` rebuilds the architecture through :func:`mnemu.create_model`: keys ``name``,
    ``num_classes``, ``input_shape``, ``options``. ``data`` says what it was trained on (``name``,
    ``options``, ``class_names``, ``mean``, ``std``); ``training`` holds the settings and the
    per-epoch history; ``forgotten`` is the forget record if this model has forgotten classes.
    """

    model: nn.Module
    codes: torch.Tensor
    model_spec: dict
    data: dict = field(default_factory=dict)
    training: dict = field(default_factory=dict)
    forgotten: dict | None = None

    @property
    def num_classes(self) -> int:
        return int(self.model_spec["num_classes"])

    @property
    def class_names(self) -> list[str]:
        return list(self.data.get("class_names") or [str(c) for c in range(self.num_classes)])

    def dataset(self, root=None, name: str | None = None, **options):
        """The data set this model was trained on (or ``name``), its recorded options updated by
        ``options``; an error if its class count does not fit the model."""
        from .data import load_dataset

        name = name or self.data.get("name")
        if not name:
            raise MnemuError("the checkpoint does not say which data set it was trained on; "
                             "name one (mnemu evaluate --dataset NAME)")
        recorded = dict(self.data.get("options") or {}) if name == self.data.get("name") else {}
        data = load_dataset(name, root, **{**recorded, **options})
        if data.num_classes != self.num_classes:
            raise MnemuError(f"data set {name} has {data.num_classes} classes but the model has "
                             f"{self.num_classes}; pass the data options it was trained with")
        return data

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "model_spec": self.model_spec,
            "state_dict": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "codes": self.codes.detach().cpu(),
            "data": self.data,
            "training": self.training,
            "forgotten": self.forgotten,
        }

    def save(self, path: str | Path, **extra) -> Path:
        """Write atomically to ``path``; ``extra`` entries (e.g. resume state) are stored beside."""
        return atomic_save({**self.to_dict(), **extra}, path)


def atomic_save(obj: dict, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically."""
    return atomic_write(path, lambda handle: torch.save(obj, handle))


def read_checkpoint_dict(path: str | Path) -> dict:
    """Load the raw dict safely, with one-line errors for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise MnemuError(f"checkpoint {path} does not exist; train a model first (mnemu train)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise MnemuError(
            f"checkpoint {path} holds pickled Python objects, which mnemu does not load (loading "
            f"them could run code); save only tensors and plain values, as mnemu.Checkpoint does"
        ) from None
    except Exception as err:  # torch raises several types for truncated/foreign files
        reason = first_line(err)
        raise DamagedFile(
            f"checkpoint {path} cannot be read ({reason}); it is truncated, corrupted or not a "
            f"torch file: copy it again or retrain", path, reason
        ) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise MnemuError(
            f"{path} is not a mnemu checkpoint (a plain state_dict?); train with mnemu train, or "
            f"wrap your model with mnemu.Checkpoint(model, codes, model_spec) and save that"
        )
    if not isinstance(raw.get("codes"), torch.Tensor) or raw["codes"].numel() == 0:
        raise MnemuError(
            f"checkpoint {path} holds no mnemonic codes; forgetting needs the codes the model "
            f"was trained with: retrain with codes (mnemu train --t-mix 0.1)"
        )
    return raw


def first_line(err: Exception) -> str:
    """An exception's message as one short line (torch's can span pages, with colour codes)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip()
    return (text.splitlines() or [type(err).__name__])[0][:120]


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Load a checkpoint written by :meth:`Checkpoint.save`, rebuilding its model."""
    raw = read_checkpoint_dict(path)
    spec = raw["model_spec"]
    model = create_model(spec["name"], spec["num_classes"], spec["input_shape"], pretrained=False,
                         **spec.get("options", {}))
    load_state(model, raw["state_dict"], f"checkpoint {path}")
    codes = raw["codes"]
    if codes.shape[0] != spec["num_classes"] or tuple(codes.shape[1:]) != tuple(spec["input_shape"]):
        raise MnemuError(
            f"checkpoint {path} has codes of shape {tuple(codes.shape)} for a model of "
            f"{spec['num_classes']} classes and input {tuple(spec['input_shape'])}; it is damaged: retrain"
        )
    return Checkpoint(model.to(device), codes, spec, raw.get("data", {}), raw.get("training", {}),
                      raw.get("forgotten"))


def load_state(model: nn.Module, state_dict: dict, what: str) -> None:
    """``model.load_state_dict`` with a one-line error naming the mismatch."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    wrong = [k for k in own.keys() & state_dict.keys() if own[k].shape != state_dict[k].shape]
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"missing {missing[:3]}")
        if unexpected:
            details.append(f"unexpected {unexpected[:3]}")
        if wrong:
            k = wrong[0]
            details.append(f"{k} is {tuple(state_dict[k].shape)}, model wants {tuple(own[k].shape)}")
        raise MnemuError(
            f"{what} does not fit its model ({'; '.join(details)}); the model name, classes or "
            f"input shape differ from those it was trained with"
        )
    model.load_state_dict(state_dict)
