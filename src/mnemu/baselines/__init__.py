"""Baseline unlearning methods behind one call, :func:`run_baseline`, and one timer, :func:`timed`.

Each method lives in its own module, written from its paper (sources and simplifications in the
module's docstring, default settings with their sources in its ``Settings``):

=========  ==================================================================================
fastmu     FastMU / UNSIR (Tarun et al., 2023): error-maximising noise, impair, repair
ssd        Selective Synaptic Dampening (Foster et al., 2024)
sfdn       Fisher forgetting (Golatkar et al., 2020a)
lwsf       Learning with Selective Forgetting (Shibata et al., 2021), codes only
erm_ktp    ERM-KTP (Lin et al., 2023); CNNs only
retrain    training from scratch without the forget classes (the gold standard)
=========  ==================================================================================

The record's ``seconds`` and ``peak_memory_bytes`` cover the forget call alone (the model already
on its device, evaluation excluded); a method that must train its own model first (ERM-KTP's
gate matrix) times that separately under ``prepare``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import MnemuError
from ..forgetting import check_classes
from ..train import default_device
from . import ermktp, fastmu, lwsf, retrain, sfdn, ssd
from .common import Unsupported, make_settings
from .timing import timed


@dataclass(frozen=True)
class Baseline:
    """A method: its settings class, its forget step ``forget(model, data, forget_classes,
    settings, *, device, codes, state) -> (model, info)`` (it may change ``model``, a copy),
    an optional ``prepare`` run before it and timed apart (returns ``state``), an optional
    ``check(model)`` that raises :class:`Unsupported`, and its source."""

    name: str
    settings: type
    forget: Callable
    source: str
    prepare: Callable | None = None
    check: Callable[[nn.Module], None] | None = None


BASELINES: dict[str, Baseline] = {b.name: b for b in (
    Baseline("fastmu", fastmu.Settings, fastmu.forget,
             "Tarun et al., Fast Yet Effective Machine Unlearning (UNSIR), IEEE TNNLS 2023"),
    Baseline("ssd", ssd.Settings, ssd.forget,
             "Foster et al., Fast Machine Unlearning Without Retraining Through Selective "
             "Synaptic Dampening, AAAI 2024"),
    Baseline("sfdn", sfdn.Settings, sfdn.forget,
             "Golatkar et al., Eternal Sunshine of the Spotless Net, CVPR 2020 (Fisher forgetting)"),
    Baseline("lwsf", lwsf.Settings, lwsf.forget,
             "Shibata et al., Learning with Selective Forgetting, IJCAI 2021"),
    Baseline("erm_ktp", ermktp.Settings, ermktp.forget,
             "Lin et al., ERM-KTP: Knowledge-Level Machine Unlearning via Knowledge Transfer, CVPR 2023",
             prepare=ermktp.prepare, check=ermktp.check),
    Baseline("retrain", retrain.Settings, retrain.forget,
             "training from scratch without the forget classes"),
)}


def baseline_names() -> list[str]:
    return list(BASELINES)


def default_settings(name: str) -> dict:
    """A method's default settings as a plain dict (for configs and records)."""
    return dataclasses.asdict(_get(name).settings())


def _get(name: str) -> Baseline:
    if name not in BASELINES:
        raise MnemuError(f"unknown baseline {name!r}; use one of {', '.join(BASELINES)}")
    return BASELINES[name]


def check_supported(name: str, model: nn.Module) -> None:
    """Raise :class:`Unsupported` (with its reason) if baseline ``name`` cannot run on ``model``."""
    method = _get(name)
    if method.check is not None:
        method.check(model)


def run_baseline(
    name: str,
    model: nn.Module,
    data,
    forget_classes: Sequence[int],
    settings: dict | None = None,
    *,
    codes: torch.Tensor | None = None,
    device: torch.device | str | None = None,
) -> tuple[nn.Module, dict]:
    """Make a copy of ``model`` forget ``forget_classes`` with baseline ``name``.

    ``data`` is a :class:`mnemu.DataSplits` (or anything with ``train`` — a data set with a
    ``.labels`` tensor, streamed in batches —, ``num_classes`` and ``input_shape``). ``settings``
    override the method's defaults (see each module's ``Settings``); ``codes`` (``[C, *shape]``)
    are the model's mnemonic codes, which LwSF needs and retrain reuses. The input model is not
    changed. Returns ``(forgotten model in eval mode, record)``; the record has ``method``,
    ``settings``, ``forget_classes``, the timer's ``seconds``, ``peak_memory_bytes``,
    ``memory_kind`` and ``device`` for the forget call, ``prepare`` (the same for a method's own
    training step, or None) and what the method reports about itself under ``info``.
    Raises :class:`Unsupported` if the method cannot handle this architecture.
    """
    method = _get(name)
    chosen = make_settings(method.settings, settings)
    forget = check_classes(forget_classes, data.num_classes)
    check_supported(name, model)
    device = torch.device(device) if device is not None else default_device()
    working = copy.deepcopy(model).to(device)
    state, prepared = None, None
    # Draws that take the global RNG (the training split's crop and flip) from the method's seed,
    # so that a rerun gives the same model; the caller's random state is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(getattr(chosen, "seed", 0))
        if method.prepare is not None:
            state, prepared = timed(lambda: method.prepare(working, data, forget, chosen,
                                                           device=device, codes=codes), device)
        (forgotten, info), measured = timed(
            lambda: method.forget(working, data, forget, chosen, device=device, codes=codes,
                                  state=state), device)
    record = {"method": name, "source": method.source, "settings": dataclasses.asdict(chosen),
              "forget_classes": forget, **measured, "prepare": prepared, "info": info}
    return forgotten, record


__all__ = ["BASELINES", "Baseline", "Unsupported", "baseline_names", "check_supported",
           "default_settings", "run_baseline", "timed"]
