"""Privacy and robustness checks of a forgotten model (paper, Appendix C).

* Membership inference (App. C.1): can an attacker tell the forget class's training samples
  (members) from its test samples (non-members)? Two attacks: the paper's loss threshold, and
  the stronger attack of the SSD / SalUn evaluation harnesses, a logistic regression on each
  sample's loss, confidence and prediction entropy, scored by cross-validation.
* Output rate (App. C.2): how often a model predicts given classes on a data set.
* Codes as a backdoor trigger (App. C.3): accuracy on test images blended with a class's code
  (:func:`mnemu.codes.blend_code`).

AUCs are in [0, 1] (0.5 = the attacker guesses); rates and accuracies are percentages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from .codes import blend_code
from .data import loader
from .errors import MnemuError
from .models import eval_mode

#: The features of the classifier attack, per sample (columns of :func:`attack_features`).
ATTACK_FEATURES = ("loss", "confidence", "entropy")


def attack_features(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``[N, 3]``: per-sample cross-entropy loss (nats), confidence (the softmax probability of
    the true label) and entropy of the softmax (nats), from ``logits [N, C]`` and ``labels [N]``."""
    log_probs = torch.log_softmax(logits.float(), dim=1)
    true = log_probs.gather(1, labels.long().view(-1, 1)).squeeze(1)
    entropy = -(log_probs.exp() * log_probs).sum(1)
    return torch.stack([-true, true.exp(), entropy], dim=1)


@torch.no_grad()
def sample_features(model: nn.Module, dataset: Dataset, batch_size: int = 512) -> dict:
    """Run ``model`` (eval mode) over ``dataset``: ``labels [N]``, ``predictions [N]`` and
    :func:`attack_features` ``features [N, 3]``, on the CPU in data set order."""
    device = next(model.parameters()).device
    labels, predictions, features = [], [], []
    with eval_mode(model):
        for images, targets in loader(dataset, batch_size, shuffle=False):
            logits = model(images.to(device)).float().cpu()
            labels.append(targets)
            predictions.append(logits.argmax(1))
            features.append(attack_features(logits, targets))
    return {"labels": torch.cat(labels), "predictions": torch.cat(predictions),
            "features": torch.cat(features)}


def of_classes(dataset: Dataset, classes: Sequence[int]) -> Subset:
    """The samples of ``dataset`` whose label is in ``classes`` (it must have a ``labels`` tensor)."""
    labels = getattr(dataset, "labels", None)
    if not isinstance(labels, torch.Tensor):
        raise MnemuError("this data set has no labels tensor; use one of mnemu's data sets")
    keep = torch.isin(labels, torch.tensor(list(classes), dtype=labels.dtype))
    return Subset(dataset, keep.nonzero().flatten().tolist())


def _check_two_groups(members, non_members) -> tuple[np.ndarray, np.ndarray]:
    members, non_members = np.asarray(members, float), np.asarray(non_members, float)
    if len(members) == 0 or len(non_members) == 0:
        raise MnemuError(f"membership inference needs members and non-members, got "
                         f"{len(members)} and {len(non_members)} samples; check the classes")
    return members, non_members


def loss_threshold_auc(member_losses, non_member_losses) -> float:
    """AUC of the loss-threshold attack (lower loss -> "member"), over all thresholds: the
    probability that a random member has a lower loss than a random non-member, ties counting
    half (the Mann-Whitney statistic)."""
    from sklearn.metrics import roc_auc_score

    members, non_members = _check_two_groups(member_losses, non_member_losses)
    truth = np.r_[np.ones(len(members)), np.zeros(len(non_members))]
    return float(roc_auc_score(truth, -np.r_[members, non_members]))


def classifier_attack_auc(member_features, non_member_features, seed: int = 0,
                          folds: int = 5) -> float:
    """AUC of a logistic regression telling members from non-members by their features
    (``[N, F]`` each, e.g. :func:`attack_features`), out of sample: the larger group is
    subsampled to the smaller one's size (a balanced attack set, as the SSD / SalUn harnesses do)
    and every sample is scored by a model fitted on the other ``folds - 1`` folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    members, non_members = _check_two_groups(member_features, non_member_features)
    members, non_members = members.reshape(len(members), -1), non_members.reshape(len(non_members), -1)
    n = min(len(members), len(non_members))
    if n < folds:
        raise MnemuError(f"the classifier attack needs at least {folds} members and non-members, "
                         f"got {len(members)} and {len(non_members)}; use more samples")
    rng = np.random.default_rng(seed)
    members = members[rng.choice(len(members), n, replace=False)]
    non_members = non_members[rng.choice(len(non_members), n, replace=False)]
    # Losses are heavy-tailed: a log scale keeps a few huge ones from dominating the fit.
    x = np.log1p(np.abs(np.r_[members, non_members])) * np.sign(np.r_[members, non_members])
    truth = np.r_[np.ones(n), np.zeros(n)]
    attack = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    scores = cross_val_predict(attack, x, truth, method="predict_proba",
                               cv=StratifiedKFold(folds, shuffle=True, random_state=seed))[:, 1]
    return float(roc_auc_score(truth, scores))


def membership_aucs(member_features: torch.Tensor, non_member_features: torch.Tensor,
                    seed: int = 0) -> dict[str, float]:
    """Both attacks on the same groups: ``{"loss_threshold": AUC, "logistic": AUC}``."""
    return {
        "loss_threshold": loss_threshold_auc(member_features[:, 0], non_member_features[:, 0]),
        "logistic": classifier_attack_auc(member_features, non_member_features, seed),
    }


def output_rate(predictions: torch.Tensor, classes: Sequence[int]) -> float:
    """Percentage of ``predictions`` that are one of ``classes`` (App. C.2)."""
    if len(predictions) == 0:
        raise MnemuError("no predictions to rate; the data set is empty")
    hits = torch.isin(predictions, torch.tensor(list(classes), dtype=predictions.dtype))
    return 100.0 * hits.float().mean().item()


@torch.no_grad()
def blended_accuracy(model: nn.Module, dataset: Dataset, code: torch.Tensor,
                     ratios: Sequence[float], batch_size: int = 512) -> list[dict]:
    """Test accuracy (%) of ``model`` on ``dataset`` with every image blended with ``code`` at
    each ratio (:func:`mnemu.codes.blend_code`); one ``{"ratio", "accuracy", "predictions"}``
    per ratio (``predictions [N]`` in data set order, for :func:`output_rate`)."""
    device = next(model.parameters()).device
    correct = {float(r): 0 for r in ratios}
    predicted = {float(r): [] for r in ratios}
    seen = 0
    with eval_mode(model):
        for images, labels in loader(dataset, batch_size, shuffle=False):
            images = images.to(device)
            for ratio in correct:
                guess = model(blend_code(images, code.to(device), ratio)).argmax(1).cpu()
                correct[ratio] += (guess == labels).sum().item()
                predicted[ratio].append(guess)
            seen += len(labels)
    return [{"ratio": r, "accuracy": 100.0 * correct[r] / seen,
             "predictions": torch.cat(predicted[r])} for r in correct]
