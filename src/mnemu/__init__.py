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

from .baselines import Unsupported, baseline_names, run_baseline, timed
from .checkpoint import Checkpoint, load_checkpoint
from .codes import make_codes, mix_codes
from .data import (DataSplits, dataset_names, dataset_num_classes, load_dataset, prepare_dataset,
                   register_dataset)
from .errors import MnemuError
from .fisher import class_fisher, sum_squared_grads
from .forget import ETA_EPS_RULES, Forgetter, fisher_ratio, forget, forget_grid
from .lambdas import auto_lambdas, select_lambdas
from .metrics import evaluate, forgetting_metrics, predict
from .models import create_model, load_plugins, model_names, register_model
from .train import TrainSettings, train_checkpoint, train_with_codes

__version__ = "0.1.0"

__all__ = [  # one name a line: merges stay trivial
    "Checkpoint",
    "DataSplits",
    "ETA_EPS_RULES",
    "Forgetter",
    "MnemuError",
    "TrainSettings",
    "Unsupported",
    "auto_lambdas",
    "baseline_names",
    "class_fisher",
    "create_model",
    "dataset_names",
    "dataset_num_classes",
    "evaluate",
    "fisher_ratio",
    "forget",
    "forget_grid",
    "forgetting_metrics",
    "load_checkpoint",
    "load_dataset",
    "load_plugins",
    "make_codes",
    "mix_codes",
    "model_names",
    "predict",
    "prepare_dataset",
    "register_dataset",
    "register_model",
    "run_baseline",
    "select_lambdas",
    "sum_squared_grads",
    "timed",
    "train_checkpoint",
    "train_with_codes",
]
