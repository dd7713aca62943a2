"""Retrain: the gold standard. A freshly initialised model of the same architecture trained from
scratch on the training data without the forget classes (their samples and codes never shown;
the head keeps all outputs), with mnemu's training (:func:`mnemu.train_with_codes`,
``TrainSettings.exclude_classes``). Settings are :class:`mnemu.TrainSettings` fields: use the
original model's training settings (the paper: 200 epochs, Appendix A) so that the two differ
only in the forget classes."""

from __future__ import annotations

import dataclasses

from ..codes import make_codes
from ..train import TrainSettings, train_with_codes
from .common import reinitialised

#: TrainSettings with exclude_classes filled in by the forget classes.
Settings = dataclasses.make_dataclass(
    "Settings",
    [(f.name, f.type, dataclasses.field(default=f.default)) for f in dataclasses.fields(TrainSettings)
     if f.name != "exclude_classes"],
    # check the values as TrainSettings does, when the settings are made
    namespace={"__post_init__": lambda self: TrainSettings(**dataclasses.asdict(self))},
)
Settings.__doc__ = "The fields of mnemu.TrainSettings (paper defaults), exclude_classes aside."


def forget(model, data, forget_classes, settings, *, device, codes=None, **_):
    train_settings = TrainSettings(**dataclasses.asdict(settings),
                                   exclude_classes=tuple(forget_classes))
    if codes is None:  # a model trained without codes: t_mix 0 never uses them
        codes = make_codes(data.num_classes, data.input_shape, train_settings.code_distribution,
                           train_settings.seed)
    fresh = reinitialised(model, train_settings.seed).to(device)
    history = train_with_codes(fresh, data.train, codes, train_settings, device=device)
    fresh.eval()
    return fresh, {"epochs": len(history), "final_train_accuracy": history[-1]["train_accuracy"]
                   if history else None}
