"""mnemu.analysis on tiny models: the FIM approximation error against a direct computation from
per-sample gradients, and the loss gradients and their group magnitudes against autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mnemu import MnemuError
from mnemu.analysis import fisher_error, gradient_stats, group_magnitudes, loss_gradients
from mnemu.fisher import class_fisher
from mnemu.forgetting import Forgetter
from test_lib_fisher import ListImages  # one data set served a sample at a time


def tiny_net() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 4))
    model[1].running_mean.uniform_(-0.2, 0.2)
    model[1].running_var.uniform_(0.5, 2.0)
    return model


def samples(n=14):
    torch.manual_seed(1)
    return torch.randn(n, 1, 6, 6), torch.tensor([0, 1, 2, 3, 0, 0, 2, 1, 3, 3, 1, 2, 0, 1][:n])


def per_sample_squares(model, x, y) -> list[torch.Tensor]:
    """Each sample's squared gradient, flattened over all parameters: one backward per sample."""
    model.eval()
    out = []
    for i in range(len(x)):
        loss = F.cross_entropy(model(x[i : i + 1]), y[i : i + 1])
        grads = torch.autograd.grad(loss, list(model.parameters()))
        out.append(torch.cat([g.flatten() for g in grads]).square())
    return out


def test_fisher_error_of_hand_made_fishers():
    fisher = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor([[0.0]])}
    oracle = {"a": torch.tensor([0.0, 4.0]), "b": torch.tensor([[0.0]])}
    assert fisher_error(fisher, oracle) == pytest.approx(5.0 / 3)  # sqrt(9 + 16) / 3 parameters
    assert fisher_error(oracle, oracle) == 0.0


def test_fisher_error_matches_a_direct_computation_on_a_tiny_model():
    """The forget-class Fisher of 1 sample per class against the oracle of all 14 samples: each
    class's mean squared gradient averaged over the class set, from a per-sample loop."""
    model = tiny_net()
    x, y = samples()
    squares = per_sample_squares(model, x, y)
    forget, remain = [0], [1, 2, 3]

    def direct(indices):
        def class_mean(c):
            rows = [squares[i] for i in indices if y[i] == c]
            return torch.stack(rows).mean(0)
        return [sum(class_mean(c) for c in s) / len(s) for s in (forget, remain)]

    first = [int((y == c).nonzero()[0]) for c in range(4)]
    few, oracle = direct(first), direct(range(len(y)))
    f_few = class_fisher(model, x[first], y[first], [forget, remain])
    f_all = class_fisher(model, x, y, [forget, remain])
    count = sum(p.numel() for p in model.parameters())
    for k in range(2):
        expected = torch.linalg.vector_norm((few[k] - oracle[k]).double()).item() / count
        assert expected > 0
        assert fisher_error(f_few[k], f_all[k]) == pytest.approx(expected, rel=1e-4)


def test_fisher_error_refuses_fishers_of_different_models():
    with pytest.raises(MnemuError, match="same model"):
        fisher_error({"a": torch.zeros(2)}, {"b": torch.zeros(2)})
    with pytest.raises(MnemuError, match="shape"):
        fisher_error({"a": torch.zeros(2)}, {"a": torch.zeros(3)})


@pytest.mark.parametrize("streamed", [False, True])
def test_loss_gradients_match_autograd_of_each_sets_mean_loss(streamed):
    model = tiny_net()
    model.train()  # the gradients are taken in eval mode and the mode is restored
    x, y = samples()
    inputs = ListImages(x, y) if streamed else x
    sets = [[0, 1, 2, 3], [0], [1, 2, 3]]
    got = loss_gradients(model, inputs, None if streamed else y, sets, chunk_size=4)
    assert model.training
    model.eval()
    names = [n for n, _ in model.named_parameters()]
    for k, classes in enumerate(sets):
        keep = torch.isin(y, torch.tensor(classes))
        loss = F.cross_entropy(model(x[keep]), y[keep])
        expected = torch.autograd.grad(loss, list(model.parameters()))
        for n, e in zip(names, expected):
            torch.testing.assert_close(got[k][n], e, rtol=1e-4, atol=1e-6)
    # the whole loss's gradient is the count-weighted mix of the two sets'
    n_f = int((y == 0).sum())
    mixed = (n_f * got[1]["4.weight"] + (len(y) - n_f) * got[2]["4.weight"]) / len(y)
    torch.testing.assert_close(got[0]["4.weight"], mixed, rtol=1e-4, atol=1e-6)


def test_group_magnitudes_are_mean_absolute_values_per_parameter():
    model = tiny_net()
    x, y = samples()
    (grad,) = loss_gradients(model, x, y, [[0, 1, 2, 3]])
    stats = gradient_stats(grad)
    got = group_magnitudes(stats, {"stem": ["0", "1"], "head": ["4"]})
    stem = torch.cat([grad[n].flatten() for n in ("0.weight", "0.bias", "1.weight", "1.bias")])
    assert got["stem"] == pytest.approx(stem.abs().mean().item(), rel=1e-6)
    assert got["head"] == pytest.approx(
        torch.cat([grad["4.weight"].flatten(), grad["4.bias"]]).abs().mean().item(), rel=1e-6)


def test_group_prefixes_match_whole_name_parts():
    stats = {"layer1.0.weight": {"numel": 2, "abs_sum": 2.0},
             "layer10.weight": {"numel": 2, "abs_sum": 100.0}}
    assert group_magnitudes(stats, {"a": ["layer1"]}) == {"a": 1.0}
    with pytest.raises(MnemuError, match="matches no parameter"):
        group_magnitudes(stats, {"stem": ["conv1"]})


def test_forgetter_chooses_the_sign_on_a_streamed_data_set_as_on_a_tensor():
    model = tiny_net()
    x, y = samples()
    fisher = class_fisher(model, x, y, [[0], [1, 2, 3]])
    held = Forgetter(model, x, [0], labels=y, fisher=fisher).apply(1e-2, 10.0)[1]
    streamed = Forgetter(model, ListImages(x, y), [0], labels=y, fisher=fisher,
                         chunk_size=3).apply(1e-2, 10.0)[1]
    assert held["sign"] == streamed["sign"]
    for sign in "+-":
        assert held["code_scores"][sign]["score"] == streamed["code_scores"][sign]["score"]
        assert held["code_scores"][sign]["loss_gap"] == pytest.approx(
            streamed["code_scores"][sign]["loss_gap"], rel=1e-5)
