"""lambda: auto (mnemu.auto_lambdas) and the paper's rule on a validation split: the auto rule
reads nothing but the codes, escalates while the codes cannot tell the signs apart, stops before
the remaining codes fail; selection on the validation split never reads the test split."""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import mnemu
from mnemu import Forgetter, MnemuError, auto_lambdas, forget
from mnemu.checkpoint import Checkpoint
from mnemu.data import DataSplits
from mnemu.files import write_csv
from mnemu.lambdas import AUTO_RATIO, auto_path, auto_verdict
from mnemu.pipeline import choose_lambda_step, validation_split


class ScriptedForgetter:
    """Stands in for a Forgetter: the code scores of the model perturbed at strength s (lambda1)
    with sign g are ``script(s, g)``, a dict with forget_margin and remain_margin; ``before`` is
    the unperturbed model's."""

    def __init__(self, script, before):
        self.model = torch.nn.Linear(1, 1)
        self.script, self.before, self.calls = script, before, []

    def perturb(self, lambda1, lambda2, sign, into=None):
        self.calls.append((lambda1, sign))
        return ("perturbed", lambda1, sign)

    def perturber(self, into):
        return lambda lambda1, lambda2, sign: self.perturb(lambda1, lambda2, sign, into)

    @property
    def scores_before(self):
        return self.score(self.model)

    def score(self, model):
        if model is self.model:
            return {"A_R": 100.0, "E_F": 0.0, **self.before}
        _, lambda1, sign = model
        return {"A_R": 100.0, "E_F": 100.0, "score": 200.0, "loss_gap": 0.0,
                **self.script(lambda1, sign)}

    def apply(self, lambda1, lambda2, into=None, sign=None, code_scores=None):
        scores = {g: self.score(("perturbed", lambda1, g)) for g in (+1, -1)}
        if code_scores is not None:  # auto passes what it scored at the chosen point
            assert code_scores == scores[sign]
        record = {"lambda1": lambda1, "lambda2": lambda2, "sign": "+" if sign > 0 else "-",
                  "tie": False, "code_scores": {"+": scores[+1], "-": scores[-1]},
                  "seconds": {"total": 0.0}}
        return into, record


BEFORE = {"forget_margin": 4.0, "remain_margin": 4.0}
PATH = [10.0 ** (e / 4) for e in range(-28, 1)]  # 1e-7 .. 1, four steps per decade


def test_it_escalates_while_both_signs_tie_on_the_codes():
    # Up to s = 1e-3 both signs score the same on the codes: both still recognise the forget
    # code ("not yet"). Beyond it, sign - rejects the forget code by 10 (firm: 10 > 4), sign +
    # never does; the remaining codes never suffer. The first point past 1e-3 is 10^(-11/4).
    def script(s, sign):
        if s <= 1e-3 + 1e-12:
            return {"forget_margin": 3.0, "remain_margin": 4.0}
        return {"forget_margin": -10.0 if sign < 0 else 6.0, "remain_margin": 4.0}

    forgetter = ScriptedForgetter(script, BEFORE)
    _, record = auto_lambdas(forgetter, path=PATH, ratio=100.0, firm=1.0, beyond=1.0)
    assert record["lambda1"] == pytest.approx(10 ** (-11 / 4))
    assert record["lambda2"] == pytest.approx(100.0 * 10 ** (-11 / 4))
    assert record["auto"]["verdict"] == "ok" and record["lambda_rule"] == "auto"
    assert record["sign"] == record["auto"]["sign"] == "-"
    tried = record["auto"]["tried"]
    assert any(t["verdict"] == "not yet" and t["s"] <= 1e-3 for t in tried)
    # two bisections (one per sign), a handful of tries each, not the whole path of 29 points
    assert record["auto"]["num_tried"] == len(tried) <= 2 * 6


def test_it_stops_before_the_remaining_codes_fail():
    # Sign -: the remaining codes' smallest margin is 4 - 4 (log10 s + 3) above s = 1e-3: 0 at
    # s = 1e-2, negative from the next path point, 10^-1.75. The forget code's margin is
    # 3 - 10 (log10 s + 4) above s = 1e-4. Sign + wrecks the model from s = 1e-6 on: every code
    # in one class (the forget code rejected, a remaining code lost), which the paper's sign
    # choice, A_R + E_F on the codes, can prefer.
    def script(s, sign):
        if sign > 0:
            return ({"forget_margin": -100.0, "remain_margin": -50.0} if s >= 1e-6 else
                    {"forget_margin": 4.0, "remain_margin": 4.0})
        log = math.log10(s)
        return {"forget_margin": 3.0 - 10.0 * max(log + 4, 0),
                "remain_margin": 4.0 - 4.0 * max(log + 3, 0)}

    forgetter = ScriptedForgetter(script, BEFORE)
    _, record = auto_lambdas(forgetter, path=PATH, ratio=100.0, firm=2.5, beyond=1.0,
                             keep=0.0)
    # firm 2.5: needs forget_margin < -10, i.e. 3 - 10 (log + 4) < -10, log > -2.7 -> 10^-2.5;
    # the remaining codes hold there (margin 2): stop at the first firm point, verdict ok
    assert record["lambda1"] == pytest.approx(10 ** -2.5)
    assert record["auto"]["verdict"] == "ok" and record["sign"] == "-"

    # beyond 10: on from 10^-2.5 to 10^-1.5, where the remaining codes have failed (from
    # 10^-1.75): it backs off to the last point where they hold, 1e-2
    _, record = auto_lambdas(ScriptedForgetter(script, BEFORE), path=PATH, ratio=100.0, firm=2.5,
                             beyond=10.0, keep=0.0)
    assert record["lambda1"] == pytest.approx(1e-2)
    assert record["auto"]["verdict"] == "ok" and record["sign"] == "-"
    # beyond 2: on to the first path point at or past twice 10^-2.5 (6.3e-3), 1e-2, where they
    # still hold (margin 0)
    _, record = auto_lambdas(ScriptedForgetter(script, BEFORE), path=PATH, ratio=100.0, firm=2.5,
                             keep=0.0)
    assert record["lambda1"] == pytest.approx(1e-2)

    _, record = auto_lambdas(ScriptedForgetter(script, BEFORE), path=PATH, ratio=100.0, firm=7.0,
                             keep=0.0)
    # firm 7: needs forget_margin < -28: log > -0.9, where the remaining codes have failed
    # (margin < 0 from 10^-1.75). The rule stops at the last point where they hold, 1e-2
    # (margin exactly 0), and says the forgetting is partial.
    assert record["lambda1"] == pytest.approx(1e-2)
    assert record["auto"]["verdict"] == "not enough" and record["sign"] == "-"
    assert "remaining codes fail" in record["auto"]["reason"]
    chosen = next(t for t in record["auto"]["tried"]
                  if t["s"] == record["lambda1"] and t["sign"] == "-")
    assert chosen["remain_margin"] >= 0
    assert all(t["remain_margin"] < 0 for t in record["auto"]["tried"]
               if t["s"] > 1e-2 and t["sign"] == "-")


def test_past_beyond_it_goes_on_while_the_forget_code_is_only_just_rejected():
    # Sign -: the forget code is rejected from 1e-4 on, only just (margin -0.5, above -enough x
    # 4 = -2), and firmly (-3) from ``firm_from`` on; the remaining codes keep their margin (4)
    # until ``loose_from``, then 2.5 (0.625 x: still above keep 0.5, below hold 0.7). Sign +
    # wrecks the model from 1e-6 on.
    def scripted(firm_from, loose_from):
        def script(s, sign):
            if sign > 0:
                return ({"forget_margin": -100.0, "remain_margin": -50.0} if s >= 1e-6 else
                        {"forget_margin": 4.0, "remain_margin": 4.0})
            forget_margin = 3.0 if s < 1e-4 else -3.0 if s >= firm_from * (1 - 1e-9) else -0.5
            return {"forget_margin": forget_margin,
                    "remain_margin": 2.5 if s >= loose_from * (1 - 1e-9) else 4.0}
        return ScriptedForgetter(script, BEFORE)

    # on past 2 x 1e-4 to where the forget code is firmly rejected (and the rest still holds)
    _, record = auto_lambdas(scripted(1e-2, 1.0), path=PATH, ratio=100.0)
    assert record["lambda1"] == pytest.approx(1e-2) and record["sign"] == "-"
    assert record["auto"]["verdict"] == "ok" and "100 x" in record["auto"]["reason"]
    # ... but not to where the remaining codes have lost hold: the last point before, 10^-3.25
    _, record = auto_lambdas(scripted(1e-2, 1e-3), path=PATH, ratio=100.0)
    assert record["lambda1"] == pytest.approx(10 ** -3.25)
    # without hold, or with a forget code firmly rejected by 2 x, it stops at 2 x: 10^-3.5
    for forgetter, hold in ((scripted(1e-2, 1.0), None), (scripted(3e-4, 1.0), 0.7)):
        _, record = auto_lambdas(forgetter, path=PATH, ratio=100.0, hold=hold)
        assert record["lambda1"] == pytest.approx(10 ** -3.5)
    # the tries stay a handful of bisections, not the path's 29 points per sign
    assert record["auto"]["num_tried"] <= 18


FINE_PATH = auto_path()  # auto's own path: 113 points


@pytest.mark.parametrize("seed", range(6))
def test_guessed_tries_find_what_bisection_finds(seed, monkeypatch):
    """Margins that cross their limits along straight lines in s (as they nearly do where they
    cross) are found in a few guessed tries; margins that do not (steps, plateaus, a model
    wrecked past a point) in more tries than bisection, but not twice as many here; the stopping
    point is the same either way."""
    generator = random.Random(seed)
    crossing = 10 ** generator.uniform(-6, -2)  # where sign -'s forget margin crosses 0
    fail = crossing * 10 ** generator.uniform(0.2, 2)  # where the remaining codes' one hits 2
    wreck = fail * 10 ** generator.uniform(0, 1)  # beyond it the margins blow up
    smooth = seed % 2 == 0

    def script(s, sign):
        if sign > 0:
            return {"forget_margin": 4.0 + s, "remain_margin": 4.0 - 2.0 * s / fail}
        if s >= wreck:
            return {"forget_margin": -1e6, "remain_margin": -1e6}
        if smooth:
            return {"forget_margin": 4.0 * (1 - s / crossing), "remain_margin": 4.0 - 2.0 * s / fail}
        # steps: flat, then a jump at each point, with a plateau in between
        return {"forget_margin": 3.0 if s < crossing else -0.5 if s < 10 * crossing else -3.0,
                "remain_margin": 4.0 if s < fail else 1.0}

    _, guided = auto_lambdas(ScriptedForgetter(script, BEFORE), path=FINE_PATH, ratio=100.0)
    monkeypatch.setattr(mnemu.lambdas, "GUESS_STRIKES", 0)  # bisection alone
    _, bisected = auto_lambdas(ScriptedForgetter(script, BEFORE), path=FINE_PATH, ratio=100.0)
    assert (guided["lambda1"], guided["sign"]) == (bisected["lambda1"], bisected["sign"])
    assert guided["auto"]["verdict"] == bisected["auto"]["verdict"]
    tries, plain = guided["auto"]["num_tried"], bisected["auto"]["num_tried"]
    assert tries < plain if smooth else tries < 2 * plain


def test_verdicts_follow_the_codes():
    before = {"forget_margin": 2.0, "remain_margin": 3.0}
    assert auto_verdict({"forget_margin": -5, "remain_margin": -0.1}, before) == "too far"
    assert auto_verdict({"forget_margin": 0.5, "remain_margin": 2}, before) == "not yet"
    assert auto_verdict({"forget_margin": -1.5, "remain_margin": 2}, before,
                        firm=1.0) == "not enough"
    assert auto_verdict({"forget_margin": -1.5, "remain_margin": 2}, before) == "ok"  # firm 0
    assert auto_verdict({"forget_margin": -2.5, "remain_margin": 2}, before, firm=1.0) == "ok"
    # by default a remaining code may lose half its margin, not more (keep 0.5)
    assert auto_verdict({"forget_margin": -2.5, "remain_margin": 1}, before) == "too far"
    assert auto_verdict({"forget_margin": -2.5, "remain_margin": 1}, before, keep=0.0) == "ok"
    assert auto_verdict({"forget_margin": -2.5, "remain_margin": 2}, before,
                        keep=0.8) == "too far"


def test_a_model_that_misclassified_remaining_codes_before_is_judged_by_their_accuracy():
    """A briefly trained model may get some remaining codes wrong before any forgetting (smallest
    margin < 0): that alone is not "too far" (else every point would be, and nothing would be
    forgotten); losing a code it did recognise is."""
    before = {"forget_margin": 0.2, "remain_margin": -0.8, "A_R": 40.0}
    assert auto_verdict({"forget_margin": -0.5, "remain_margin": -0.9, "A_R": 40.0},
                        before) == "ok"
    assert auto_verdict({"forget_margin": 0.1, "remain_margin": -0.7, "A_R": 40.0},
                        before) == "not yet"
    assert auto_verdict({"forget_margin": -0.5, "remain_margin": -0.7, "A_R": 30.0},
                        before) == "too far"
    assert auto_path(1e-2, 1.0, 2) == pytest.approx([1e-2, 10 ** -1.5, 1e-1, 10 ** -0.5, 1.0])


def memorised_mlp(num_classes=4, shape=(1, 4, 4)):
    """A small MLP that has learnt its codes (one per class), as training with codes makes it."""
    torch.manual_seed(0)
    model = mnemu.create_model("mlp", num_classes, shape, hidden=32)
    codes = mnemu.make_codes(num_classes, shape, seed=0)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(200):
        optimiser.zero_grad()
        F.cross_entropy(model(codes), torch.arange(num_classes)).backward()
        optimiser.step()
    return model, codes


def test_auto_reads_no_data_and_forgets_the_code(monkeypatch):
    model, codes = memorised_mlp()

    def no_data(*args, **kwargs):
        raise AssertionError("the auto rule read data")

    monkeypatch.setattr(DataLoader, "__iter__", no_data)
    monkeypatch.setattr(mnemu, "load_dataset", no_data)
    monkeypatch.setattr("mnemu.data.load_dataset", no_data)
    monkeypatch.setattr(DataSplits, "train", property(no_data))
    monkeypatch.setattr(DataSplits, "test", property(no_data))
    forgotten, record = forget(model, codes, [2], lambdas="auto")
    with torch.no_grad():
        predicted = forgotten(codes).argmax(1).tolist()
    assert predicted[2] != 2 and [predicted[c] for c in (0, 1, 3)] == [0, 1, 3]
    assert record["auto"]["verdict"] == "ok" and record["lambda2"] == pytest.approx(
        AUTO_RATIO * record["lambda1"])
    assert record["seconds"]["search"] > 0
    # the positional lambdas still work, and mixing both ways is refused in one line
    forget(model, codes, [2], 1e-3, 10.0)
    with pytest.raises(MnemuError, match="lambdas='auto' alone"):
        forget(model, codes, [2], 1e-3, 10.0, lambdas="auto")
    with pytest.raises(MnemuError, match="no lambdas given"):
        forget(model, codes, [2])


def test_auto_through_a_forgetter_keeps_the_model():
    model, codes = memorised_mlp()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    forgotten, _ = auto_lambdas(Forgetter(model, codes, [0]))
    assert forgotten is not model
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


def test_selection_on_validation_never_reads_the_test_columns(tmp_path):
    # test columns say (1e-2, 10) is best; validation columns say (1e-3, 10): and the test
    # columns of the grid hold no numbers at all, so reading them would fail
    rows = [{"lambda1": 1e-3, "lambda2": 10.0, "A_R": "", "E_F": "", "val_A_R": 99.0,
             "val_E_F": 100.0},
            {"lambda1": 1e-2, "lambda2": 10.0, "A_R": "", "E_F": "", "val_A_R": 90.0,
             "val_E_F": 100.0}]
    grid = tmp_path / "grid.csv"
    write_csv(grid, rows)
    out = tmp_path / "lambda.json"
    choose_lambda_step("b", "select", [str(grid)], str(out))
    import json

    chosen = json.loads(out.read_text())
    assert (chosen["lambda1"], chosen["select_on"], chosen["lambda_rule"]) == (
        1e-3, "validation", "select on validation")
    with pytest.raises(MnemuError, match="lacks a number for lambda1, lambda2, A_R or E_F"):
        choose_lambda_step("b", "select", [str(grid)], str(out), select_on="test")


def test_the_validation_split_is_carved_from_the_training_split(monkeypatch, tmp_path):
    options = {"num_classes": 3, "image_shape": [1, 4, 4], "train_per_class": 20,
               "test_per_class": 5, "max_train_per_class": 12}
    checkpoint = Checkpoint(torch.nn.Linear(1, 1), torch.zeros(3, 1, 4, 4),
                            {"name": "x", "num_classes": 3, "input_shape": [1, 4, 4]},
                            {"name": "synthetic", "options": options})

    def no_test(self):
        raise AssertionError("the validation split read the test split")

    monkeypatch.setattr(DataSplits, "test", property(no_test))
    validation = validation_split(checkpoint, str(tmp_path), 100)  # capped at the 12 trained on
    train = checkpoint.dataset(str(tmp_path), augment=False).train
    assert len(validation) == 3 * 12
    x, y = validation[0]
    assert torch.equal(x, train[0][0]) and y == train[0][1]
    with pytest.raises(MnemuError, match="validation_per_class must be at least 1"):
        validation_split(checkpoint, str(tmp_path), 0)


def test_the_chosen_point_is_not_scored_twice(monkeypatch):
    """auto hands the scores it has for its chosen point to ``apply``, which then writes that
    sign's perturbation and runs no forward; scores without a sign are refused. The model
    before forgetting is scored by the Fisher pass's forward, not by one of its own."""
    model, codes = memorised_mlp()
    forgetter = Forgetter(model, codes, [1])
    calls = []
    real = Forgetter.score
    monkeypatch.setattr(Forgetter, "score", lambda self, m: calls.append(m) or real(self, m))
    _, record = auto_lambdas(forgetter)
    assert len(calls) == record["auto"]["num_tried"]  # each try, and nothing else
    chosen = next(t for t in record["auto"]["tried"]
                  if t["s"] == record["lambda1"] and t["sign"] == record["sign"])
    assert record["code_scores"][record["sign"]]["forget_margin"] == chosen["forget_margin"]
    with pytest.raises(MnemuError, match="give the sign"):
        forgetter.apply(1e-4, 10.0, code_scores=record["code_scores"][record["sign"]])


@pytest.mark.parametrize("method", ["hooks", "vmap", "loop"])
def test_the_fisher_pass_scores_the_model_before_as_a_forward_of_its_own_would(method):
    """Forgetter.scores_before comes from the Fisher pass's forward, a chunk at a time; it says
    what Forgetter.score says of the unchanged model (a forward of its own), and so does it
    where the Fisher was given."""
    model, codes = memorised_mlp()
    forgetter = Forgetter(model, codes, [1, 2], method=method, chunk_size=3)
    own = forgetter.score(model)
    assert forgetter.scores_before == pytest.approx(own, abs=1e-5)
    assert own["E_F"] == 0.0 and own["forget_margin"] > 0  # a model that recognises its codes
    given = Forgetter(model, codes, [1, 2], fisher=(forgetter.eta, forgetter.eta))
    assert given.scores_before == pytest.approx(own, abs=1e-5)
