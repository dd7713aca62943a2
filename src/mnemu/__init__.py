"""mnemu: one-shot machine unlearning with mnemonic codes (Yamashita, Yamada, Shibata, ACML 2024).

Train a classifier with mnemonic codes, then make it forget classes in one step::

    import mnemu
    data = mnemu.load_dataset("fashion_mnist")
    codes = mnemu.make_codes(data.num_classes, data.input_shape, seed=0)
    model = mnemu.create_model("mlp", data.num_classes, data.input_shape)
    mnemu.train_with_codes(model, data.train, codes, mnemu.TrainSettings(t_mix=0.1, epochs=5))
    forgotten, record = mnemu.forget(model, codes, forget_classes=[0], lambda1=1e-3, lambda2=10)
    print(mnemu.evaluate(forgotten, data.test, [0], data.num_classes))
"""

import importlib

#: Each public name and the module that defines it. They are imported on first use (PEP 562), so
#: that what needs no torch (the Snakemake workflow's summaries, tables, figures and report) does
#: not pay for importing it: about 4 s of CPU a process on a 2-core machine, most of such a job.
_EXPORTS = {
    "baselines": ("Unsupported", "baseline_names", "run_baseline", "timed"),
    "checkpoint": ("Checkpoint", "load_checkpoint"),
    "codes": ("make_codes", "mix_codes"),
    "data": ("DataSplits", "dataset_names", "dataset_num_classes", "load_dataset",
             "prepare_dataset", "register_dataset"),
    "errors": ("MnemuError",),
    "fisher": ("class_fisher", "sum_squared_grads"),
    "forgetting": ("ETA_EPS_RULES", "Forgetter", "fisher_ratio", "forget", "forget_grid"),
    "lambdas": ("auto_lambdas", "select_lambdas"),
    "metrics": ("evaluate", "forgetting_metrics", "predict"),
    "models": ("create_model", "load_plugins", "model_names", "register_model"),
    "train": ("TrainSettings", "train_checkpoint", "train_with_codes"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})


__version__ = "0.1.0"

__all__ = sorted(_MODULE_OF)
