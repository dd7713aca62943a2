"""One-shot forgetting (paper, Alg. 2): perturb the parameters the forget classes' Fisher marks.

``eta = f_F / f_R`` per parameter (Eq. 6), ``alpha_l = min(lambda1, lambda2 / max(eta_l))`` per
parameter tensor l (Eq. 7), and the model becomes ``w + alpha * eta`` or ``w - alpha * eta``,
whichever scores better on the codes alone (no real data): error on the forget classes' codes
plus accuracy on the other codes. A tie is broken by the codes' losses (forget loss up, remain
loss down) and recorded.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .errors import MnemuError
from .fisher import Samples, _chunks, _first_input, class_fisher, default_chunk_size
from .lambdas import auto_lambdas
from .metrics import retained_and_forgotten
from .models import eval_mode

#: The authors start each class set's Fisher accumulator at 1e-16, which keeps eta finite where
#: both Fisher values vanish (eta is then 1).
EPS = 1e-16

#: Where eps enters eta (Eq. 6). "per_class": as the authors' code, whose accumulator of a class
#: set starts at eps before the division by the set's class count, i.e.
#: eta = (f_F + eps / |C_F|) / (f_R + eps / |C_R|). "after_mean": eta = (f_F + eps) / (f_R + eps).
#: They differ where f_R ~ 0 (by up to |C_R| / |C_F|), which moves max eta and every alpha.
ETA_EPS_RULES = ("per_class", "after_mean")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def check_classes(forget_classes: Sequence[int], num_classes: int) -> list[int]:
    forget = sorted({int(c) for c in forget_classes})
    if not forget:
        raise MnemuError("no forget class given; name at least one class to forget")
    bad = [c for c in forget if not 0 <= c < num_classes]
    if bad:
        raise MnemuError(f"forget class {bad[0]} is not in the model: its classes are "
                         f"0..{num_classes - 1}")
    if len(forget) == num_classes:
        raise MnemuError("cannot forget every class: leave at least one class to remain")
    return forget


def check_lambdas(lambda1: float, lambda2: float) -> None:
    for name, value in (("lambda1", lambda1), ("lambda2", lambda2)):
        if not value > 0:
            raise MnemuError(f"{name} must be positive, got {value}; the paper searches "
                             f"lambda1 in 1e-6..1 and lambda2 in 0.1..1e5")


def _check_eta_eps(eta_eps: str) -> None:
    if eta_eps not in ETA_EPS_RULES:
        raise MnemuError(f"unknown eta_eps rule {eta_eps!r}; use one of {', '.join(ETA_EPS_RULES)}")


def fisher_ratio(
    f_forget: dict[str, torch.Tensor],
    f_remain: dict[str, torch.Tensor],
    num_forget: int,
    num_remain: int,
    *,
    eps: float = EPS,
    eta_eps: str = "per_class",
    overwrite: bool = False,
) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """eta of Eq. 6 per parameter, and its maximum per parameter tensor.

    ``f_forget`` / ``f_remain``: ``{name: tensor}``, the mean Fisher of the ``num_forget`` forget
    classes and of the ``num_remain`` remaining classes (as :func:`class_fisher` returns them).
    ``eta_eps`` picks where ``eps`` enters (see :data:`ETA_EPS_RULES`). ``overwrite`` computes in
    place in the given tensors (they are as big as the model); otherwise they are left alone.
    Where float32 overflows, eta is capped at the largest finite ratio of its tensor (as the
    authors do) and 0/0 or inf/inf counts as 1 (no evidence either way).
    """
    _check_eta_eps(eta_eps)
    if num_forget < 1 or num_remain < 1:
        raise MnemuError("eta needs at least one forget and one remaining class; "
                         "leave at least one class on each side")
    eps_forget, eps_remain = ((eps / num_forget, eps / num_remain) if eta_eps == "per_class"
                              else (eps, eps))
    eta = {}
    for name, forget in f_forget.items():
        remain = f_remain[name]
        if overwrite:
            eta[name] = forget.add_(eps_forget).div_(remain.add_(eps_remain))
        else:
            eta[name] = (forget + eps_forget).div_(remain + eps_remain)
    maxima = torch.stack([t.max() for t in eta.values()]).tolist()  # one sync for all tensors
    eta_max = dict(zip(eta, maxima))
    for name, top in eta_max.items():
        if not math.isfinite(top):
            t = eta[name]
            finite = t[torch.isfinite(t)]
            cap = finite.max().item() if finite.numel() else 1.0
            torch.nan_to_num_(t, nan=1.0, posinf=cap)
            eta_max[name] = t.max().item()
    return eta, eta_max


class Forgetter:
    """Alg. 2 with its Fisher computed once, so that many (lambda1, lambda2) are cheap.

    ``inputs`` / ``labels`` are the samples the Fisher and the sign choice use: the mnemonic
    codes (``labels`` defaults to ``0..C-1``, one code per class), or real samples for the
    paper's "ours-w-data" comparison (a tensor, or a data set read a chunk at a time, with its
    labels). ``fisher`` may pass precomputed ``(f_forget, f_remain)`` (class-set means, as
    :func:`class_fisher` returns them). ``eta_eps`` says where ``eps``
    enters eta (:data:`ETA_EPS_RULES`; the default is the authors' rule).
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: Samples,
        forget_classes: Sequence[int],
        *,
        labels: torch.Tensor | None = None,
        num_classes: int | None = None,
        fisher: tuple[dict, dict] | None = None,
        method: str = "hooks",
        chunk_size: int | None = None,
        eps: float = EPS,
        eta_eps: str = "per_class",
    ):
        self.model = model
        self._original = dict(model.named_parameters())  # never written to; looked up once
        self.device = next(model.parameters()).device
        self.labels = (torch.arange(len(inputs)) if labels is None else labels.long()).cpu()
        self.num_classes = num_classes or int(self.labels.max()) + 1
        self.forget = check_classes(forget_classes, self.num_classes)
        self.remain = [c for c in range(self.num_classes) if c not in self.forget
                       and bool((self.labels == c).any())]
        is_forget = torch.isin(self.labels, torch.tensor(self.forget))
        # the labels and the rows of the forget and remaining codes, on the device, for scoring
        self._code_rows = tuple(t.to(self.device) for t in (
            self.labels, is_forget.nonzero()[:, 0], (~is_forget).nonzero()[:, 0]))
        self.inputs = inputs
        self.chunk_size = chunk_size or default_chunk_size(_first_input(inputs).numel(),
                                                           self.device)
        self.method = method if fisher is None else "given"
        _check_eta_eps(eta_eps)  # before the Fisher, which may take long
        self.eta_eps = eta_eps
        began = time.perf_counter()
        self._scores_before = None
        if fisher is None:
            stats = _CodeStats(self)  # its forward scores the model before forgetting
            f_forget, f_remain = class_fisher(
                model, inputs, self.labels, [self.forget, self.remain], method=method,
                chunk_size=self.chunk_size, on_output=stats.add)
            self._scores_before = stats.scores()
        else:
            f_forget, f_remain = fisher
        # our own Fisher tensors are overwritten in place; the caller's are left alone
        self.eta, self.eta_max = fisher_ratio(f_forget, f_remain, len(self.forget),
                                              len(self.remain), eps=eps, eta_eps=eta_eps,
                                              overwrite=fisher is None)
        _sync(self.device)
        self.fisher_seconds = time.perf_counter() - began

    @property
    def scores_before(self) -> dict:
        """:meth:`score` of the model before forgetting, from the Fisher pass's own forward over
        the codes (a forward of its own where the Fisher was given)."""
        if self._scores_before is None:
            self._scores_before = self.score(self.model)
        return self._scores_before

    def alphas(self, lambda1: float, lambda2: float) -> dict[str, float]:
        """Eq. 7 for every parameter tensor."""
        check_lambdas(lambda1, lambda2)
        return {n: min(lambda1, lambda2 / m) if m > 0 else lambda1 for n, m in self.eta_max.items()}

    def perturb(self, lambda1: float, lambda2: float, sign: int,
                into: nn.Module | None = None) -> nn.Module:
        """Write ``w + sign * alpha * eta`` (``sign`` +1 or -1) into ``into`` (or a fresh copy of
        the model) and return it; the original model is never changed."""
        return self.perturber(into if into is not None else _shell_copy(self.model))(
            lambda1, lambda2, sign)

    def perturber(self, target: nn.Module) -> Callable[[float, float, int], nn.Module]:
        """:meth:`perturb` into ``target`` as a function of ``(lambda1, lambda2, sign)``, with
        ``target``'s parameters paired with the model's once: walking the modules for them took
        about a tenth of a try of ``lambda: auto`` on the small ResNet-18s, which write the same
        target many times."""
        pairs = [(p.data, self._original[n], self.eta[n], n) for n, p in target.named_parameters()]

        def write(lambda1: float, lambda2: float, sign: int) -> nn.Module:
            if sign not in (+1, -1):
                raise MnemuError(f"the sign of a perturbation is +1 or -1, got {sign!r}")
            alphas = self.alphas(lambda1, lambda2)
            with torch.no_grad():
                for out, original, eta, name in pairs:
                    torch.add(original, eta, alpha=sign * alphas[name], out=out)
            _sync(self.device)
            return target

        return write

    def apply(self, lambda1: float, lambda2: float, into: nn.Module | None = None,
              sign: int | None = None, code_scores: dict | None = None):
        """Perturb and choose the sign; return ``(forgotten model, record)``.

        The result is written into ``into`` (a model of the same architecture, e.g. one reused
        across a grid) or into a fresh copy of the model; the original model is never changed.
        Both signs are scored on the codes; the paper's rule keeps the one with the higher
        A_R + E_F on them (ties: the larger forget-minus-remain loss gap), unless ``sign`` (+1 or
        -1, as :func:`mnemu.auto_lambdas` decides) says which to keep: then only that sign is
        written and scored (``code_scores`` has it alone), or not scored again when the caller
        passes its ``code_scores`` (as :meth:`score` gave them for that sign and lambdas).
        """
        if code_scores is not None and sign is None:
            raise MnemuError("code_scores are those of one sign: give the sign too")
        began = time.perf_counter()
        alphas = self.alphas(lambda1, lambda2)
        target = into if into is not None else _shell_copy(self.model)
        scores = {}
        perturb_seconds = time.perf_counter() - began
        write = self.perturber(target)
        with eval_mode(target):  # once for both candidates
            for candidate in (+1, -1) if sign is None else (sign,):
                t0 = time.perf_counter()
                write(lambda1, lambda2, candidate)
                perturb_seconds += time.perf_counter() - t0
                scores[candidate] = (self.score(target) if code_scores is None
                                     else dict(code_scores))
        tie = False
        if sign is None:
            plus, minus = scores[+1], scores[-1]
            tie = plus["score"] == minus["score"]
            if tie:
                sign = +1 if plus["loss_gap"] >= minus["loss_gap"] else -1
            else:
                sign = +1 if plus["score"] > minus["score"] else -1
        if sign != candidate:  # the target holds the last candidate written
            t0 = time.perf_counter()
            write(lambda1, lambda2, sign)
            perturb_seconds += time.perf_counter() - t0
        total = time.perf_counter() - began
        record = {
            "forget_classes": self.forget,
            "lambda1": lambda1,
            "lambda2": lambda2,
            "sign": "+" if sign > 0 else "-",
            "tie": tie,
            "code_scores": {("+" if g > 0 else "-"): v for g, v in scores.items()},
            "alpha": alphas,
            "fisher_method": self.method,
            "eta_eps": self.eta_eps,
            "num_codes": len(self.inputs),
            "seconds": {
                "fisher": self.fisher_seconds,
                "perturb": perturb_seconds,
                "select": total - perturb_seconds,
                "total": self.fisher_seconds + total,
            },
        }
        return target, record

    @torch.inference_mode()
    def score(self, model: nn.Module) -> dict:
        """How ``model`` treats the codes: A_R + E_F on them (percent, as
        :func:`mnemu.metrics.forgetting_metrics` defines them), the forget-minus-remain mean loss
        gap, and the logit margins (a code's own-class logit minus its best other logit):
        ``forget_margin`` is the largest over the forget codes (< 0: every forget code is
        rejected), ``remain_margin`` the smallest over the remaining codes (< 0: one is
        misclassified).
        Eval mode (:func:`mnemu.models.eval_mode`): the codes must not move BatchNorm's running
        statistics."""
        stats = _CodeStats(self)
        with eval_mode(model):
            for start, x, _ in _chunks(self.inputs, self.labels, self.chunk_size):
                stats.add(start, model(x.to(self.device)))
        return stats.scores()


class _CodeStats:
    """What :meth:`Forgetter.score` needs of a model's outputs on the codes, gathered a chunk at a
    time (whether it is recognised, its loss and margin: no [codes x classes] logits are kept), and
    summed up with one transfer from the device: a try of ``lambda: auto`` is a forward over a
    few codes, and each extra small operation or sync is a visible part of it."""

    def __init__(self, forgetter: Forgetter):
        self.labels, self.forget_rows, self.remain_rows = forgetter._code_rows
        n = len(self.labels)
        self.correct = torch.empty(n, device=forgetter.device)
        self.losses = torch.empty(n, device=forgetter.device)
        self.margins = torch.empty(n, device=forgetter.device)

    def add(self, start: int, output: torch.Tensor) -> None:
        logits = output.float()
        rows = slice(start, start + len(logits))
        labels = self.labels[rows]
        torch.eq(logits.argmax(1), labels, out=self.correct[rows])
        self.losses[rows] = F.cross_entropy(logits, labels, reduction="none")
        own = logits.gather(1, labels[:, None])[:, 0]
        others = logits.scatter(1, labels[:, None], float("-inf")).max(1).values
        torch.sub(own, others, out=self.margins[rows])

    def scores(self) -> dict:
        """A_R and E_F of the codes (as :func:`mnemu.metrics.forgetting_metrics` gives them for
        samples), the loss gap and the two extreme margins."""
        forget, remain = self.forget_rows, self.remain_rows
        a_r, a_f, loss_gap, forget_margin, remain_margin = torch.stack([
            self.correct[remain].mean(), self.correct[forget].mean(),
            self.losses[forget].mean() - self.losses[remain].mean(),
            self.margins[forget].max(), self.margins[remain].min()]).tolist()
        a_r, e_f = retained_and_forgotten(a_r, a_f)
        return {"A_R": a_r, "E_F": e_f, "score": a_r + e_f, "loss_gap": loss_gap,
                "forget_margin": forget_margin, "remain_margin": remain_margin}


def _shell_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters are allocated but not copied (they get overwritten)."""
    memo = {id(p): nn.Parameter(torch.empty_like(p), requires_grad=p.requires_grad)
            for p in model.parameters()}
    return copy.deepcopy(model, memo)


def forget(
    model: nn.Module,
    codes: torch.Tensor,
    forget_classes: Sequence[int],
    lambda1: float | None = None,
    lambda2: float | None = None,
    *,
    lambdas: str | None = None,
    method: str = "hooks",
    chunk_size: int | None = None,
) -> tuple[nn.Module, dict]:
    """Make ``model`` forget ``forget_classes`` using its mnemonic ``codes`` (one per class).

    Give either ``lambda1`` and ``lambda2`` (Eq. 7), or ``lambdas="auto"``: lambda chosen for
    this request from the codes alone (:func:`mnemu.auto_lambdas`; no data is read).
    Returns a new model (the input is left as it was) and a record: lambdas, chosen sign, whether
    the codes tied, per-tensor alpha, seconds spent on Fisher / perturbation / sign choice (and,
    with ``"auto"``, ``lambda_rule`` and ``auto``: the points tried and why it stopped).
    """
    if lambdas is not None:
        if lambdas != "auto" or lambda1 is not None or lambda2 is not None:
            raise MnemuError(f"give lambda1 and lambda2, or lambdas='auto' alone (got lambdas="
                             f"{lambdas!r}, lambda1={lambda1}, lambda2={lambda2})")
    elif lambda1 is None or lambda2 is None:
        raise MnemuError("no lambdas given; pass lambda1 and lambda2, or lambdas='auto'")
    else:
        check_lambdas(lambda1, lambda2)
    forgetter = Forgetter(model, codes, forget_classes, method=method, chunk_size=chunk_size)
    if lambdas == "auto":
        return auto_lambdas(forgetter)
    model, record = forgetter.apply(lambda1, lambda2)
    record["lambda_rule"] = "fixed"
    return model, record


def forget_grid(
    forgetter: Forgetter,
    lambdas: Iterable[tuple[float, float]],
    evaluate: Callable[[nn.Module], dict],
) -> list[dict]:
    """Evaluate Alg. 2 at every ``(lambda1, lambda2)``: one Fisher, then perturb + evaluate each.

    Each row has the lambdas, the chosen sign, the tie flag, the code scores and whatever
    ``evaluate(model)`` returns (e.g. test A_R and E_F).
    """
    scratch = copy.deepcopy(forgetter.model)
    rows = []
    for lambda1, lambda2 in lambdas:
        model, record = forgetter.apply(lambda1, lambda2, into=scratch)
        rows.append({
            "lambda1": lambda1, "lambda2": lambda2, "sign": record["sign"], "tie": record["tie"],
            "code_A_R": record["code_scores"][record["sign"]]["A_R"],
            "code_E_F": record["code_scores"][record["sign"]]["E_F"],
            **evaluate(model),
        })
    return rows
