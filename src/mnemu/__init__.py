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

from .checkpoint import Checkpoint, load_checkpoint
from .codes import make_codes, mix_codes
from .data import DataSplits, dataset_names, load_dataset, prepare_dataset
from .errors import MnemuError
from .fisher import class_fisher, sum_squared_grads
from .forget import Forgetter, forget, forget_grid
from .metrics import evaluate, forgetting_metrics, predict
from .models import create_model, load_plugins, model_names, register_model
from .train import TrainSettings, train_checkpoint, train_with_codes

__version__ = "0.1.0"

__all__ = [
    "Checkpoint", "DataSplits", "Forgetter", "MnemuError", "TrainSettings", "class_fisher",
    "create_model", "dataset_names", "evaluate", "forget", "forget_grid", "forgetting_metrics",
    "load_checkpoint", "load_dataset", "load_plugins", "make_codes", "mix_codes", "model_names",
    "predict", "prepare_dataset", "register_model", "sum_squared_grads", "train_checkpoint",
    "train_with_codes",
]
