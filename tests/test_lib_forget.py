"""One-shot forgetting (Alg. 2): eta and alpha (Eq. 6-7), the sign rule, the record, the grid."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mnemu
from mnemu import Forgetter, MnemuError, class_fisher, forget, forget_grid
from mnemu import forgetting as forget_module

EPS = 1e-16


def state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def identity_model(num_classes: int, gain: float = 2.0) -> nn.Module:
    """Linear(C -> C, no bias) with weight gain * I: one-hot code c gets logit gain for class c."""
    model = nn.Linear(num_classes, num_classes, bias=False)
    with torch.no_grad():
        model.weight.copy_(gain * torch.eye(num_classes))
    return model


def one_hot_codes(num_classes: int) -> torch.Tensor:
    return torch.eye(num_classes)


def candidates(forgetter: Forgetter, model: nn.Module, lambda1: float, lambda2: float) -> dict:
    """The two candidate parameter sets w + alpha*eta and w - alpha*eta, per parameter tensor."""
    alphas = forgetter.alphas(lambda1, lambda2)
    out = {}
    for sign in (+1, -1):
        out[sign] = {n: torch.add(p.detach(), forgetter.eta[n], alpha=sign * alphas[n])
                     for n, p in model.named_parameters()}
        for n, p in model.named_parameters():  # the same as computed in float64, to rounding
            exact = p.detach().double() + sign * alphas[n] * forgetter.eta[n].double()
            torch.testing.assert_close(out[sign][n].double(), exact, rtol=1e-6, atol=1e-30)
    return out


def code_outcome(model: nn.Module, params: dict, codes, labels, forget_classes) -> dict:
    """Score (A_R + E_F on the codes, percent) and loss gap of ``model`` with ``params``."""
    logits = torch.func.functional_call(model, params, (codes,))
    correct = logits.argmax(1) == labels
    losses = F.cross_entropy(logits, labels, reduction="none")
    is_forget = torch.isin(labels, torch.tensor(forget_classes))
    a_r = 100.0 * correct[~is_forget].float().mean().item()
    e_f = 100.0 - 100.0 * correct[is_forget].float().mean().item()
    return {"score": a_r + e_f, "A_R": a_r, "E_F": e_f,
            "loss_gap": (losses[is_forget].mean() - losses[~is_forget].mean()).item()}


# --- eta and alpha (Eq. 6-7) ------------------------------------------------------------------


def authors_eta(f_forget: torch.Tensor, f_remain: torch.Tensor, num_forget: int,
                num_remain: int) -> torch.Tensor:
    """The authors' eta in float64: each class set's accumulator starts at EPS, then is divided
    by the set's class count, so EPS enters as EPS / |C|."""
    return ((f_forget.double() + EPS / num_forget) / (f_remain.double() + EPS / num_remain))


def handmade():
    model = nn.Linear(3, 2)
    f_forget = {"weight": torch.tensor([[1.0, 2.0, 0.0], [4.0, 0.0, 1e-20]]),
                "bias": torch.tensor([0.0, 3.0])}
    f_remain = {"weight": torch.tensor([[1.0, 0.5, 0.0], [2.0, 1e-3, 1.0]]),
                "bias": torch.tensor([0.0, 0.0])}
    return model, f_forget, f_remain


def test_eta_from_given_fisher():
    model, f_forget, f_remain = handmade()
    kept = ({k: v.clone() for k, v in f_forget.items()}, {k: v.clone() for k, v in f_remain.items()})
    forgetter = Forgetter(model, torch.rand(2, 3), [0], fisher=(f_forget, f_remain))
    for name in ("weight", "bias"):
        expected = authors_eta(f_forget[name], f_remain[name], 1, 1)  # one class each side
        torch.testing.assert_close(forgetter.eta[name].double(), expected, rtol=1e-6, atol=0)
        assert forgetter.eta_max[name] == pytest.approx(expected.max().item(), rel=1e-6)
    # where both Fisher values vanish eta is 1; the caller's tensors are left alone
    assert forgetter.eta["bias"][0].item() == pytest.approx(1.0)
    assert forgetter.eta["weight"][0, 2].item() == pytest.approx(1.0)
    for given, copy in zip((f_forget, f_remain), kept):
        assert_same_state(given, copy)
    assert forgetter.method == "given"


@pytest.mark.parametrize("lambda1, lambda2", [(1e-3, 10.0), (1.0, 0.1), (1e-6, 1e5), (0.5, 2.0),
                                              (1.0, 1e20)])
def test_alpha_is_min_of_lambda1_and_lambda2_over_max_eta(lambda1, lambda2):
    model, f_forget, f_remain = handmade()
    forgetter = Forgetter(model, torch.rand(2, 3), [0], fisher=(f_forget, f_remain))
    alphas = forgetter.alphas(lambda1, lambda2)
    assert set(alphas) == {"weight", "bias"}
    for name in alphas:
        eta = authors_eta(f_forget[name], f_remain[name], 1, 1)
        expected = min(lambda1, lambda2 / eta.max().item())
        assert alphas[name] == pytest.approx(expected, rel=1e-6), name


def test_alpha_picks_each_branch_per_tensor():
    """max eta is 4 for the weight and 3e16 for the bias: at (1e-3, 10) the weight gets lambda1,
    the bias lambda2 / 3e16."""
    model, f_forget, f_remain = handmade()
    forgetter = Forgetter(model, torch.rand(2, 3), [0], fisher=(f_forget, f_remain))
    alphas = forgetter.alphas(1e-3, 10.0)
    assert alphas["weight"] == 1e-3
    assert alphas["bias"] == pytest.approx(10.0 / ((3.0 + EPS) / EPS), rel=1e-6)


def test_eta_rules_differ_where_the_remaining_fisher_vanishes():
    """Four codes, forget class 0: |C_F| = 1, |C_R| = 3. Where f_R = 0 the authors' eta
    (f_F + eps) / (eps / 3) is three times (f_F + eps) / eps; where f_R >> eps both are f_F / f_R.
    Weight: f_F = 2 eps and f_R = 0 give 9 (authors) or 3 (after the mean); f_F = 1, f_R = 0.5
    give 2. Bias: f_F = f_R = 0 give 3 or 1. At lambda1 = lambda2 = 1, alpha = min(1, 1 / max eta):
    1/9 and 1/3 (authors), 1/3 and 1 (after the mean)."""
    model = nn.Linear(2, 4)
    f_forget = {"weight": torch.zeros(4, 2), "bias": torch.zeros(4)}
    f_remain = {"weight": torch.zeros(4, 2), "bias": torch.zeros(4)}
    f_forget["weight"][0] = torch.tensor([2 * EPS, 1.0])
    f_remain["weight"][0] = torch.tensor([0.0, 0.5])
    codes = torch.rand(4, 2)
    expected = {
        "per_class": {"eta00": 9.0, "eta_bias": 3.0, "max": {"weight": 9.0, "bias": 3.0},
                      "alpha": {"weight": 1 / 9, "bias": 1 / 3}},
        "after_mean": {"eta00": 3.0, "eta_bias": 1.0, "max": {"weight": 3.0, "bias": 1.0},
                       "alpha": {"weight": 1 / 3, "bias": 1.0}},
    }
    for rule, want in expected.items():
        forgetter = Forgetter(model, codes, [0], fisher=(f_forget, f_remain), eta_eps=rule)
        assert forgetter.remain == [1, 2, 3]
        eta = forgetter.eta
        assert eta["weight"][0, 0].item() == pytest.approx(want["eta00"], rel=1e-6)
        assert eta["weight"][0, 1].item() == pytest.approx(2.0, rel=1e-6)
        torch.testing.assert_close(eta["bias"], torch.full((4,), want["eta_bias"]), rtol=1e-6,
                                   atol=0)
        assert forgetter.eta_max == pytest.approx(want["max"], rel=1e-6)
        _, record = forgetter.apply(1.0, 1.0)
        assert record["alpha"] == pytest.approx(want["alpha"], rel=1e-6)
        assert record["eta_eps"] == rule
    assert Forgetter(model, codes, [0], fisher=(f_forget, f_remain)).eta_eps == "per_class"


def test_unknown_eta_rule_is_refused():
    with pytest.raises(MnemuError, match="unknown eta_eps rule 'late'") as err:
        Forgetter(identity_model(3), one_hot_codes(3), [0], eta_eps="late")
    assert "\n" not in str(err.value) and "per_class" in str(err.value)


def test_eta_overflow_is_capped_at_the_largest_finite_ratio():
    """float32 overflows at 1e46 = (1e30 + eps) / eps: that entry gets the tensor's largest finite
    ratio, 5 / 2 = 2.5 (not 1, not the other tensor's). inf / inf is no evidence: eta 1."""
    model = nn.Linear(4, 1)
    inf = float("inf")
    f_forget = {"weight": torch.tensor([[1e30, 2.0, 5.0, inf]]), "bias": torch.tensor([inf])}
    f_remain = {"weight": torch.tensor([[0.0, 1.0, 2.0, inf]]), "bias": torch.tensor([inf])}
    forgetter = Forgetter(model, torch.rand(2, 4), [0], fisher=(f_forget, f_remain))
    torch.testing.assert_close(forgetter.eta["weight"], torch.tensor([[2.5, 2.0, 2.5, 1.0]]),
                               rtol=1e-6, atol=0)
    torch.testing.assert_close(forgetter.eta["bias"], torch.tensor([1.0]), rtol=0, atol=0)
    assert forgetter.eta_max == pytest.approx({"weight": 2.5, "bias": 1.0}, rel=1e-6)
    assert forgetter.alphas(1.0, 1.0) == pytest.approx({"weight": 0.4, "bias": 1.0}, rel=1e-6)


@pytest.mark.parametrize("forget_classes", [[0], [3], [9], [2, 5], [1, 4, 7]])
def test_eta_from_codes_uses_the_forget_classes_and_their_complement(forget_classes):
    """Ten classes: the remaining set is exactly the other classes (class 0 included when it is
    not forgotten), and eta is the authors' ratio of the per-class Fisher averaged by hand."""
    torch.manual_seed(0)
    model = mnemu.create_model("mlp", 10, (1, 3, 3), hidden=8)
    codes = mnemu.make_codes(10, (1, 3, 3), seed=1)
    forgetter = Forgetter(model, codes, forget_classes)
    complement = [c for c in range(10) if c not in forget_classes]
    assert forgetter.forget == sorted(forget_classes) and forgetter.remain == complement
    per_class = class_fisher(model, codes, torch.arange(10), [[c] for c in range(10)],
                             method="loop")
    for name, eta in forgetter.eta.items():
        f_forget = sum(per_class[c][name].double() for c in forget_classes) / len(forget_classes)
        f_remain = sum(per_class[c][name].double() for c in complement) / len(complement)
        expected = authors_eta(f_forget, f_remain, len(forget_classes), len(complement))
        torch.testing.assert_close(eta.double(), expected, rtol=1e-4, atol=0)


# --- the sign rule ----------------------------------------------------------------------------


def test_sign_rule_on_a_model_one_can_reason_about():
    """W = 2I on one-hot codes. The Fisher of code 0 lives in column 0 of W only, where the
    remaining codes' Fisher is 0, so eta is huge there and tiny elsewhere: the perturbation
    moves column 0 by lambda2 * eta / max(eta). Minus drives logit 0 of code 0 down by 10 and
    misclassifies it (E_F 100); plus makes code 0 more confident (E_F 0). Remaining codes keep
    their logits: minus must win, 200 to 100."""
    model = identity_model(3)
    codes, labels = one_hot_codes(3), torch.arange(3)
    forgetter = Forgetter(model, codes, [0])
    # eta of column 0, from the softmax of code 0 by hand
    p = torch.softmax(torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64), 0)
    grad_sq = (p - torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)) ** 2
    torch.testing.assert_close(forgetter.eta["weight"][:, 0].double(),
                               authors_eta(grad_sq, torch.zeros(3), 1, 2), rtol=1e-5, atol=0)
    assert (forgetter.eta["weight"][:, 1:] < 1e-12).all()

    before = state(model)
    forgotten, record = forgetter.apply(1.0, 10.0)
    assert_same_state(state(model), before)
    cands = candidates(forgetter, model, 1.0, 10.0)
    plus = code_outcome(model, cands[+1], codes, labels, [0])
    minus = code_outcome(model, cands[-1], codes, labels, [0])
    assert (plus["A_R"], plus["E_F"], minus["A_R"], minus["E_F"]) == (100.0, 0.0, 100.0, 100.0)
    assert record["sign"] == "-" and record["tie"] is False
    assert torch.equal(forgotten.weight, cands[-1]["weight"])
    assert record["code_scores"]["-"]["score"] == 200.0
    assert record["code_scores"]["+"]["score"] == 100.0
    # the weight moved by exactly lambda2 * eta / max eta in column 0
    assert (before["weight"][0, 0] - forgotten.weight[0, 0]).item() == pytest.approx(10.0, rel=1e-5)


def test_tie_on_the_codes_is_broken_by_their_losses():
    """A small lambda2 moves logit 0 of code 0 by 0.1: both candidates classify every code
    right (a tie, 100 + 0 each); minus raises the forget code's loss, so minus wins."""
    model = identity_model(3)
    codes, labels = one_hot_codes(3), torch.arange(3)
    forgetter = Forgetter(model, codes, [0])
    forgotten, record = forgetter.apply(1.0, 0.1)
    cands = candidates(forgetter, model, 1.0, 0.1)
    plus = code_outcome(model, cands[+1], codes, labels, [0])
    minus = code_outcome(model, cands[-1], codes, labels, [0])
    assert plus["score"] == minus["score"] == 100.0
    assert minus["loss_gap"] > plus["loss_gap"]
    assert record["tie"] is True and record["sign"] == "-"
    assert torch.equal(forgotten.weight, cands[-1]["weight"])
    assert record["code_scores"]["-"]["loss_gap"] == pytest.approx(minus["loss_gap"], rel=1e-5)
    assert record["code_scores"]["+"]["loss_gap"] == pytest.approx(plus["loss_gap"], rel=1e-5)


def _scripted_scores(monkeypatch, model, plus: dict, minus: dict):
    """Make Forgetter.score return ``plus`` for the w + alpha*eta candidate and ``minus`` for the
    other, recognised by the direction its parameters moved (eta > 0 everywhere)."""
    original = {n: p.detach().clone() for n, p in model.named_parameters()}
    seen = []

    def score(self, candidate):
        moved = sum((p.detach() - original[n]).sum().item()
                    for n, p in candidate.named_parameters())
        assert moved != 0
        seen.append("+" if moved > 0 else "-")
        return dict(plus if moved > 0 else minus)

    monkeypatch.setattr(Forgetter, "score", score)
    return seen


@pytest.mark.parametrize("plus, minus, sign, tie", [
    ({"score": 190.0, "loss_gap": 0.0}, {"score": 180.0, "loss_gap": 9.0}, "+", False),
    ({"score": 150.0, "loss_gap": 9.0}, {"score": 160.0, "loss_gap": 0.0}, "-", False),
    ({"score": 200.0, "loss_gap": 3.0}, {"score": 200.0, "loss_gap": 2.0}, "+", True),
    ({"score": 200.0, "loss_gap": -1.0}, {"score": 200.0, "loss_gap": 2.0}, "-", True),
])
def test_sign_rule_with_scripted_scores(monkeypatch, plus, minus, sign, tie):
    torch.manual_seed(0)
    model = mnemu.create_model("mlp", 3, (1, 2, 2), hidden=5)
    codes = mnemu.make_codes(3, (1, 2, 2), seed=0)
    forgetter = Forgetter(model, codes, [1])
    plus, minus = ({**scores, "A_R": scores["score"] - 100.0, "E_F": 100.0}
                   for scores in (plus, minus))
    seen = _scripted_scores(monkeypatch, model, plus, minus)
    before = state(model)
    forgotten, record = forgetter.apply(1e-2, 10.0)
    assert sorted(seen) == ["+", "-"]  # both candidates scored, once each
    assert record["sign"] == sign and record["tie"] is tie
    assert record["code_scores"] == {"+": plus, "-": minus}
    expected = candidates(forgetter, model, 1e-2, 10.0)[+1 if sign == "+" else -1]
    for n, p in forgotten.named_parameters():
        assert torch.equal(p.detach(), expected[n]), n
    assert_same_state(state(model), before)
    assert forgotten is not model


def test_forget_several_classes_and_the_record():
    model = identity_model(4)
    codes = one_hot_codes(4)
    before = state(model)
    forgotten, record = forget(model, codes, [2, 0, 2], lambda1=1.0, lambda2=10.0)
    assert_same_state(state(model), before)
    assert record["forget_classes"] == [0, 2]
    assert record["lambda1"] == 1.0 and record["lambda2"] == 10.0
    # minus lowers each forget code's own logit (the only weights its Fisher marks): "-" wins
    assert record["sign"] == "-" and record["tie"] is False
    assert record["fisher_method"] == "hooks" and record["num_codes"] == 4
    assert record["eta_eps"] == "per_class"
    # Eq. 7 by hand: code c's gradient of W is (p - e_c) e_c^T, p = softmax(2 e_c), so the
    # Fisher of each set is its codes' columns (p - e_c)^2 / 2; max eta is where
    # f_F = (1 - p_c)^2 / 2 meets f_R = 0: ((1 - p_c)^2 / 2 + EPS / 2) / (EPS / 2)
    p_c = math.exp(2.0) / (math.exp(2.0) + 3)
    max_eta = ((1 - p_c) ** 2 / 2 + EPS / 2) / (EPS / 2)
    assert record["alpha"] == pytest.approx({"weight": min(1.0, 10.0 / max_eta)}, rel=1e-5)
    forgetter = Forgetter(model, codes, [0, 2])
    seconds = record["seconds"]
    assert set(seconds) == {"fisher", "perturb", "select", "total"}
    assert all(v >= 0 for v in seconds.values())
    assert seconds["total"] == pytest.approx(seconds["fisher"] + seconds["perturb"]
                                             + seconds["select"], rel=1e-6)
    # both forget codes are now misclassified, the other two kept
    predictions = forgotten(codes).argmax(1)
    assert predictions[0] != 0 and predictions[2] != 2
    assert predictions[1] == 1 and predictions[3] == 3
    assert record["code_scores"][record["sign"]]["E_F"] == 100.0
    assert record["code_scores"][record["sign"]]["A_R"] == 100.0
    # same result as the class API, which it wraps
    again, _ = forgetter.apply(1.0, 10.0)
    assert_same_state(state(again), state(forgotten))


def test_forget_leaves_a_bigger_model_unchanged():
    torch.manual_seed(0)
    model = mnemu.create_model("resnet18_cifar", 3, (3, 8, 8), width=4)
    model.train()
    codes = mnemu.make_codes(3, (3, 8, 8), seed=0)
    before = state(model)
    forgotten, record = forget(model, codes, [1], 1e-3, 10.0)
    assert_same_state(state(model), before)  # parameters and BatchNorm buffers
    assert model.training
    assert any(not torch.equal(p, before[n]) for n, p in forgotten.named_parameters())
    assert forgotten.bn1.running_mean.data_ptr() != model.bn1.running_mean.data_ptr()


def eval_code_scores(model: nn.Module, codes, labels, forget_classes) -> dict:
    """A_R, E_F and loss gap of ``model`` on the codes, in eval mode, computed here by hand."""
    model = copy.deepcopy(model).eval()
    with torch.no_grad():
        logits = model(codes)
    correct = (logits.argmax(1) == labels).tolist()
    labels_list = labels.tolist()
    forget_hits = [ok for ok, y in zip(correct, labels_list) if y in forget_classes]
    remain_hits = [ok for ok, y in zip(correct, labels_list) if y not in forget_classes]
    losses = F.cross_entropy(logits, labels, reduction="none").tolist()
    forget_losses = [v for v, y in zip(losses, labels_list) if y in forget_classes]
    remain_losses = [v for v, y in zip(losses, labels_list) if y not in forget_classes]
    return {"A_R": 100.0 * sum(remain_hits) / len(remain_hits),
            "E_F": 100.0 - 100.0 * sum(forget_hits) / len(forget_hits),
            "loss_gap": (sum(forget_losses) / len(forget_losses)
                         - sum(remain_losses) / len(remain_losses)),
            "predictions": logits.argmax(1)}


def test_codes_are_scored_in_eval_mode_and_leave_batchnorm_buffers_alone():
    """A BatchNorm model in train mode whose running statistics (mean 0, var 1) are far from the
    codes' batch statistics: scoring the candidates in train mode would both change the scores
    and move the forgotten model's running_mean / running_var / num_batches_tracked."""
    torch.manual_seed(0)
    model = mnemu.create_model("resnet18_cifar", 4, (3, 8, 8), width=4)
    model.train()
    codes = mnemu.make_codes(4, (3, 8, 8), seed=0)
    labels = torch.arange(4)
    forgotten, record = Forgetter(model, codes, [1]).apply(1e-2, 10.0)
    buffers = dict(model.named_buffers())
    assert any(n.endswith("num_batches_tracked") for n in buffers)
    for name, buffer in forgotten.named_buffers():
        assert torch.equal(buffer, buffers[name]), name
    assert forgotten.training  # the caller's mode is kept
    chosen = record["code_scores"][record["sign"]]
    by_hand = eval_code_scores(forgotten, codes, labels, [1])
    assert (chosen["A_R"], chosen["E_F"]) == pytest.approx((by_hand["A_R"], by_hand["E_F"]))
    assert chosen["score"] == pytest.approx(by_hand["A_R"] + by_hand["E_F"])
    assert chosen["loss_gap"] == pytest.approx(by_hand["loss_gap"], rel=1e-4, abs=1e-6)
    # the other candidate: the original reflected through the chosen one, w -/+ alpha * eta
    other = copy.deepcopy(forgotten)
    with torch.no_grad():
        for (n, p), q in zip(other.named_parameters(), model.parameters()):
            p.copy_(2 * q - p)
    other_scores = record["code_scores"]["+" if record["sign"] == "-" else "-"]
    by_hand = eval_code_scores(other, codes, labels, [1])
    assert (other_scores["A_R"], other_scores["E_F"]) == pytest.approx((by_hand["A_R"],
                                                                        by_hand["E_F"]))
    assert other_scores["loss_gap"] == pytest.approx(by_hand["loss_gap"], rel=1e-4, abs=1e-6)


def test_scoring_gives_each_module_back_its_own_mode():
    """A model half in training mode (a frozen, evaluating backbone under a training head, as
    fine-tuning leaves it) is scored in eval mode throughout and left exactly as it was."""
    torch.manual_seed(0)
    model = mnemu.create_model("resnet18_cifar", 4, (3, 8, 8), width=4).eval()
    model.fc.train()
    modes = {name: m.training for name, m in model.named_modules()}
    seen = []
    model.bn1.register_forward_pre_hook(lambda module, args: seen.append(module.training))
    Forgetter(model, mnemu.make_codes(4, (3, 8, 8), seed=0), [1], method="vmap").score(model)
    assert seen and not any(seen)
    assert {name: m.training for name, m in model.named_modules()} == modes


def test_code_scores_are_the_forgetting_metrics_of_the_codes_predictions():
    """Several codes per class (as with real samples): A_R and E_F on the codes are the test
    metrics' definition (mnemu.forgetting_metrics) applied to the codes' predictions."""
    torch.manual_seed(3)
    model = mnemu.create_model("mlp", 5, (1, 3, 3), hidden=6)
    inputs = torch.rand(15, 1, 3, 3)
    labels = torch.tensor([0, 1, 2, 3, 4] * 3)
    forgotten, record = Forgetter(model, inputs, [2, 4], labels=labels).apply(0.5, 1e3)
    by_hand = eval_code_scores(forgotten, inputs, labels, [2, 4])
    metrics = mnemu.forgetting_metrics(labels, by_hand["predictions"], [2, 4], 5)
    chosen = record["code_scores"][record["sign"]]
    assert (chosen["A_R"], chosen["E_F"]) == (metrics["A_R"], metrics["E_F"])
    assert (chosen["A_R"], chosen["E_F"]) == pytest.approx((by_hand["A_R"], by_hand["E_F"]))
    assert chosen["loss_gap"] == pytest.approx(by_hand["loss_gap"], rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("classes, message", [
    ([5], "forget class 5 is not in the model"),
    ([-1], "forget class -1 is not in the model"),
    ([], "no forget class"),
    ([0, 1, 2], "cannot forget every class"),
])
def test_forget_rejects_bad_classes(classes, message):
    with pytest.raises(MnemuError, match=message) as err:
        forget(identity_model(3), one_hot_codes(3), classes, 1e-3, 10.0)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("lambda1, lambda2, name", [(0.0, 10.0, "lambda1"), (1e-3, -1.0, "lambda2"),
                                                    (-1e-3, 10.0, "lambda1"),
                                                    (float("nan"), 1.0, "lambda1")])
def test_forget_rejects_non_positive_lambdas(lambda1, lambda2, name):
    with pytest.raises(MnemuError, match=f"{name} must be positive") as err:
        forget(identity_model(3), one_hot_codes(3), [0], lambda1, lambda2)
    assert "\n" not in str(err.value) and "lambda1 in 1e-6..1" in str(err.value)
    forgetter = Forgetter(identity_model(3), one_hot_codes(3), [0])
    with pytest.raises(MnemuError, match=f"{name} must be positive"):
        forgetter.apply(lambda1, lambda2)


# --- the grid ---------------------------------------------------------------------------------


def test_forget_grid_reuses_one_fisher_and_matches_single_runs(monkeypatch):
    calls = []
    real = forget_module.class_fisher

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(forget_module, "class_fisher", counting)
    torch.manual_seed(0)
    model = mnemu.create_model("mlp", 4, (1, 3, 3), hidden=8)
    codes = mnemu.make_codes(4, (1, 3, 3), seed=0)
    before = state(model)
    forgetter = Forgetter(model, codes, [1])
    points = [(l1, l2) for l1 in (1e-4, 1e-2, 1.0) for l2 in (0.1, 10.0)]
    seen_models = []

    def evaluate(m):
        seen_models.append(state(m))
        return {"A_R": 50.0, "E_F": float(len(seen_models))}

    rows = forget_grid(forgetter, points, evaluate)
    assert len(calls) == 1
    assert [(r["lambda1"], r["lambda2"]) for r in rows] == points
    assert [r["E_F"] for r in rows] == [float(i + 1) for i in range(len(points))]
    for row, seen, (l1, l2) in zip(rows, seen_models, points):
        single, record = forgetter.apply(l1, l2)  # fresh copy each time
        assert_same_state(seen, state(single))
        assert row["sign"] == record["sign"] and row["tie"] == record["tie"]
        assert row["code_A_R"] == record["code_scores"][record["sign"]]["A_R"]
        assert row["code_E_F"] == record["code_scores"][record["sign"]]["E_F"]
    assert len(calls) == 1
    assert_same_state(state(model), before)
