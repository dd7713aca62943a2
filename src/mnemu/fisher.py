"""Diagonal Fisher information from per-sample squared gradients (paper, Eq. 3-4 and 6).

Alg. 2 needs, for each parameter, a weighted sum over samples of the squared per-sample gradient
of the loss: ``S[g] = sum_n W[g, n] * (d loss_n / d theta)^2`` for a few groups g (forget classes,
remaining classes). The model is in eval mode, so samples do not interact and one batched pass can
give every per-sample gradient. Three ways to get them, all exact:

``hooks`` (default)
    one batched forward, then one backward that computes input gradients only; hooks on torch's
    own Linear, Conv2d and normalisation layers (those exact types: a subclass may compute
    something else) rebuild each sample's weight gradient from the layer's input and output
    gradient, square it and add it up, a block at a time so that the per-sample gradients of a
    whole layer never sit in memory (for a linear layer with one input vector per sample,
    ``(W * G**2).T @ A**2`` needs no per-sample gradient at all). Every other parameter (those of
    subclasses such as timm's BatchNormAct2d or StdConv2d, of modules without a rule, and of
    modules whose first dimension is not the sample, as Swin's window attention with windows x
    samples) gets ``vmap`` over its own module's forward, on the inputs and output gradient that
    module saw, once a forward over the first sample alone has shown that its rows split sample
    by sample (a Linear or LayerNorm then takes a sample's rows for positions). What even that
    cannot settle (an output that is not a tensor, rows that mix samples, a parameter no module's
    forward uses) goes to ``vmap`` over the whole model, or to ``loop`` if ``vmap`` cannot batch it.
``vmap``
    ``torch.func.vmap(grad(...))`` over samples.
``loop``
    one batch-1 backward per sample: the authors' way, and the reference the tests compare to.

``benchmarks/forget_time.py`` measures them and the whole forget step: on a 2-core CPU ``hooks``
beat the loop by about 2x and BackPACK's ``SumGradSquared`` by about 10x, and Opacus does not take
BatchNorm layers at all, so the hand-written hooks earn their place.

The hooks take the first dimension of a supported layer's input for the sample dimension when it
equals the number of samples. A layer that sees sequence-first input ``[T, N, D]`` is caught when
T differs from it (the forward over one sample then shows that its rows do not split by sample),
but not when T happens to equal it; nor is a supported layer's parameter that is also used
outside its module's forward (weights tied through a functional call). Use ``method="vmap"`` for
such models. Parameters without a rule are safe from both: each module's rows are checked, and
its per-sample gradients must add up to the batched gradient.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._pytree import tree_flatten, tree_leaves, tree_map, tree_unflatten
from torch.utils.data import Dataset

from .data import loader
from .errors import MnemuError
from .models import eval_mode

METHODS = ("hooks", "vmap", "loop")
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: Samples: a tensor ``[N, ...]`` held whole, or a data set of ``(input, label)`` read a chunk at a
#: time in its own order (never shuffled), for data too big for memory.
Samples = torch.Tensor | Dataset

#: Elements of the scratch block that holds per-sample gradients at once: it should sit in cache
#: on a CPU; a GPU prefers bigger blocks.
BLOCK_ELEMENTS = {"cpu": 1 << 23, "cuda": 1 << 26}
#: On a CPU, a convolution whose output has at least this many positions gets its per-sample
#: gradients from one grouped weight-gradient convolution (samples as groups) instead of unfolded
#: inputs: measured faster there on 2 cores (benchmarks/forget_time.py), slower below.
GROUPED_CONV_MIN_POSITIONS = 256
#: Per-sample gradient elements one grouped weight-gradient convolution forms at a time (about
#: 2.4 MB): ResNet-18's 16x16 stage 4 samples a call, its 32x32 stage 16. Against all 64 of a
#: chunk at once, on 2 cores: a 16x16 layer alone 51 against 95 ms, a 32x32 one 45 against 58;
#: inside the Fisher pass over 64 codes the 8 layers on this path took 504 and 448 ms against 625
#: and 572 (two processes, the two ways alternating), with half the page faults.
GROUPED_CONV_ELEMENTS = 600_000
#: On a CPU, a chunk of at most this many samples adds each one's squared gradient straight into
#: the sums (:func:`_few_samples_square_sum`): the transposed sums of
#: :func:`_sample_by_sample_square_sum` are faster per sample but cost a zeroing and a transposed
#: add per layer, more than they save over a few samples (ResNet-18's 4x4 stage, 10 samples:
#: 10 against 19 ms per layer; ten-class data sets have ten codes).
FEW_SAMPLES = 10


def default_chunk_size(sample_numel: int, device: torch.device) -> int:
    """Samples per batched pass: 64 on a GPU; on a CPU fewer for large inputs, whose activations
    would otherwise be fresh, page-faulting allocations (measured: 8 beats 32 at 224x224)."""
    if device.type != "cpu":
        return 64
    return max(1, min(64, (1 << 20) // max(1, sample_numel)))


def cross_entropy_per_sample(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, labels, reduction="none")


# ---------------------------------------------------------------------------------------------
# Per-sample gradients of supported layers from the layer input ``a`` and output gradient ``g``:
# {local parameter name: [N, *parameter.shape]}. Used as they are for small parameters and for
# modules called more than once per forward (their per-sample gradients add up before squaring).


def _linear_grads(module: nn.Linear, a: torch.Tensor, g: torch.Tensor) -> dict:
    if a.dim() == 2:
        grads = {"weight": g.unsqueeze(2) * a.unsqueeze(1), "bias": g.clone()}
    else:  # a sequence per sample (transformers): sum over its positions
        a, g = a.flatten(1, -2), g.flatten(1, -2)
        grads = {"weight": torch.bmm(g.transpose(1, 2), a), "bias": g.sum(1)}
    if module.bias is None:
        del grads["bias"]
    return grads


def _conv_columns(module: nn.Conv2d, a: torch.Tensor, g: torch.Tensor):
    """Unfolded input [N, groups, L, Cin/groups*kh*kw] and output gradient [N, groups, Cout/groups, L]."""
    n, groups = a.shape[0], module.groups
    cols = F.unfold(a, module.kernel_size, module.dilation, module.padding, module.stride)
    positions = cols.shape[-1]
    return (cols.view(n, groups, -1, positions).transpose(-1, -2),
            g.reshape(n, groups, -1, positions))


def _conv2d_grads(module: nn.Conv2d, a: torch.Tensor, g: torch.Tensor) -> dict:
    cols, go = _conv_columns(module, a, g)
    grads = {"weight": torch.matmul(go, cols).reshape(a.shape[0], *module.weight.shape)}
    if module.bias is not None:
        grads["bias"] = g.flatten(2).sum(-1)
    return grads


def _affine_grads(module: nn.Module, x_hat: torch.Tensor, g: torch.Tensor, reduce) -> dict:
    """Affine normalisation: weight <- sum(g * x_hat), bias <- sum(g), summed by ``reduce``."""
    grads = {}
    if getattr(module, "weight", None) is not None:
        grads["weight"] = reduce(g * x_hat)
    if getattr(module, "bias", None) is not None:
        grads["bias"] = reduce(g.clone())
    return grads


def _over_positions(t: torch.Tensor) -> torch.Tensor:
    """[N, C, *positions] -> [N, C] (channel-first norms)."""
    return t.flatten(2).sum(-1) if t.dim() > 2 else t


def _batchnorm_grads(module: nn.modules.batchnorm._BatchNorm, a, g) -> dict:
    # With running statistics x_hat = (a - mean) / std per channel, so sum(g * x_hat) over the
    # positions is (sum(g * a) - mean * sum(g)) / std: one pass, no normalised copy of the input.
    g_flat = g.flatten(2) if g.dim() > 2 else g.unsqueeze(2)
    a_flat = a.flatten(2) if a.dim() > 2 else a.unsqueeze(2)
    sum_g = g_flat.sum(-1)
    grads = {}
    if module.weight is not None:
        std = (module.running_var + module.eps).sqrt()
        grads["weight"] = ((g_flat * a_flat).sum(-1) - module.running_mean * sum_g) / std
    if module.bias is not None:
        grads["bias"] = sum_g
    return grads


def _groupnorm_grads(module: nn.GroupNorm, a, g) -> dict:
    x_hat = F.group_norm(a, module.num_groups, eps=module.eps)
    return _affine_grads(module, x_hat, g, _over_positions)


def _layernorm_grads(module: nn.LayerNorm, a, g) -> dict:
    x_hat = F.layer_norm(a, module.normalized_shape, eps=module.eps)
    k = len(module.normalized_shape)

    def over_leading(t):  # [N, *positions, *normalized_shape] -> [N, *normalized_shape]
        return t.flatten(1, t.dim() - k - 1).sum(1) if t.dim() - k > 1 else t

    return _affine_grads(module, x_hat, g, over_leading)


#: The rules, by the exact module type each was derived for. Not ``isinstance``: a subclass may
#: compute something else with the same parameters (timm's BatchNormAct2d adds an activation after
#: the norm, StdConv2d standardises its weight, ScaledStdConv2d adds a ``gain``), and it may do so
#: without overriding ``forward`` (a helper method, a ``weight`` property), so no inherited type is
#: trusted; its parameters take the exact fallback.
_RULES = {
    nn.Linear: _linear_grads,
    nn.Conv2d: _conv2d_grads,
    nn.BatchNorm1d: _batchnorm_grads,
    nn.BatchNorm2d: _batchnorm_grads,
    nn.BatchNorm3d: _batchnorm_grads,
    nn.LayerNorm: _layernorm_grads,
    nn.GroupNorm: _groupnorm_grads,
}
#: Parameters a rule returns a gradient for (when the module has them): only these are covered.
_RULE_PARAMETERS = ("weight", "bias")


def _per_sample_rule(module: nn.Module):
    """The per-sample gradient rule for ``module``, or None if its parameters need the fallback."""
    rule = _RULES.get(type(module))
    if rule is None or module._forward_hooks:  # another forward hook may replace the output
        return None
    if rule is _conv2d_grads and (module.padding_mode != "zeros" or isinstance(module.padding, str)):
        return None
    if rule is _batchnorm_grads and module.running_mean is None:
        return None  # batch statistics: samples interact (eval mode with running ones is the method)
    return rule


def _rule_parameters(module: nn.Module) -> dict[str, nn.Parameter]:
    """The module's own parameters that its rule returns: ``weight`` and ``bias`` when they are
    the parameters themselves (``torch.nn.utils.weight_norm`` makes ``weight`` a tensor computed
    from two other parameters, which the rule knows nothing about)."""
    own = dict(module.named_parameters(recurse=False))
    return {local: own[local] for local in _RULE_PARAMETERS
            if local in own and getattr(module, local) is own[local]}


# ---------------------------------------------------------------------------------------------
# Weighted sums of squares straight from a layer's input and output gradient (single-call modules).


def _accumulate(acc: torch.Tensor, w: torch.Tensor, per_sample: torch.Tensor,
                owned: bool = False) -> None:
    """acc[g] += sum_n w[g, n] * per_sample[n]**2; squares in place when the caller owns the
    tensor (autograd and vmap may hand out gradients that share storage)."""
    squared = per_sample.square_() if owned else per_sample.square()
    acc.view(acc.shape[0], -1).addmm_(w, squared.reshape(squared.shape[0], -1))


def _row_blocks(rows: int, per_row: int, scratch: torch.Tensor) -> tuple[int, torch.Tensor]:
    """Rows a block, for blocks of ``per_row`` elements a row that fit in ``scratch``, and the
    scratch to use: a fresh one where a single row is bigger than it."""
    step = max(1, min(rows, scratch.numel() // per_row))
    if step * per_row > scratch.numel():
        scratch = scratch.new_empty(step * per_row)
    return step, scratch


def _blocked_square_sum(left, right, w, acc, scratch: torch.Tensor) -> None:
    """acc[g, b, o, k] += sum_n w[g, n] * (left[n, b, o, :] @ right[n, b, :, k])**2.

    ``left`` [N, B, O, L], ``right`` [N, B, L, K], ``acc`` [G, B, O, K]. Rows o go a block at a
    time through ``scratch`` (reused, never reallocated), which keeps them in cache.
    """
    n, b, rows, _ = left.shape
    k = right.shape[-1]
    step, scratch = _row_blocks(rows, n * b * k, scratch)
    for start in range(0, rows, step):
        size = min(step, rows - start)
        block = scratch[: n * b * size * k].view(n, b, size, k)
        torch.matmul(left[:, :, start : start + size], right, out=block)
        block.square_()
        acc[:, :, start : start + size] += torch.mm(w, block.view(n, -1)).view(-1, b, size, k)


def _few_samples_square_sum(left, right, w, acc, scratch: torch.Tensor) -> None:
    """The same sum as :func:`_blocked_square_sum` for a chunk of few samples: each sample's
    gradient, formed in the parameter's own layout, is squared, weighted and added straight into
    ``acc`` (``addcmul_``). Rows go a block at a time through ``scratch``."""
    _, b, rows, _ = left.shape
    k = right.shape[-1]
    step, scratch = _row_blocks(rows, b * k, scratch)
    weights = w.t().tolist()  # per sample: its weight in each group (one transfer, not N x G)
    for start in range(0, rows, step):
        size = min(step, rows - start)
        block = scratch[: b * size * k].view(b, size, k)
        for i, sample_weights in enumerate(weights):
            if not any(sample_weights):
                continue
            torch.matmul(left[i, :, start : start + size], right[i], out=block)
            for group, value in enumerate(sample_weights):
                if value:
                    acc[group, :, start : start + size].addcmul_(block, block, value=value)


def _sample_by_sample_square_sum(left, right, w, acc, scratch: torch.Tensor) -> None:
    """The same sum as :func:`_blocked_square_sum`, one sample at a time: each sample's gradient
    is squared, weighted and added in one fused pass (``addcmul_``) while it is still in cache,
    into sums kept transposed (``[K, O]``): MKL forms the transposed product twice as fast when
    the inner dimension is small (ResNet-18's 4x4 stage: 38 against 43-84 ms over 64 samples).
    On a CPU this beats the batched blocks where a layer's gradient has few positions per sample
    (benchmarks/forget_time.py): there the batched square and the skinny ``w @ block`` reduction
    cost more than the per-sample products they save. Rows go a block at a time through
    ``scratch`` when a layer is bigger than it."""
    _, b, rows, _ = left.shape
    k, groups = right.shape[-1], w.shape[0]
    step, scratch = _row_blocks(rows, (groups + 1) * b * k, scratch)
    weights = w.t().tolist()  # per sample: its weight in each group (one transfer, not N x G)
    for start in range(0, rows, step):
        size = min(step, rows - start)
        block = scratch[: b * k * size].view(b, k, size)
        sums = scratch[b * k * size : (groups + 1) * b * k * size].view(groups, b, k, size).zero_()
        for i, sample_weights in enumerate(weights):
            if not any(sample_weights):
                continue
            torch.matmul(right[i].transpose(-1, -2),
                         left[i, :, start : start + size].transpose(-1, -2), out=block)
            for group, value in enumerate(sample_weights):
                if value:
                    sums[group].addcmul_(block, block, value=value)
        acc[:, :, start : start + size] += sums.transpose(-1, -2)


def _square_sum(left, right, w, acc, scratch: torch.Tensor) -> None:
    """acc[g, b, o, k] += sum_n w[g, n] * (left[n, b, o, :] @ right[n, b, :, k])**2, by the
    method measured faster on the device."""
    if left.device.type == "cpu" and left.shape[0] <= FEW_SAMPLES:
        _few_samples_square_sum(left, right, w, acc, scratch)
    elif left.device.type == "cpu":
        _sample_by_sample_square_sum(left, right, w, acc, scratch)
    else:
        _blocked_square_sum(left, right, w, acc, scratch)


def _linear_fast(module: nn.Linear, a, g, w, acc: dict, scratch) -> None:
    if a.dim() > 2 and a[0].numel() == a.shape[-1]:  # a sequence of one position ([N, 1, 1, D])
        a, g = a.reshape(a.shape[0], -1), g.reshape(g.shape[0], -1)
    if a.dim() == 2:
        # One input vector per sample: sum_n w_n (g_n a_n^T)^2 = (w * g^2)^T @ a^2.
        g2, a2 = g.square(), a.square()
        for k in range(w.shape[0]):
            weighted = g2 * w[k].unsqueeze(1)
            acc["weight"][k].addmm_(weighted.t(), a2)
            if "bias" in acc:
                acc["bias"][k].add_(weighted.sum(0))
        return
    a, g = a.flatten(1, -2), g.flatten(1, -2)  # [N, T, in], [N, T, out]
    _square_sum(g.transpose(1, 2).unsqueeze(1), a.unsqueeze(1), w, acc["weight"].unsqueeze(1),
                scratch)
    if "bias" in acc:
        _accumulate(acc["bias"], w, g.sum(1), owned=True)


def _conv2d_fast(module: nn.Conv2d, a, g, w, acc: dict, scratch) -> None:
    n = a.shape[0]
    positions = g.shape[2] * g.shape[3]
    if a.device.type == "cpu" and positions >= GROUPED_CONV_MIN_POSITIONS:
        # Samples as groups: the weight gradient of a grouped convolution is every sample's own,
        # a few samples at a time (GROUPED_CONV_ELEMENTS), so that their gradients stay in cache
        # and are never one big fresh, page-faulting allocation. Only the weight's shape matters
        # here (no input gradient is asked for): zeros, made once, stand in for n copies of it.
        shape = module.weight.shape
        step = max(1, min(n, GROUPED_CONV_ELEMENTS // module.weight.numel()))
        stand_in = module.weight.new_zeros(step * shape[0], *shape[1:])
        for start in range(0, n, step):
            size = min(step, n - start)
            per_sample = torch.ops.aten.convolution_backward(
                g[start : start + size].reshape(1, -1, *g.shape[2:]),
                a[start : start + size].reshape(1, -1, *a.shape[2:]), stand_in[: size * shape[0]],
                None, module.stride, module.padding, module.dilation, False, [0, 0],
                size * module.groups, [False, True, False])[1]
            _accumulate(acc["weight"], w[:, start : start + size], per_sample.view(size, -1),
                        owned=True)
    else:
        cols, go = _conv_columns(module, a, g)
        groups = module.groups
        _square_sum(go, cols, w, acc["weight"].view(w.shape[0], groups, -1, cols.shape[-1]), scratch)
    if "bias" in acc:
        _accumulate(acc["bias"], w, g.flatten(2).sum(-1), owned=True)


_FAST = {_linear_grads: _linear_fast, _conv2d_grads: _conv2d_fast}


# ---------------------------------------------------------------------------------------------


def sum_squared_grads(
    model: nn.Module,
    inputs: Samples,
    labels: torch.Tensor,
    weights: torch.Tensor,
    *,
    method: str = "hooks",
    chunk_size: int | None = None,
    loss_fn: LossFn = cross_entropy_per_sample,
    on_output: Callable[[int, torch.Tensor], None] | None = None,
) -> dict[str, torch.Tensor]:
    """``S[name][g] = sum_n weights[g, n] * (d loss(model(x_n), y_n) / d param)^2``.

    ``inputs`` is a tensor ``[N, ...]`` or a data set of N ``(input, label)`` pairs, read in order
    through :func:`mnemu.data.loader` (its labels must equal ``labels``); ``labels`` ``[N]`` and
    ``weights`` ``[G, N]`` may live on any device. Work happens on the model's device,
    ``chunk_size`` samples at a time (default: :func:`default_chunk_size`), with the model in eval
    mode (restored afterwards). Every parameter tensor is included, trainable or not. Returns
    ``{parameter name: tensor [G, *parameter.shape]}`` (float32). ``on_output(start, output)``
    is called for each chunk with the model's (detached) output on it, the samples from
    ``start`` on: the "hooks" method's own forward, so that scoring the model on the same inputs
    costs no second one.
    """
    if method not in METHODS:
        raise MnemuError(f"unknown Fisher method {method!r}; use one of {', '.join(METHODS)}")
    if weights.dim() != 2 or weights.shape[1] != len(inputs) or len(labels) != len(inputs):
        raise MnemuError("inputs, labels and weights [groups, samples] disagree in size")
    params = dict(model.named_parameters())
    device = next(iter(params.values())).device
    chunk_size = chunk_size or default_chunk_size(_first_input(inputs).numel(), device)
    acc = {n: torch.zeros(weights.shape[0], *p.shape, device=device) for n, p in params.items()}
    flags = {n: p.requires_grad for n, p in params.items()}
    scratch = torch.empty(BLOCK_ELEMENTS.get(device.type, BLOCK_ELEMENTS["cuda"]), device=device)
    layouts = {}
    try:
        with eval_mode(model):
            for start, x, y in _chunks(inputs, labels, chunk_size):
                x, y = x.to(device), y.to(device)
                w = weights[:, start : start + len(x)].to(device=device, dtype=torch.float32)
                out = None
                if method == "hooks":
                    out = _hooks(model, params, x, y, w, acc, loss_fn, scratch, layouts)
                elif method == "loop":
                    _loop(model, params, x, y, w, acc, loss_fn)
                else:
                    _vmap(model, params, list(params), x, y, w, acc, loss_fn)
                if on_output is not None:
                    if out is None:  # the per-sample methods keep no batched output
                        with torch.no_grad():
                            out = model(x)
                    on_output(start, out.detach())
    finally:
        for n, p in params.items():
            p.requires_grad_(flags[n])
    return acc


def _first_input(inputs: Samples) -> torch.Tensor:
    return inputs[0] if isinstance(inputs, torch.Tensor) else inputs[0][0]


def _chunks(inputs: Samples, labels: torch.Tensor, size: int):
    """``(start, inputs, labels)`` of consecutive chunks of ``size`` samples (the last one smaller)."""
    if isinstance(inputs, torch.Tensor):
        for start in range(0, len(inputs), size):
            yield start, inputs[start : start + size], labels[start : start + size]
        return
    start = 0
    for x, y in loader(inputs, size, shuffle=False):
        y = torch.as_tensor(y)
        if not torch.equal(y.cpu().long(), labels[start : start + len(y)].cpu().long()):
            raise MnemuError(f"the data set's labels from sample {start} on differ from the labels "
                             "given; pass its own .labels, for a data set that serves samples in order")
        yield start, x, y
        start += len(y)


def _loop(model, params, x, y, w, acc, loss_fn) -> None:
    for p in params.values():
        p.requires_grad_(True)
    names = list(params)
    for i in range(len(x)):
        loss = loss_fn(model(x[i : i + 1]), y[i : i + 1]).sum()
        grads = torch.autograd.grad(loss, [params[n] for n in names], allow_unused=True)
        for n, gr in zip(names, grads):
            if gr is not None:
                _accumulate(acc[n], w[:, i : i + 1], gr.unsqueeze(0))


def _vmap(model, params, names, x, y, w, acc, loss_fn) -> None:
    from torch.func import functional_call, grad, vmap

    fixed = {n: p.detach() for n, p in params.items() if n not in names}
    fixed.update(dict(model.named_buffers()))
    chosen = {n: params[n].detach() for n in names}

    def sample_loss(theta, xi, yi):
        out = functional_call(model, {**fixed, **theta}, (xi.unsqueeze(0),))
        return loss_fn(out, yi.unsqueeze(0)).sum()

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))(chosen, x, y)
    for n in names:
        _accumulate(acc[n], w, per_sample[n])


class _Call:
    """One call of a hooked module: its inputs (detached; their version counters kept, to tell
    whether something changed them in place before they are used), its output's shape and, where
    ``keep_output``, the output itself (to compare with a forward over one sample), and, once the
    backward brings it, the gradient of the loss with respect to that output."""

    def __init__(self, args, kwargs, output: torch.Tensor, keep_output: bool):
        self.inputs = tree_map(_detached, (args, kwargs))
        self.output = output.detach() if keep_output else None
        self.output_shape = tuple(output.shape)
        self.grad: torch.Tensor | None = None
        self.versions = [t._version for t in tree_leaves(self.inputs) if isinstance(t, torch.Tensor)]

    @property
    def first_input(self) -> torch.Tensor:
        return self.inputs[0][0]

    def unchanged(self) -> bool:
        return self.versions == [t._version for t in tree_leaves(self.inputs)
                                 if isinstance(t, torch.Tensor)]

    def release(self) -> None:
        self.inputs = self.output = self.grad = None


def _detached(value):
    return value.detach() if isinstance(value, torch.Tensor) else value


class _Plan:
    """A module's own parameters: ``ruled`` (local -> full name) get their per-sample gradients
    from its rule, ``others`` from the module-level pass; and the module's calls so far."""

    def __init__(self, rule, fast, ruled: dict, others: dict):
        self.rule, self.fast, self.ruled, self.others = rule, fast, ruled, others
        self.calls: list[_Call] = []
        self.sample_major = True  # every call's input and output lead with the samples
        self.broken = False  # an output that is not a tensor: the whole-model fallback's
        self.reduced = False

    @property
    def deferred(self) -> dict:
        """The parameters left to the module-level pass after the backward."""
        if self.rule is not None and self.sample_major:
            return self.others
        return {**self.ruled, **self.others}


class _Hooks:
    """Forward hooks on every module that owns parameters: each call's inputs are kept and a hook
    put on its output for the output gradient.

    A supported module (one with a per-sample rule) whose input and output lead with the samples
    is reduced as soon as its gradient arrives, or once all have if it is called several times
    (shared weights). Every other one (no rule, parameters its rule does not know, or a first
    dimension that is not the samples', as Swin's window attention with windows x samples) is
    settled after the backward by :meth:`resolve`. A parameter that no call settles is left to
    the whole-model fallback."""

    def __init__(self, model: nn.Module, acc: dict, w: torch.Tensor, scratch: torch.Tensor):
        self.acc, self.w, self.scratch = acc, w, scratch
        self.samples = w.shape[1]
        self.plans: dict[nn.Module, _Plan] = {}
        self.covered: set[str] = set()
        holders: dict[int, int] = {}
        for module in model.modules():
            for p in module.parameters(recurse=False):
                holders[id(p)] = holders.get(id(p), 0) + 1
        full_names = {id(p): n for n, p in model.named_parameters()}
        for module in model.modules():
            # a parameter two modules hold (tied) is used by both: the whole-model fallback's
            own = {local: full_names[id(p)] for local, p in module.named_parameters(recurse=False)
                   if holders[id(p)] == 1}
            if not own:
                continue
            rule = _per_sample_rule(module)
            ruled = ({local: own[local] for local in _rule_parameters(module) if local in own}
                     if rule is not None else {})
            # the fast reduction writes every parameter the rule knows: only when all are real
            complete = set(ruled) == {local for local in _RULE_PARAMETERS
                                      if getattr(module, local, None) is not None}
            self.plans[module] = _Plan(rule if ruled else None,
                                       _FAST.get(rule) if ruled and complete else None, ruled,
                                       {local: n for local, n in own.items() if local not in ruled})
        self.handles = [module.register_forward_hook(self._forward, with_kwargs=True)
                        for module in self.plans]

    def _forward(self, module, args, kwargs, output):
        plan = self.plans[module]
        if plan.broken:
            return
        if not isinstance(output, torch.Tensor):
            plan.broken, plan.calls = True, []
            return
        first = args[0] if args else None
        if not (isinstance(first, torch.Tensor) and first.dim() and output.dim()
                and first.shape[0] == self.samples == output.shape[0]):
            plan.sample_major = False
        # a supported module's sample-major output is never compared: not kept (memory)
        call = _Call(args, kwargs, output,
                     keep_output=plan.rule is None or bool(plan.others) or not plan.sample_major)
        plan.calls.append(call)
        if output.requires_grad:
            output.register_hook(lambda g: self._backward(module, call, g))

    def _backward(self, module, call: _Call, g: torch.Tensor) -> None:
        plan = self.plans[module]
        if plan.broken:
            return
        call.grad = g.detach()
        if plan.rule is not None and plan.sample_major and len(plan.calls) == 1:
            # a supported module called once: reduced now, its input and gradient freed
            self._reduce(module, plan, [(call.first_input, call.grad)])
            plan.reduced = True
            if not plan.others:
                call.release()

    def _reduce(self, module, plan: _Plan, pairs) -> None:
        """The rule's parameters from (input, output gradient) of the module's calls: their
        per-sample gradients add up over the calls before squaring."""
        acc = {local: self.acc[name] for local, name in plan.ruled.items()}
        if len(pairs) == 1 and plan.fast is not None:
            plan.fast(module, *pairs[0], self.w, acc, self.scratch)
            return
        total = {}
        for a, g in pairs:
            for local, grad in plan.rule(module, a, g).items():
                if local in acc:
                    total[local] = total[local] + grad if local in total else grad
        for local, grad in total.items():
            _accumulate(acc[local], self.w, grad, owned=True)

    def flush(self) -> None:
        """After the backward: the supported modules called several times (a call whose output
        did not reach the loss contributes zero)."""
        for module, plan in self.plans.items():
            if plan.rule is None or not plan.sample_major or plan.broken or not plan.calls:
                continue
            pairs = [(c.first_input, c.grad) for c in plan.calls if c.grad is not None]
            if pairs and not plan.reduced:
                self._reduce(module, plan, pairs)
            self.covered.update(plan.ruled.values())

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def resolve(self, model: nn.Module, x: torch.Tensor, summed: dict[str, torch.Tensor],
                layouts: dict) -> None:
        """The modules left after the backward, each from its own calls. A forward over the first
        sample alone shows whether each tensor of a call holds k rows per sample, sample after
        sample, or is shared by all samples (:func:`_rows_per_sample`); if every call passes,
        a positional rule (Linear, LayerNorm) takes the k rows for positions, and the module's
        other parameters get ``vmap`` over the samples of the module's own forward, on its own
        inputs and output gradient (:func:`_module_sample_grads`), not the whole model's; they
        must add up to ``summed``, the batched gradient (by full name) of those that have one.
        What the forward over one sample showed is kept in ``layouts`` for the next chunks of the
        same inputs: calls whose tensors have the shapes it predicts need no such forward."""
        waiting = {m: plan for m, plan in self.plans.items()
                   if not plan.broken and plan.calls and plan.deferred}
        n = self.samples
        splits = {m: _fitting(plan.calls, layouts.get(m), n) for m, plan in waiting.items()}
        # a module whose rows did not split in an earlier chunk is not tried again
        unknown = [m for m, rows in splits.items() if rows is None and layouts.get(m, ()) is not None]
        if unknown:
            alone = _calls_on(model, x[:1], unknown)
            for module in unknown:
                calls, seen = waiting[module].calls, alone[module]
                rows = ([_rows_per_sample(call, *one, n) for call, one in zip(calls, seen)]
                        if len(seen) == len(calls) else [None])
                if all(r is not None for r in rows):
                    splits[module] = rows
                    layouts[module] = [_layout(call, r, n) for call, r in zip(calls, rows)]
                else:
                    layouts[module] = None
        for module, plan in waiting.items():
            rows = splits[module]
            if rows is None:
                continue
            left = plan.deferred
            if (not plan.sample_major and plan.rule in _POSITIONAL
                    and all(call_rows[0] is not None for call_rows in rows)):
                pairs = [(_by_sample(c.first_input, n), _by_sample(c.grad, n))
                         for c in plan.calls if c.grad is not None]
                if pairs:
                    self._reduce(module, plan, pairs)
                self.covered.update(plan.ruled.values())
                left = plan.others
            if left:
                try:
                    grads = _module_sample_grads(module, list(left), plan.calls, rows, n)
                except Exception:  # an op vmap cannot batch: the whole-model fallback's
                    continue
                if not all(_adds_up(grads[local], summed[name])
                           for local, name in left.items() if name in summed):
                    continue  # the parameter is used outside its module's forward too
                for local, grad in grads.items():
                    _accumulate(self.acc[left[local]], self.w, grad, owned=True)
                self.covered.update(left.values())


#: Rules that sum over every dimension between the sample's and the features': k rows of a
#: sample are k more positions.
_POSITIONAL = (_linear_grads, _layernorm_grads)


def _by_sample(t: torch.Tensor, n: int) -> torch.Tensor:
    """[n * k, ...] -> [n, k, ...]."""
    return t.reshape(n, t.shape[0] // n, *t.shape[1:])


def _calls_on(model: nn.Module, x: torch.Tensor, modules) -> dict:
    """{module: [(inputs, output) of each of its calls]} in a forward of ``model`` over ``x``."""
    seen = {m: [] for m in modules}

    def hook(module, args, kwargs, output):
        seen[module].append((tree_map(_detached, (args, kwargs)), _detached(output)))

    handles = [m.register_forward_hook(hook, with_kwargs=True) for m in modules]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _rows_per_sample(call: _Call, inputs, output, n: int) -> list | None:
    """For each leaf of a call's inputs over ``n`` samples, compared with the same call over the
    first sample alone (``inputs``, ``output``): k, where the leaf holds k rows per sample, sample
    after sample (its first k rows are the first sample's own); None, where all samples share it;
    or None for the whole call if a leaf is neither, the output does not split by rows, or an
    input was changed in place after the call."""
    if not call.unchanged() or not isinstance(output, torch.Tensor):
        return None
    leaves, spec = tree_flatten(call.inputs)
    alone, alone_spec = tree_flatten(inputs)
    if (spec != alone_spec or call.output is None
            or not _leads_with_rows(call.output, output, n)):
        return None
    rows = []
    for leaf, own in zip(leaves, alone):
        if not isinstance(leaf, torch.Tensor):
            if isinstance(own, torch.Tensor) or not (leaf is own or _plain_equal(leaf, own)):
                return None
            rows.append(None)
        elif not isinstance(own, torch.Tensor):
            return None
        elif _leads_with_rows(leaf, own, n):
            rows.append(own.shape[0])
        elif leaf.shape == own.shape and _same(leaf, own):
            rows.append(None)
        else:
            return None
    return rows


def _layout(call: _Call, rows: list, n: int) -> tuple:
    """What a call's rows showed, by shape: each input leaf's per-sample shape ``(k, *rest)``
    (rows), its whole shape (shared) or its value (not a tensor), and the output's."""
    leaves, spec = tree_flatten(call.inputs)
    kinds = [("value", leaf) if not isinstance(leaf, torch.Tensor)
             else ("shared", leaf.shape) if k is None
             else ("rows", (k, *leaf.shape[1:])) for leaf, k in zip(leaves, rows)]
    return spec, kinds, (call.output_shape[0] // n, *call.output_shape[1:])


def _fitting(calls: list[_Call], layouts: list | None, n: int) -> list | None:
    """Each call's rows per leaf if the calls have the shapes the ``layouts`` of an earlier chunk
    predict for ``n`` samples (and are unchanged since); else None."""
    if not layouts or len(layouts) != len(calls):
        return None
    splits = []
    for call, (spec, kinds, (out_rows, *out_rest)) in zip(calls, layouts):
        leaves, call_spec = tree_flatten(call.inputs)
        if (call_spec != spec or not call.unchanged()
                or call.output_shape != (n * out_rows, *out_rest)):
            return None
        rows = []
        for leaf, (kind, value) in zip(leaves, kinds):
            is_tensor = isinstance(leaf, torch.Tensor)
            if kind == "value":
                fits = not is_tensor and (leaf is value or _plain_equal(leaf, value))
            elif kind == "shared":
                fits = is_tensor and leaf.shape == value
            else:
                fits = is_tensor and tuple(leaf.shape) == (n * value[0], *value[1:])
            if not fits:
                return None
            rows.append(value[0] if kind == "rows" else None)
        splits.append(rows)
    return splits


def _leads_with_rows(batched: torch.Tensor, alone: torch.Tensor, n: int) -> bool:
    return (alone.dim() > 0 and alone.shape[0] > 0 and batched.shape[1:] == alone.shape[1:]
            and batched.shape[0] == n * alone.shape[0] and _same(batched[: alone.shape[0]], alone))


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Equal up to the round-off of a batch-size-dependent kernel (TF32 included); rows of
    another sample differ by the values' own size."""
    if not (a.is_floating_point() or a.is_complex()):
        return torch.equal(a, b)
    return bool((a - b).abs().max() <= 1e-2 * b.abs().max() + 1e-6) if a.numel() else True


def _adds_up(per_sample: torch.Tensor, summed: torch.Tensor) -> bool:
    """The per-sample gradients add up to the batched one (float32 round-off aside)."""
    return bool((per_sample.sum(0) - summed).abs().max() <= 1e-4 * summed.abs().max() + 1e-30)


def _plain_equal(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _module_sample_grads(module: nn.Module, names: list[str], calls: list[_Call], splits,
                         n: int) -> dict[str, torch.Tensor]:
    """{local name: [n, *shape]}: each sample's gradient of the loss with respect to the
    module's own parameters ``names``, from the module's own forward under ``vmap`` (one sample's
    rows at a time) and its output gradient, summed over the calls."""
    from torch.func import functional_call, grad, vmap

    own = dict(module.named_parameters(recurse=False))
    theta = {local: own[local].detach() for local in names}
    total = {local: torch.zeros(n, *t.shape, dtype=t.dtype, device=t.device)
             for local, t in theta.items()}
    for call, rows in zip(calls, splits):
        if call.grad is None:
            continue
        leaves, spec = tree_flatten(call.inputs)
        split = [i for i, k in enumerate(rows) if k is not None]

        def term(theta, own_rows, g, leaves=leaves, spec=spec, split=split):
            filled = list(leaves)
            for i, t in zip(split, own_rows):
                filled[i] = t
            args, kwargs = tree_unflatten(filled, spec)
            return (functional_call(module, theta, args, kwargs) * g).sum()

        grads = vmap(grad(term), in_dims=(None, 0, 0))(
            theta, [_by_sample(leaves[i], n) for i in split], _by_sample(call.grad, n))
        for local in total:
            total[local] += grads[local]
    return total


def _hooks(model, params, x, y, w, acc, loss_fn, scratch, layouts: dict) -> torch.Tensor:
    """Accumulates the chunk's per-sample squared gradients; returns the model's output on it.
    ``layouts``: what earlier chunks showed of how modules' rows split by sample."""
    hooks = _Hooks(model, acc, w, scratch)
    # Parameters without a rule get the batched backward's gradient too (cheap: they are few and
    # small), so that the module-level pass can show that its per-sample gradients add up to it:
    # one that a forward other than its module's also uses would not.
    unruled = [n for plan in hooks.plans.values() for n in plan.others.values()]
    try:
        for n, p in params.items():
            p.requires_grad_(n in unruled)  # otherwise only what flows to the input
        x = x.detach().requires_grad_(True)
        out = model(x)
        loss = loss_fn(out, y).sum()
        if loss.requires_grad:
            grads = torch.autograd.grad(loss, [x, *(params[n] for n in unruled)], allow_unused=True)
        else:
            grads = [None] * (len(unruled) + 1)
        hooks.flush()
    finally:
        hooks.remove()
    for n in unruled:
        params[n].requires_grad_(False)
    hooks.resolve(model, x.detach(), {n: torch.zeros_like(params[n]) if g is None else g
                                      for n, g in zip(unruled, grads[1:])}, layouts)
    rest = [n for n in params if n not in hooks.covered]
    if rest:
        for n in rest:
            params[n].requires_grad_(True)
        try:
            _vmap(model, params, rest, x.detach(), y, w, acc, loss_fn)
        except Exception:  # an op vmap cannot batch: fall back to the exact loop for these
            _loop(model, {n: params[n] for n in rest}, x.detach(), y, w, acc, loss_fn)
    return out


# ---------------------------------------------------------------------------------------------


def class_fisher(
    model: nn.Module,
    inputs: Samples,
    labels: torch.Tensor | None,
    class_sets: Sequence[Sequence[int]],
    *,
    method: str = "hooks",
    chunk_size: int | None = None,
    loss_fn: LossFn = cross_entropy_per_sample,
    on_output: Callable[[int, torch.Tensor], None] | None = None,
) -> list[dict[str, torch.Tensor]]:
    """Diagonal Fisher of each class set, as Eq. 6 averages it.

    For a class set S: ``f_S = 1/|S| * sum_{c in S} mean_{n: y_n = c} (d loss_n / d theta)^2``,
    i.e. each class's expected squared gradient, averaged over the classes of S. With one code
    per class this is the mean over S's codes. ``inputs`` ``[N, ...]`` with ``labels`` ``[N]``,
    or a data set (streamed, see :func:`sum_squared_grads`) whose ``.labels`` are used when
    ``labels`` is None: a whole training split never sits in memory. Returns one
    ``{name: tensor}`` per class set; ``on_output`` as for :func:`sum_squared_grads`.
    """
    if labels is None:
        labels = getattr(inputs, "labels", None)
        if not isinstance(labels, torch.Tensor):
            raise MnemuError("no labels given and the data has no .labels tensor; pass the labels")
    labels = labels.long().cpu()
    counts = torch.bincount(labels)
    weights = torch.zeros(len(class_sets), len(labels))
    for k, classes in enumerate(class_sets):
        if len(classes) == 0:
            raise MnemuError("a class set is empty; forget and remain sets need at least one class")
        for c in classes:
            if not 0 <= c < len(counts) or counts[c] == 0:
                raise MnemuError(f"class {c} has no samples (codes) to compute its Fisher from")
            weights[k, labels == c] = 1.0 / (len(classes) * counts[c].item())
    sums = sum_squared_grads(model, inputs, labels, weights, method=method, chunk_size=chunk_size,
                             loss_fn=loss_fn, on_output=on_output)
    return [{n: s[k] for n, s in sums.items()} for k in range(len(class_sets))]
