"""Model factory: the paper's models and any timm model behind one call, :func:`create_model`."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .errors import MnemuError


class MLP(nn.Module):
    """The paper's MNIST model: Linear(in -> hidden) -> sigmoid -> Linear(hidden -> classes)."""

    def __init__(self, input_size: int, num_classes: int, hidden: int = 1000):
        super().__init__()
        self.fc1 = nn.Linear(input_size, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.sigmoid(self.fc1(x.flatten(1))))


class _BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu1, self.relu2 = nn.ReLU(), nn.ReLU()
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class CifarResNet18(nn.Module):
    """ResNet-18 for small images: 3x3 stride-1 stem, no max-pool (the usual CIFAR-10 variant).

    ``width`` is the first stage's channel count (64 in the paper); smaller widths keep the
    architecture and make CPU runs cheap.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, width: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        stages, in_planes = [], width
        for i, stride in enumerate((1, 2, 2, 2)):
            planes = width * 2**i
            stages.append(
                nn.Sequential(_BasicBlock(in_planes, planes, stride), _BasicBlock(planes, planes, 1))
            )
            in_planes = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(in_planes, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.fc(self.pool(out))


def _mlp(num_classes, input_shape, pretrained, hidden: int = 1000):
    _no_pretrained("mlp", pretrained)
    return MLP(math.prod(input_shape), num_classes, hidden)


def _resnet18_cifar(num_classes, input_shape, pretrained, width: int = 64):
    _no_pretrained("resnet18_cifar", pretrained)
    return CifarResNet18(num_classes, in_channels=input_shape[0], width=width)


def _torchvision(arch: str) -> Callable[..., nn.Module]:
    def build(num_classes, input_shape, pretrained, keep_imagenet_head: bool = False):
        import torchvision

        weights = "DEFAULT" if pretrained else None
        try:
            model = getattr(torchvision.models, arch)(weights=weights)
        except (OSError, RuntimeError) as err:  # urllib errors are OSErrors
            raise MnemuError(
                f"could not get the pretrained {arch} weights ({err}); put the torchvision weight file "
                f"in $TORCH_HOME/hub/checkpoints (default ~/.cache/torch) or use pretrained: false"
            ) from None
        if input_shape[0] != 3:
            old = model.conv1
            model.conv1 = nn.Conv2d(input_shape[0], old.out_channels, old.kernel_size,
                                    old.stride, old.padding, bias=False)
        # A C-way head is the natural choice; the authors keep the 1000-way ImageNet head.
        if not keep_imagenet_head and num_classes != model.fc.out_features:
            model.fc = nn.Linear(model.fc.in_features, num_classes)
        return model

    return build


def _timm(name: str) -> Callable[..., nn.Module]:
    def build(num_classes, input_shape, pretrained, **options):
        import timm

        try:
            return timm.create_model(name, pretrained=pretrained, num_classes=num_classes,
                                     in_chans=input_shape[0], **options)
        except (OSError, RuntimeError) as err:
            raise MnemuError(
                f"could not create timm model {name!r} ({err}); with pretrained: true the weights must "
                f"be in the Hugging Face cache (HF_HOME) already when offline"
            ) from None

    return build


def _no_pretrained(name: str, pretrained: bool) -> None:
    if pretrained:
        raise MnemuError(f"model {name!r} has no pretrained weights; set pretrained: false")


def _text_anchored(num_classes, input_shape, pretrained, **options):
    from .clip_style import build  # CLIP-style loss (App. C.6)

    return build(num_classes, input_shape, pretrained, **options)


_REGISTRY: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "resnet18_cifar": _resnet18_cifar,
    "resnet18": _torchvision("resnet18"),
    "resnext50_32x4d": _torchvision("resnext50_32x4d"),
    "text_anchored": _text_anchored,
}


_BUILT_IN = frozenset(_REGISTRY)

#: Environment variable naming modules (comma-separated) that the command line imports first, so
#: that the models they register are known: ``MNEMU_PLUGINS=my_models mnemu forget ...``.
PLUGINS_ENV = "MNEMU_PLUGINS"


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Make ``create_model(name, ...)`` (and so training and loading checkpoints) build a model
    of your own: ``builder(num_classes, input_shape, pretrained, **options) -> nn.Module``, with
    ``input_shape`` = ``(C, H, W)`` and ``options`` the model options given at training (stored in
    the checkpoint). Register in an importable module; a new process that loads the checkpoint
    must import it too (the command line: ``--plugin MODULE`` or ``MNEMU_PLUGINS=MODULE``)."""
    if not isinstance(name, str) or not name or name.startswith("timm:"):
        raise MnemuError(f"model name {name!r} cannot be registered; use a non-empty name that "
                         f"does not start with 'timm:'")
    if not callable(builder):
        raise MnemuError(f"builder for model {name!r} is not callable; pass a function "
                         f"(num_classes, input_shape, pretrained, **options) -> nn.Module")
    if name in _BUILT_IN:
        raise MnemuError(f"model {name!r} is built into mnemu; register yours under another name")
    _REGISTRY[name] = builder


def load_plugins(modules: Sequence[str] | None = None) -> list[str]:
    """Import the modules named in ``$MNEMU_PLUGINS`` (comma-separated) and ``modules``, so that
    the models they register are known; return the names imported."""
    import importlib
    import os

    names = [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    names += [m for m in modules or [] if m not in names]
    for module in names:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise MnemuError(f"cannot import plugin module {module!r} ({err}); put its folder on "
                             f"PYTHONPATH or install it") from None
    return names


def model_names() -> list[str]:
    """Names :func:`create_model` knows besides ``timm:<name>``: the built-in ones and those
    given to :func:`register_model`."""
    return sorted(_REGISTRY)


def create_model(
    name: str,
    num_classes: int,
    input_shape: Sequence[int],
    pretrained: bool = False,
    **options,
) -> nn.Module:
    """Build a classifier.

    ``name`` is one of :func:`model_names` (``mlp`` = the paper's MNIST MLP, ``resnet18_cifar`` =
    CIFAR-style ResNet-18, ``resnet18`` / ``resnext50_32x4d`` = torchvision's, with a
    ``num_classes``-way head) or ``timm:<any timm model name>``. ``input_shape`` is ``(C, H, W)``.
    Extra ``options`` go to the builder (``hidden`` for mlp, ``width`` for resnet18_cifar,
    ``keep_imagenet_head`` for torchvision models, anything timm accepts for timm models).
    ``text_anchored`` is a CLIP-style classifier (:mod:`mnemu.clip_style`; options
    ``class_embeddings`` (a file), ``backbone``, ``backbone_options``, ``temperature``).
    Models of your own: :func:`register_model`.
    """
    if name.startswith("timm:"):
        builder = _timm(name.removeprefix("timm:"))
    elif name in _REGISTRY:
        builder = _REGISTRY[name]
    else:
        raise MnemuError(
            f"unknown model {name!r}; use one of {', '.join(model_names())} or timm:<timm model "
            f"name>, or import the module that registers it (mnemu.register_model; command line: "
            f"--plugin MODULE or {PLUGINS_ENV}=MODULE)"
        )
    try:
        return builder(num_classes, tuple(input_shape), pretrained, **options)
    except TypeError as err:
        raise MnemuError(f"bad options for model {name!r}: {err}") from None


def load_weights(model: nn.Module, path: str | Path) -> None:
    """Load a weights file into ``model``: a state_dict saved with ``torch.save`` (or a dict
    holding one under ``state_dict`` / ``model``) or a ``.safetensors`` file; its keys and shapes
    must fit the model exactly."""
    from .checkpoint import load_state

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                state = state[key]
    load_state(model, state, f"weights file {path}")


def missing_weights(name: str, pretrained: bool, weights_file: str | None = None) -> str | None:
    """What a model's pretrained weights lack before a run (one line: what, where to put it), or
    None. A named file must exist; timm's own weights must exist for the name, and be in the
    Hugging Face cache already when downloads are off (``HF_HUB_OFFLINE=1``). Reads no weights."""
    if weights_file:
        if Path(weights_file).is_file():
            return None
        return (f"pretrained weights file {weights_file} not found; put the state_dict of {name} "
                f"there (torch.save or .safetensors), or set weights: null to use timm's")
    if not pretrained or not name.startswith("timm:"):
        return None
    import timm

    arch = name.removeprefix("timm:")
    if not timm.is_model_pretrained(arch):
        return (f"timm has no pretrained weights for {arch!r}; use a tagged name that has some "
                f"(timm.list_pretrained('{arch.split('.')[0]}*')) or name a weights file")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        from huggingface_hub import try_to_load_from_cache

        repo = timm.models.get_pretrained_cfg(arch).hf_hub_id
        if not any(isinstance(try_to_load_from_cache(repo, f), str)
                   for f in ("model.safetensors", "pytorch_model.bin")):
            return (f"the weights of {arch} are not in the Hugging Face cache and HF_HUB_OFFLINE "
                    f"is set; fetch them where there is network (python -c \"import timm; "
                    f"timm.create_model('{arch}', pretrained=True)\") or name a weights file")
    return None


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every module of ``model`` in eval mode inside the block, and afterwards each back in its
    own mode: ``model.train(was_training)`` would put a frozen, evaluating backbone under a
    training head into training mode. Only the modules in training mode are switched, so a model
    already in eval mode (as a tried perturbation stays between tries) costs a scan, not a pass
    of ``train()`` over every module (a tenth of a try on the small CNNs)."""
    training = [m for m in model.modules() if m.training]
    for m in training:
        m.training = False
    try:
        yield model
    finally:
        for m in training:
            m.training = True
