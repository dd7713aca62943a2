"""Per-sample squared gradients (``sum_squared_grads``) and the class Fisher of Eq. 6 (``class_fisher``)
against a brute-force reference written here: one batch-1 backward per sample, squared, weighted."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import mnemu
import mnemu.fisher
from mnemu import MnemuError, class_fisher, create_model, sum_squared_grads

RTOL = 1e-5


def brute_force(model: nn.Module, inputs, labels, weights) -> dict[str, torch.Tensor]:
    """S[name][g] = sum_n weights[g, n] * (d CE(model(x_n), y_n) / d param)^2, one sample at a time,
    accumulated in float64. The model is in eval mode; every parameter counts (frozen ones too)."""
    model.eval()
    params = dict(model.named_parameters())
    flags = {n: p.requires_grad for n, p in params.items()}
    for p in params.values():
        p.requires_grad_(True)
    out = {n: torch.zeros(weights.shape[0], *p.shape, dtype=torch.float64) for n, p in params.items()}
    try:
        for i in range(len(inputs)):
            loss = F.cross_entropy(model(inputs[i : i + 1]), labels[i : i + 1])
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for name, grad in zip(params, grads):
                if grad is None:
                    continue
                squared = grad.detach().double().square()
                for g in range(weights.shape[0]):
                    out[name][g] += float(weights[g, i]) * squared
    finally:
        for n, p in params.items():
            p.requires_grad_(flags[n])
    return out


def assert_close_rel(got: torch.Tensor, ref: torch.Tensor, what: str, rtol: float = RTOL) -> None:
    """``got`` equals ``ref`` within ``rtol`` of the tensor's largest entry (elementwise) and of
    its norm. (Entries far below the largest are float32 round-off of sums taken in another order,
    so a purely elementwise relative tolerance would test the summation order, not the method.)"""
    got = got.double()
    assert got.shape == ref.shape, what
    scale = ref.abs().max().item()
    assert scale > 0, f"{what}: reference is all zero, the test would prove nothing"
    worst = (got - ref).abs().max().item()
    assert worst <= rtol * scale, f"{what}: max error {worst:.3g} vs largest entry {scale:.3g}"
    assert (got - ref).norm() <= rtol * ref.norm(), what


def assert_matches(actual: dict, expected: dict, rtol: float = RTOL) -> None:
    """Same parameter names; every tensor close to the reference (:func:`assert_close_rel`)."""
    assert set(actual) == set(expected)
    for name, ref in expected.items():
        assert_close_rel(actual[name], ref, name, rtol)


def randomise_norm_layers(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial affine weights and running statistics in every normalisation layer."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)):
                if getattr(module, "weight", None) is not None:
                    module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
                    module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.copy_(0.3 * torch.randn(module.running_mean.shape,
                                                            generator=generator))
                module.running_var.copy_(0.5 + torch.rand(module.running_var.shape,
                                                          generator=generator))
    return model


# --- models ----------------------------------------------------------------------------------


class GroupedConvNet(nn.Module):
    """Grouped, depthwise, strided and dilated convolutions (with and without bias), on outputs
    big enough for the grouped-convolution path (>= 256 positions) and small enough for the
    unfolded one, plus GroupNorm."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 8, 3, padding=1, groups=2)  # 16x16 out: grouped path
        self.norm = nn.GroupNorm(2, 8)
        self.conv2 = nn.Conv2d(8, 8, 3, stride=2, dilation=2, padding=2, groups=4, bias=False)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # 8x8 out: unfolded path
        self.fc = nn.Linear(8 * 8 * 8, num_classes)

    def forward(self, x):
        x = torch.tanh(self.norm(self.conv1(x)))
        x = torch.relu(self.conv2(x))
        x = torch.sigmoid(self.depthwise(x))
        return self.fc(x.flatten(1))


class SequenceNet(nn.Module):
    """Token sequences [N, T, D]: Linear on sequences, LayerNorm over features and over
    (positions, features), a mean over positions, a head."""

    def __init__(self, tokens=5, dim=6, hidden=12, num_classes=3):
        super().__init__()
        self.embed = nn.Linear(dim, hidden)
        self.norm = nn.LayerNorm(hidden)
        self.mix = nn.Linear(hidden, hidden, bias=False)
        self.norm2 = nn.LayerNorm([tokens, hidden])
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        x = F.gelu(self.norm(self.embed(x)))
        x = self.norm2(x + torch.tanh(self.mix(x)))
        return self.head(x.mean(1))


class SharedNet(nn.Module):
    """A Linear and a Conv2d each called twice in one forward (shared weights)."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.square = nn.Linear(3 * 6 * 6, 3 * 6 * 6 // 4)
        self.shared = nn.Linear(27, 27)
        self.head = nn.Linear(27, num_classes)

    def forward(self, x):
        x = torch.tanh(self.conv(torch.tanh(self.conv(x))))
        x = torch.tanh(self.square(x.flatten(1)))
        x = torch.tanh(self.shared(torch.tanh(self.shared(x))))
        return self.head(x)


class OutsideNet(nn.Module):
    """Parameters the hooks cannot cover: a raw parameter used in ``forward``, a module with its
    own parameter and no per-sample rule, and a reflect-padded convolution."""

    class Scale(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.gain = nn.Parameter(torch.linspace(0.5, 1.5, n))

        def forward(self, x):
            return x * self.gain

    def __init__(self, num_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect")
        self.offset = nn.Parameter(torch.linspace(-0.3, 0.3, 4 * 5 * 5))
        self.scale = self.Scale(4 * 5 * 5)
        self.fc = nn.Linear(4 * 5 * 5, num_classes)

    def forward(self, x):
        x = torch.tanh(self.conv(x)).flatten(1) + self.offset
        return self.fc(torch.sigmoid(self.scale(x)))


class NoVmapNet(nn.Module):
    """A parameter used in a module whose forward calls ``.item()``: vmap cannot batch it, so the
    hooks method must fall back to the per-sample loop for it."""

    class DataDependent(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.gain = nn.Parameter(torch.linspace(0.5, 1.5, n))

        def forward(self, x):
            factor = 2.0 if x.abs().sum().item() > 0 else 1.0  # data-dependent Python control flow
            return x * self.gain * factor

    def __init__(self, num_classes=3):
        super().__init__()
        self.fc1 = nn.Linear(10, 8)
        self.gate = self.DataDependent(8)
        self.fc2 = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc2(torch.tanh(self.gate(self.fc1(x))))


class PartlyUnusedNet(nn.Module):
    """A Linear called twice, one of whose outputs never reaches the loss."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        used, self.unused = self.fc(x), self.fc(2 * x)
        return self.head(torch.tanh(used))


class AttentionNet(nn.Module):
    """nn.MultiheadAttention: its ``out_proj`` is an nn.Linear whose forward is never called
    (the weights are used functionally), its ``in_proj_weight`` a raw parameter."""

    def __init__(self, dim=6, num_classes=3):
        super().__init__()
        self.attention = nn.MultiheadAttention(dim, 2, batch_first=True)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        h, _ = self.attention(x, x, x, need_weights=False)
        return self.head(torch.tanh(h).mean(1))


class SequenceFirstNet(nn.Module):
    """Layers applied to [T, N, D] (sequence first), as nn.Transformer's default layout."""

    def __init__(self, dim=6, num_classes=3):
        super().__init__()
        self.lin = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):  # x [N, T, D]
        h = self.norm(self.lin(x.transpose(0, 1)))
        return self.head(h.mean(0))


def _images(n, shape, seed=0):
    return torch.rand(n, *shape, generator=torch.Generator().manual_seed(seed))


def _case(name):
    """(model, inputs, labels) of a named test case."""
    torch.manual_seed(0)
    if name == "mlp":
        model = create_model("mlp", 10, (1, 28, 28))  # the paper's MLP, hidden 1000
        x, c = _images(6, (1, 28, 28)), 10
    elif name == "resnet18_cifar":
        model = randomise_norm_layers(create_model("resnet18_cifar", 10, (3, 16, 16), width=8))
        x, c = _images(5, (3, 16, 16)), 10
    elif name == "torchvision_resnet18":
        model = randomise_norm_layers(create_model("resnet18", 10, (3, 32, 32)))
        assert any(isinstance(m, nn.ReLU) and m.inplace for m in model.modules())
        assert any(isinstance(m, nn.MaxPool2d) for m in model.modules())
        x, c = _images(3, (3, 32, 32)), 10
    elif name == "grouped_conv":
        model = randomise_norm_layers(GroupedConvNet())
        x, c = _images(5, (4, 16, 16)), 3
    elif name == "layernorm_sequence":
        model = randomise_norm_layers(SequenceNet())
        x, c = torch.randn(5, 5, 6, generator=torch.Generator().manual_seed(0)), 3
    elif name == "shared_weights":
        model = SharedNet()
        x, c = _images(5, (3, 6, 6)), 3
    elif name == "outside_module":
        model = OutsideNet()
        x, c = _images(5, (2, 5, 5)), 3
    elif name == "partly_unused":
        model = PartlyUnusedNet()
        x, c = torch.randn(5, 4, generator=torch.Generator().manual_seed(0)), 3
    elif name == "multihead_attention":
        model = AttentionNet()
        x, c = torch.randn(4, 5, 6, generator=torch.Generator().manual_seed(0)), 3
    else:
        raise AssertionError(name)
    labels = torch.arange(len(x)) % c
    return model, x, labels


CASES = ["mlp", "resnet18_cifar", "torchvision_resnet18", "grouped_conv", "layernorm_sequence",
         "shared_weights", "outside_module", "partly_unused", "multihead_attention"]


@pytest.mark.filterwarnings("ignore:There is a performance drop")  # vmap over attention
@pytest.mark.parametrize("method", ["hooks", "vmap", "loop"])
@pytest.mark.parametrize("case", CASES)
def test_sum_squared_grads_equals_brute_force(case, method):
    model, x, y = _case(case)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(1))
    expected = brute_force(model, x, y, weights)
    # chunks of 2 samples: several chunks, the last one smaller
    actual = sum_squared_grads(model, x, y, weights, method=method, chunk_size=2)
    assert all(t.dtype == torch.float32 for t in actual.values())
    assert_matches(actual, expected)


def test_hooks_single_chunk_and_unit_weights_on_resnet():
    """One chunk holding all samples, one group of weight 1 (the plain sum of squares)."""
    model, x, y = _case("resnet18_cifar")
    weights = torch.ones(1, len(x))
    assert_matches(sum_squared_grads(model, x, y, weights, chunk_size=64),
                   brute_force(model, x, y, weights))


def spy_fallbacks(monkeypatch) -> dict[str, list]:
    """Record which parameters each fallback gets: ``module`` (vmap over one module's own
    forward), ``model`` (vmap over the whole model) and ``loop``."""
    handed = {"module": [], "model": [], "loop": []}
    real_module, real_model, real_loop = (mnemu.fisher._module_sample_grads, mnemu.fisher._vmap,
                                          mnemu.fisher._loop)

    def module_level(module, names, *args, **kwargs):
        grads = real_module(module, names, *args, **kwargs)
        handed["module"].extend(type(module).__name__ + "." + n for n in names)
        return grads

    def whole_model(model_, params, names, *args, **kwargs):
        handed["model"].extend(names)
        return real_model(model_, params, names, *args, **kwargs)

    def loop(model_, params, *args, **kwargs):
        handed["loop"].extend(params)
        return real_loop(model_, params, *args, **kwargs)

    monkeypatch.setattr(mnemu.fisher, "_module_sample_grads", module_level)
    monkeypatch.setattr(mnemu.fisher, "_vmap", whole_model)
    monkeypatch.setattr(mnemu.fisher, "_loop", loop)
    return handed


def spy_probes(monkeypatch) -> list:
    """Record the modules of each forward over one sample (sorted by name)."""
    probes = []
    real = mnemu.fisher._calls_on

    def probe(model_, x, modules):
        names = {m: n for n, m in model_.named_modules()}
        probes.append(sorted(names[m] for m in modules))
        return real(model_, x, modules)

    monkeypatch.setattr(mnemu.fisher, "_calls_on", probe)
    return probes


def test_unsupported_parameters_take_the_module_level_fallback(monkeypatch):
    model, x, y = _case("outside_module")
    handed = spy_fallbacks(monkeypatch)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(2))
    actual = sum_squared_grads(model, x, y, weights, method="hooks", chunk_size=64)
    assert_matches(actual, brute_force(model, x, y, weights))
    # each module's own forward: the reflect-padded convolution, the raw gain, and the model for
    # the parameter its forward uses directly; the Linear stays with the hooks
    assert sorted(handed["module"]) == ["Conv2d.bias", "Conv2d.weight", "OutsideNet.offset",
                                        "Scale.gain"]
    assert handed["model"] == handed["loop"] == []


class WindowNet(nn.Module):
    """Swin-like window attention: an image's 2x2 windows [N * 4, tokens, D] (sample after
    sample, or, with ``windows_first``, window after window, which mixes the samples' rows) go
    through Linear layers, a LayerNorm and a module with its own bias table and a shared mask
    passed by keyword."""

    class Attention(nn.Module):
        def __init__(self, dim, tokens):
            super().__init__()
            self.qkv = nn.Linear(dim, 3 * dim)
            self.bias_table = nn.Parameter(torch.linspace(-1, 1, tokens * tokens).view(tokens, tokens))
            self.proj = nn.Linear(dim, dim)

        def forward(self, x, mask=None):
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            logits = q @ k.transpose(-1, -2) + self.bias_table
            if mask is not None:  # [windows, T, T], the same for every sample
                logits = (logits.view(-1, mask.shape[0], *logits.shape[1:]) + mask).flatten(0, 1)
            return self.proj(logits.softmax(-1) @ v)

    def __init__(self, windows_first=False, dim=6, num_classes=3):
        super().__init__()
        self.windows_first = windows_first
        self.embed = nn.Conv2d(2, dim, 1)
        self.norm = nn.LayerNorm(dim)
        self.attention = self.Attention(dim, 4)
        self.register_buffer("mask", torch.linspace(-0.5, 0.5, 4 * 4 * 4).view(4, 4, 4))
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):  # [N, 2, 4, 4] -> 2x2 windows of 2x2 tokens
        n = x.shape[0]
        t = self.embed(x).view(n, -1, 2, 2, 2, 2).permute(0, 2, 4, 3, 5, 1)  # [N, wy, wx, ty, tx, D]
        t = t.reshape(n, 4, 4, -1)
        if self.windows_first:
            t = t.transpose(0, 1)
        t = self.attention(self.norm(t.reshape(-1, 4, t.shape[-1])), mask=self.mask)
        if self.windows_first:
            t = t.view(4, n, 4, -1).transpose(0, 1)
        return self.head(torch.tanh(t.reshape(n, 16, -1)).mean(1))


def test_windows_of_each_sample_take_the_module_level_path(monkeypatch):
    """Windows x samples rows, sample after sample: the Linear and LayerNorm rules take a
    sample's windows for positions, the bias table its module's own forward under vmap; the
    whole model is not rerun."""
    torch.manual_seed(0)
    model = randomise_norm_layers(WindowNet())
    x, y = _images(5, (2, 4, 4), seed=8), torch.arange(5) % 3
    handed = spy_fallbacks(monkeypatch)
    probes = spy_probes(monkeypatch)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(9))
    actual = sum_squared_grads(model, x, y, weights, chunk_size=2)  # chunks of 2, 2 and 1
    assert_matches(actual, brute_force(model, x, y, weights))
    assert handed == {"module": ["Attention.bias_table"] * 3, "model": [], "loop": []}
    # the first chunk's forward over one sample shows the rows; the others have its shapes
    assert probes == [["attention", "attention.proj", "attention.qkv", "norm"]]


def test_windows_that_mix_the_samples_take_the_whole_model_fallback(monkeypatch):
    """Window after window, the first rows are not the first sample's: the forward over that
    sample alone shows it, and the parameters that see those rows go to the whole model."""
    torch.manual_seed(0)
    model = randomise_norm_layers(WindowNet(windows_first=True))
    x, y = _images(5, (2, 4, 4), seed=8), torch.arange(5) % 3
    handed = spy_fallbacks(monkeypatch)
    probes = spy_probes(monkeypatch)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(9))
    actual = sum_squared_grads(model, x, y, weights, chunk_size=3)
    assert_matches(actual, brute_force(model, x, y, weights))
    assert handed["module"] == []
    assert len(probes) == 1  # not tried again on the second chunk
    assert sorted(handed["model"]) == sorted(["attention.bias_table", "attention.proj.bias",
                                              "attention.proj.weight", "attention.qkv.bias",
                                              "attention.qkv.weight", "norm.bias",
                                              "norm.weight"] * 2)


class MixedCallsNet(nn.Module):
    """A Linear called first on [N, D] and then on [N * 2, D] (two rows per sample)."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):  # [N, 2, 4]
        first = torch.tanh(self.lin(x[:, 0]))
        rows = torch.tanh(self.lin(x.reshape(-1, 4))).view(len(x), 2, 4)
        return self.head(first + rows.mean(1))


def test_a_supported_module_called_with_and_without_rows_per_sample(monkeypatch):
    """Its sample-major call kept no output to compare with the forward over one sample: the
    whole-model fallback takes it, exactly."""
    torch.manual_seed(0)
    model = MixedCallsNet()
    x, y = torch.randn(5, 2, 4, generator=torch.Generator().manual_seed(14)), torch.arange(5) % 3
    handed = spy_fallbacks(monkeypatch)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(15))
    actual = sum_squared_grads(model, x, y, weights, chunk_size=5)
    assert_matches(actual, brute_force(model, x, y, weights))
    assert handed == {"module": [], "model": ["lin.weight", "lin.bias"], "loop": []}


class InPlaceNet(nn.Module):
    """A module's input changed in place after the call, which autograd allows (what it saves
    is exp's output, not the input): the input kept for the module no longer holds what the
    module saw."""

    class ExpScale(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.gain = nn.Parameter(torch.linspace(0.5, 1.5, n))

        def forward(self, x):
            return x.exp() * self.gain

    def __init__(self, num_classes=3):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = self.ExpScale(4)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        h = self.fc(x)
        out = self.scale(h)
        h.mul_(2.0)
        return self.head(torch.tanh(out) + h)


class SharedOutsideNet(nn.Module):
    """A module's parameter that the model's own forward uses as well (weights tied through a
    functional use): the module's forward alone does not give its whole gradient."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.scale = OutsideNet.Scale(4)
        self.head = nn.Linear(4, num_classes)

    def forward(self, x):
        h = torch.tanh(self.fc(x))
        return self.head(torch.tanh(self.scale(h)) + h * self.scale.gain.flip(0))


def test_parameters_also_used_outside_their_module_take_the_whole_model_fallback(monkeypatch):
    torch.manual_seed(0)
    model = SharedOutsideNet()
    x, y = torch.randn(5, 4, generator=torch.Generator().manual_seed(12)), torch.arange(5) % 3
    handed = spy_fallbacks(monkeypatch)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(13))
    actual = sum_squared_grads(model, x, y, weights, chunk_size=5)
    assert_matches(actual, brute_force(model, x, y, weights))
    assert handed["model"] == ["scale.gain"]


def test_inputs_changed_in_place_take_the_whole_model_fallback(monkeypatch):
    torch.manual_seed(0)
    model = InPlaceNet()
    x, y = torch.randn(5, 4, generator=torch.Generator().manual_seed(10)), torch.arange(5) % 3
    handed = spy_fallbacks(monkeypatch)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(11))
    actual = sum_squared_grads(model, x, y, weights, chunk_size=5)
    assert_matches(actual, brute_force(model, x, y, weights))
    assert handed == {"module": [], "model": ["scale.gain"], "loop": []}


@pytest.mark.xfail(strict=True, reason="known limitation: the hooks take a module's first "
                   "dimension for the sample one; with as many positions as samples in a "
                   "sequence-first layout they cannot tell (use method='vmap' for such models)")
def test_hooks_on_sequence_first_layers_with_as_many_positions_as_samples():
    torch.manual_seed(0)
    model = randomise_norm_layers(SequenceFirstNet())
    x = torch.randn(5, 5, 6, generator=torch.Generator().manual_seed(0))  # N = T = 5
    y = torch.arange(5) % 3
    weights = torch.ones(1, 5)
    assert_matches(sum_squared_grads(model, x, y, weights, method="hooks"),
                   brute_force(model, x, y, weights))


def test_sequence_first_layers_with_other_lengths_fall_back():
    """With T != N the first dimension gives the layout away and the hooks hand them over."""
    torch.manual_seed(0)
    model = randomise_norm_layers(SequenceFirstNet())
    x = torch.randn(4, 7, 6, generator=torch.Generator().manual_seed(0))
    y = torch.arange(4) % 3
    weights = torch.ones(1, 4)
    assert_matches(sum_squared_grads(model, x, y, weights, method="hooks"),
                   brute_force(model, x, y, weights))


def test_falls_back_to_loop_when_vmap_cannot_batch(monkeypatch):
    torch.manual_seed(0)
    model = NoVmapNet()
    x = torch.randn(4, 10, generator=torch.Generator().manual_seed(3))
    y = torch.tensor([0, 1, 2, 1])
    handed = spy_fallbacks(monkeypatch)
    weights = torch.rand(1, len(x), generator=torch.Generator().manual_seed(4))
    actual = sum_squared_grads(model, x, y, weights, method="hooks")
    assert handed == {"module": [], "model": ["gate.gain"], "loop": ["gate.gain"]}
    assert_matches(actual, brute_force(model, x, y, weights))


def test_frozen_parameters_counted_and_state_restored():
    model, x, y = _case("mlp")
    model.fc1.weight.requires_grad_(False)
    model.train()
    weights = torch.ones(1, len(x))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    actual = sum_squared_grads(model, x, y, weights)
    assert model.training  # mode restored
    assert not model.fc1.weight.requires_grad and model.fc1.bias.requires_grad  # flags restored
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert actual["fc1.weight"].abs().max() > 0  # frozen, still in the Fisher
    assert_matches(actual, brute_force(model, x, y, weights))


def test_eval_mode_is_used_for_batchnorm():
    """The Fisher uses running statistics, so the same samples give the same result whether the
    model came in train mode or eval mode, and the running statistics are not updated."""
    model, x, y = _case("resnet18_cifar")
    weights = torch.ones(1, len(x))
    model.eval()
    in_eval = sum_squared_grads(model, x, y, weights)
    model.train()
    stats = model.bn1.running_mean.clone()
    in_train = sum_squared_grads(model, x, y, weights)
    assert torch.equal(model.bn1.running_mean, stats)
    for name in in_eval:
        torch.testing.assert_close(in_train[name], in_eval[name], rtol=1e-6, atol=0)


def test_sum_squared_grads_rejects_bad_arguments():
    model, x, y = _case("shared_weights")
    with pytest.raises(MnemuError, match="unknown Fisher method"):
        sum_squared_grads(model, x, y, torch.ones(1, len(x)), method="magic")
    with pytest.raises(MnemuError, match="disagree in size"):
        sum_squared_grads(model, x, y, torch.ones(1, len(x) + 1))
    with pytest.raises(MnemuError, match="disagree in size"):
        sum_squared_grads(model, x, y[:-1], torch.ones(1, len(x)))


# --- class_fisher: Eq. 6 weighting ------------------------------------------------------------


@pytest.mark.parametrize("method", ["hooks", "vmap"])
def test_class_fisher_is_mean_over_classes_of_per_class_mean(method):
    """Two samples of class 0, one of class 1, one of class 2: f_{0,1} = (mean(g0^2, g1^2) + g2^2) / 2
    (a sample-weighted mean would give (g0^2 + g1^2 + g2^2) / 3)."""
    torch.manual_seed(0)
    model = create_model("mlp", 3, (1, 4, 4), hidden=16)
    x = _images(4, (1, 4, 4), seed=5)
    y = torch.tensor([0, 0, 1, 2])
    per_sample = brute_force(model, x, y, torch.eye(4))  # group n = sample n alone
    f_01, f_2 = class_fisher(model, x, y, [[0, 1], [2]], method=method)
    for name, s in per_sample.items():
        expected_01 = 0.5 * (0.5 * (s[0] + s[1]) + s[2])
        assert_close_rel(f_01[name], expected_01, name)
        assert_close_rel(f_2[name], s[3], name)
        sample_mean = (s[0] + s[1] + s[2]) / 3
        assert not torch.allclose(f_01[name].double(), sample_mean, rtol=1e-3), name


def test_class_fisher_of_one_code_per_class_is_its_squared_gradient():
    torch.manual_seed(0)
    model = create_model("mlp", 4, (1, 4, 4), hidden=16)
    codes = mnemu.make_codes(4, (1, 4, 4), seed=0)
    labels = torch.arange(4)
    per_code = brute_force(model, codes, labels, torch.eye(4))
    f_forget, f_remain = class_fisher(model, codes, labels, [[1], [0, 2, 3]])
    for name, s in per_code.items():
        assert_close_rel(f_forget[name], s[1], name)
        assert_close_rel(f_remain[name], (s[0] + s[2] + s[3]) / 3, name)


def test_class_fisher_rejects_empty_sets_and_missing_classes():
    model = create_model("mlp", 3, (1, 4, 4), hidden=8)
    x, y = _images(3, (1, 4, 4)), torch.tensor([0, 0, 1])
    with pytest.raises(MnemuError, match="empty"):
        class_fisher(model, x, y, [[0], []])
    with pytest.raises(MnemuError, match="class 2 has no samples"):
        class_fisher(model, x, y, [[0], [2]])


# --- exact layer types only: subclasses and foreign parameters take the exact fallback ---------


class SubclassNet(nn.Module):
    """Subclasses of supported layers that compute something else with the same parameters (as
    timm's BatchNormAct2d, StdConv2d and ScaledStdConv2d do), and an old-style weight-normed
    Linear whose ``weight`` is computed from two other parameters."""

    class NormAct(nn.BatchNorm2d):  # the activation after the norm changes the output gradient
        def forward(self, x):
            return torch.tanh(super().forward(x))

    class StandardisedConv(nn.Conv2d):  # forward inherited: only a helper differs
        def _conv_forward(self, x, weight, bias):
            weight = (weight - weight.mean((1, 2, 3), keepdim=True)) / weight.std((1, 2, 3), keepdim=True)
            return super()._conv_forward(x, weight, bias)

    class GainedLinear(nn.Linear):  # a parameter of its own besides weight and bias
        def __init__(self, *args):
            super().__init__(*args)
            self.gain = nn.Parameter(torch.linspace(0.5, 1.5, self.out_features))

        def forward(self, x):
            return super().forward(x) * self.gain

    def __init__(self, num_classes=3):
        super().__init__()
        self.conv = self.StandardisedConv(2, 4, 3, padding=1)
        self.norm = self.NormAct(4)
        self.hidden = self.GainedLinear(4 * 5 * 5, 6)
        with pytest.warns(FutureWarning):  # deprecated, still in use
            self.normed = torch.nn.utils.weight_norm(nn.Linear(6, 6))
        self.head = nn.Linear(6, num_classes)

    def forward(self, x):
        x = self.norm(self.conv(x)).flatten(1)
        return self.head(torch.tanh(self.normed(torch.tanh(self.hidden(x)))))


def test_subclasses_and_foreign_parameters_take_the_exact_fallback(monkeypatch):
    torch.manual_seed(0)
    model = randomise_norm_layers(SubclassNet())
    x, y = _images(5, (2, 5, 5), seed=6), torch.arange(5) % 3
    handed = spy_fallbacks(monkeypatch)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(7))
    actual = sum_squared_grads(model, x, y, weights, chunk_size=3)
    assert_matches(actual, brute_force(model, x, y, weights))
    # each subclass through its own forward; the weight-normed Linear's bias is still the
    # hooks' (its rule holds for it), the head too
    assert sorted(handed["module"]) == sorted(
        ["StandardisedConv.weight", "StandardisedConv.bias", "NormAct.weight", "NormAct.bias",
         "GainedLinear.weight", "GainedLinear.bias", "GainedLinear.gain",
         "Linear.weight_g", "Linear.weight_v"] * 2)  # two chunks
    assert handed["model"] == handed["loop"] == []


# --- library models: timm's layer zoo and the paper's models -----------------------------------


def _perturb_vanishing_parameters(model: nn.Module, seed: int = 0) -> nn.Module:
    """Zero-initialised parameters (biases, skip-init gains, layer scales of 1e-6) set to O(1)
    values, so that no parameter's Fisher is trivially zero or negligible."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().max() < 1e-3:
                p.copy_(0.5 + 0.5 * torch.rand(p.shape, generator=generator))
    return model


def _resnetv2_bit_small(num_classes):
    """resnetv2_50x1_bit's layers (StdConv2d with eps 1e-8, GroupNormAct) one block per stage:
    the 50-layer net at random init is so ill-conditioned that the float32 loop itself is 8% off
    its float64 value."""
    from functools import partial

    from timm.layers import StdConv2d
    from timm.models.resnetv2 import ResNetV2

    return ResNetV2(layers=(1, 1, 1, 1), num_classes=num_classes, stem_type="fixed",
                    conv_layer=partial(StdConv2d, eps=1e-8))


def _library_model(name):
    if name.startswith("timm:"):
        timm = pytest.importorskip("timm")
        options = {"img_size": 32} if "vit" in name or "swin" in name else {}
        model = timm.create_model(name.removeprefix("timm:"), pretrained=False, num_classes=3,
                                  **options)
    elif name == "resnetv2_bit_small":
        pytest.importorskip("timm")
        model = _resnetv2_bit_small(3)
    else:
        model = create_model(name, 3, (3, 32, 32))
    return _perturb_vanishing_parameters(randomise_norm_layers(model))


def assert_fisher_equal(actual: dict, expected: dict, rtol: float) -> None:
    """Every parameter close to the reference relative to its largest entry; one the reference
    leaves all zero (unused by these inputs) must be all zero too."""
    assert set(actual) == set(expected)
    for name, ref in expected.items():
        if ref.abs().max() == 0:
            assert actual[name].abs().max() == 0, name
        else:
            assert actual[name].abs().max() > 0, f"{name}: all zero, the reference is not"
            assert_close_rel(actual[name], ref, name, rtol)
    used = sum(int(ref.abs().max() > 0) for ref in expected.values())
    assert used >= 0.95 * len(expected), "most parameters should have a non-zero Fisher"


LIBRARY_MODELS = [
    "timm:efficientnet_b0",  # BatchNormAct2d
    "resnetv2_bit_small",  # StdConv2d, GroupNormAct
    "timm:nf_resnet26",  # ScaledStdConv2d (its gain)
    "timm:convnext_atto",  # LayerNorm2d, timm LayerNorm, layer scale
    "timm:vit_tiny_patch16_224",  # timm LayerNorm, attention
    "timm:swin_tiny_patch4_window7_224",  # window attention
    "resnext50_32x4d",  # the paper's, torchvision's grouped convolutions
]


@pytest.mark.filterwarnings("ignore:There is a performance drop")  # vmap over attention
@pytest.mark.parametrize("name", LIBRARY_MODELS)
def test_hooks_equal_the_loop_on_library_models(name):
    torch.manual_seed(0)
    model = _library_model(name)
    x, y = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0)), torch.arange(3)
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(1))
    assert_fisher_equal(sum_squared_grads(model, x, y, weights, chunk_size=3),
                        brute_force(model, x, y, weights), rtol=1e-4)


@pytest.mark.parametrize("name", ["resnet18", "resnext50_32x4d"])
def test_paper_models_need_no_fallback(name, monkeypatch):
    """All of a torchvision model's layers are torch's own: the hooks alone cover them."""
    def no_fallback(*args, **kwargs):
        raise AssertionError("fallback used")

    monkeypatch.setattr(mnemu.fisher, "_vmap", no_fallback)
    monkeypatch.setattr(mnemu.fisher, "_loop", no_fallback)
    model = create_model(name, 3, (3, 32, 32))
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    sum_squared_grads(model, x, torch.arange(2), torch.ones(1, 2))


# --- many row blocks, both convolution paths, on a Fisher with few zero entries -----------------


@pytest.mark.parametrize("square_sum, per_row", [("_blocked_square_sum", 3 * 2 * 5),  # n*b*k
                                                   ("_sample_by_sample_square_sum", 3 * 2 * 5),  # (G+1)*b*k
                                                   ("_few_samples_square_sum", 2 * 5)])  # b*k
def test_square_sums_over_many_blocks(square_sum, per_row):
    """acc[g, b, o, k] += sum_n w[g, n] * (left[n, b, o] @ right[n, b, :, k])^2 with a scratch
    of 2 rows: 7 blocks, the last one shorter; a sample weighted in no group, one in a single
    group; the reference is an einsum in float64."""
    generator = torch.Generator().manual_seed(8)
    left, right = torch.randn(3, 2, 13, 4, generator=generator), torch.randn(3, 2, 4, 5, generator=generator)
    w = torch.rand(2, 3, generator=generator)
    w[:, 1] = 0.0
    w[1, 2] = 0.0
    acc = torch.ones(2, 2, 13, 5)  # adds to what is there
    getattr(mnemu.fisher, square_sum)(left, right, w, acc, torch.empty(2 * per_row + 7))
    products = torch.einsum("nbol,nblk->nbok", left.double(), right.double())
    expected = 1 + torch.einsum("gn,nbok->gbok", w.double(), products.square())
    assert_close_rel(acc, expected, "acc")


class SmoothNet(nn.Module):
    """Smooth activations only (no ReLU, no pooling) and dense inputs, so that almost every entry
    of the Fisher is non-zero: a convolution big enough for the grouped-convolution path, a small
    grouped one, a depthwise one, and a Linear on token sequences."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 3, padding=1)  # 16x16 = 256 positions
        self.conv2 = nn.Conv2d(12, 12, 3, stride=2, padding=1, groups=3, bias=False)  # 8x8
        self.depthwise = nn.Conv2d(12, 12, 3, padding=1, groups=12)
        self.tokens = nn.Linear(12, 10)  # on 64 positions as a sequence
        self.head = nn.Linear(10, num_classes)

    def forward(self, x):
        x = torch.tanh(self.conv1(x))
        x = torch.tanh(self.depthwise(torch.tanh(self.conv2(x))))
        x = F.gelu(self.tokens(x.flatten(2).transpose(1, 2)))  # [N, 64, 12] -> [N, 64, 10]
        return self.head(x.mean(1))


#: Row blocks each square-sum method takes on SmoothNet with a 150-element scratch (2 groups, 6
#: samples): the sequence Linear (10 rows of 12) always; when unfolded the convolutions too (12
#: rows of 27, 3 groups of 4 rows of 36, the depthwise one's single row per group).
EXPECTED_BLOCKS = {
    # n * b * k elements a row: 2 rows of the Linear a block, the convolutions a row at a time
    ("_blocked_square_sum", "grouped"): [5],
    ("_blocked_square_sum", "unfold"): [1, 4, 5, 12],
    # (groups + 1) * b * k elements a row: 4 rows of the Linear a block
    ("_sample_by_sample_square_sum", "grouped"): [3],
    ("_sample_by_sample_square_sum", "unfold"): [1, 3, 4, 12],
    # b * k elements a row: the Linear in one block, 5 rows of the ungrouped convolution
    ("_few_samples_square_sum", "grouped"): [1],
    ("_few_samples_square_sum", "unfold"): [1, 1, 3, 4],
}


@pytest.mark.parametrize("square_sum, conv_path", list(EXPECTED_BLOCKS))
def test_hooks_over_many_row_blocks(square_sum, conv_path, monkeypatch):
    """A scratch of a few rows makes every product take many blocks; both CPU paths for
    convolutions (samples as groups, unfolded inputs) and the three ways of summing squared
    products (the GPU's batched blocks, the CPU's sample by sample into transposed sums, and
    into the sums themselves for few samples) are forced in turn."""
    monkeypatch.setattr(mnemu.fisher, "BLOCK_ELEMENTS", {"cpu": 150, "cuda": 150})
    monkeypatch.setattr(mnemu.fisher, "GROUPED_CONV_MIN_POSITIONS", 0 if conv_path == "grouped" else 10**9)
    # the grouped path a few samples a call: conv1 (324 weights) 4 + 2, conv2 (432, 3 groups)
    # 3 + 3, the depthwise one (108) all 6 at once
    monkeypatch.setattr(mnemu.fisher, "GROUPED_CONV_ELEMENTS", 1300)
    samples_a_call = {}  # weights of a convolution -> samples of each of its grouped calls
    accumulate = mnemu.fisher._accumulate

    def count_samples(acc, w, per_sample, owned=False):
        if per_sample[0].numel() in (324, 432, 108) and per_sample.dim() == 2:
            samples_a_call.setdefault(per_sample[0].numel(), []).append(len(per_sample))
        return accumulate(acc, w, per_sample, owned)

    monkeypatch.setattr(mnemu.fisher, "_accumulate", count_samples)
    blocks = []
    real = getattr(mnemu.fisher, square_sum)

    def count_blocks(left, right, w, acc, scratch):
        n, b, rows, _ = left.shape
        per_row = b * right.shape[-1] * {"_blocked_square_sum": n, "_few_samples_square_sum": 1}.get(
            square_sum, w.shape[0] + 1)
        blocks.append(-(-rows // max(1, scratch.numel() // per_row)))
        return real(left, right, w, acc, scratch)

    monkeypatch.setattr(mnemu.fisher, "_square_sum", count_blocks)
    torch.manual_seed(0)
    model = SmoothNet()
    x, y = torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(9)), torch.arange(6) % 3
    weights = torch.rand(2, len(x), generator=torch.Generator().manual_seed(10))
    weights[:, 4] = 0.0  # a sample in no group: skipped, not mistaken for another
    weights[0, 1] = 0.0  # a sample in one group only
    expected = brute_force(model, x, y, weights)
    nonzero = sum(int((t != 0).sum()) for t in expected.values()) / sum(t.numel() for t in expected.values())
    assert nonzero > 0.99  # a block that read the wrong rows could not hide behind zeros
    assert_matches(sum_squared_grads(model, x, y, weights, chunk_size=6), expected)
    assert sorted(blocks) == EXPECTED_BLOCKS[square_sum, conv_path]
    assert samples_a_call == ({324: [4, 2], 432: [3, 3], 108: [6]} if conv_path == "grouped"
                              else {})


# --- streaming a data set -----------------------------------------------------------------------


class ListImages(torch.utils.data.Dataset):
    """A plain data set of ``(image, label)`` pairs without batch access (as FileImages)."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        return self.images[index], int(self.labels[index])


@pytest.mark.parametrize("kind", ["tensor_images", "per_item"])
def test_class_fisher_streams_a_data_set(kind):
    """A data set read 3 samples at a time gives the Fisher of its samples held whole."""
    from mnemu.data import TensorImages

    torch.manual_seed(0)
    model = create_model("mlp", 4, (1, 6, 6), hidden=12)
    generator = torch.Generator().manual_seed(11)
    pixels = torch.randint(0, 256, (10, 1, 6, 6), dtype=torch.uint8, generator=generator)
    labels = torch.tensor([0, 1, 2, 3, 0, 0, 2, 1, 3, 3])
    images = (pixels.float() / 255 - 0.4) / 0.3  # normalised by hand, as TensorImages does
    dataset = (TensorImages(pixels, labels, (0.4,), (0.3,)) if kind == "tensor_images"
               else ListImages(images, labels))
    sets = [[1], [0, 2, 3]]
    streamed = class_fisher(model, dataset, None, sets, chunk_size=3)
    held = class_fisher(model, images, labels, sets)
    per_sample = brute_force(model, images, labels, torch.eye(10))
    for k, classes in enumerate(sets):
        for name, s in per_sample.items():
            expected = sum(s[labels == c].mean(0) for c in classes) / len(classes)
            assert_close_rel(held[k][name], expected, name)
            assert_close_rel(streamed[k][name], expected, name)


def test_streaming_rejects_labels_that_are_not_the_data_sets():
    model = create_model("mlp", 3, (1, 4, 4), hidden=8)
    dataset = ListImages(_images(4, (1, 4, 4)), torch.tensor([0, 1, 2, 0]))
    with pytest.raises(MnemuError, match="labels from sample 2 on differ"):
        class_fisher(model, dataset, torch.tensor([0, 1, 0, 2]), [[0], [1, 2]], chunk_size=2)
    with pytest.raises(MnemuError, match="no .labels"):
        class_fisher(model, _images(4, (1, 4, 4)), None, [[0], [1, 2]])
