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
    ``(W * G**2).T @ A**2`` needs no per-sample gradient at all). Other parameters (those of
    subclasses such as timm's BatchNormAct2d or StdConv2d included), and those of modules whose
    first dimension is not the sample (Swin's window attention), are handed to ``vmap``, or to
    ``loop`` if ``vmap`` cannot batch them.
``vmap``
    ``torch.func.vmap(grad(...))`` over samples.
``loop``
    one batch-1 backward per sample: the authors' way, and the reference the tests compare to.

``benchmarks/forget_time.py`` measures them and the whole forget step: on a 2-core CPU ``hooks``
beat the loop by about 2x and BackPACK's ``SumGradSquared`` by about 10x, and Opacus does not take
BatchNorm layers at all, so the hand-written hooks earn their place.

The hooks take the first dimension of every supported layer's input for the sample dimension. A
layer that sees sequence-first input ``[T, N, D]`` is caught when T differs from the number of
samples (it goes to the fallback), but not when T happens to equal it; parameters used outside
their module's forward (weights tied through a functional call) are not seen either. Use
``method="vmap"`` for such models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
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
        # Samples as groups: the weight gradient of a grouped convolution is every sample's own.
        weight = module.weight.detach()
        per_sample = torch.ops.aten.convolution_backward(
            g.reshape(1, -1, *g.shape[2:]), a.reshape(1, -1, *a.shape[2:]),
            weight.expand(n, *weight.shape).reshape(-1, *weight.shape[1:]), None,
            module.stride, module.padding, module.dilation, False, [0, 0], n * module.groups,
            [False, True, False])[1]
        _accumulate(acc["weight"], w, per_sample.view(n, -1), owned=True)
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
    try:
        with eval_mode(model):
            for start, x, y in _chunks(inputs, labels, chunk_size):
                x, y = x.to(device), y.to(device)
                w = weights[:, start : start + len(x)].to(device=device, dtype=torch.float32)
                out = None
                if method == "hooks":
                    out = _hooks(model, params, x, y, w, acc, loss_fn, scratch)
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


class _Hooks:
    """Forward hooks that keep each supported module's input and put a hook on its output for
    the output gradient. A module called once is reduced as soon as its gradient arrives; one
    called several times (shared weights) sums its per-sample gradients over the calls first.
    A module whose first dimension is not the sample dimension is left to the fallback."""

    def __init__(self, model: nn.Module, acc: dict, w: torch.Tensor, scratch: torch.Tensor):
        self.acc, self.w, self.scratch = acc, w, scratch
        self.handles, self.covered = [], set()
        self.calls: dict[nn.Module, int] = {}
        self.pending: dict[nn.Module, dict] = {}
        self.seen: dict[nn.Module, int] = {}
        self.names: dict[nn.Module, dict] = {}
        for prefix, module in model.named_modules():
            rule = _per_sample_rule(module)
            if rule is None:
                continue
            names = {local: f"{prefix}.{local}" if prefix else local
                     for local in _rule_parameters(module)}
            if not names:
                continue
            # the fast reduction writes every parameter the rule knows: only when all are real
            complete = set(names) == {local for local in _RULE_PARAMETERS
                                      if getattr(module, local, None) is not None}
            fast = _FAST.get(rule) if complete else None
            # covered once a call is seen: a module never called (its weights used functionally,
            # as nn.MultiheadAttention does with out_proj) is left to the fallback
            self.handles.append(module.register_forward_hook(self._forward(rule, fast, names)))

    def _forward(self, rule, fast, names):
        def hook(module, args, output):
            if self.calls.get(module, 0) < 0:
                return
            samples = self.w.shape[1]
            if (not args or not isinstance(output, torch.Tensor)
                    or args[0].shape[0] != samples or output.shape[0] != samples):
                self.covered.difference_update(names.values())
                self.calls[module] = -1  # never completes: left to the fallback
                return
            a = args[0].detach()
            self.calls[module] = self.calls.get(module, 0) + 1
            self.covered.update(names.values())
            self.names[module] = names
            output.register_hook(lambda g: self._backward(module, rule, fast, names, a, g.detach()))

        return hook

    def _backward(self, module, rule, fast, names, a, g):
        if self.calls[module] < 0:
            return
        if self.calls[module] == 1 and fast is not None:
            fast(module, a, g, self.w, {local: self.acc[name] for local, name in names.items()},
                 self.scratch)
            return
        pending = self.pending.setdefault(module, {})
        for local, grad in rule(module, a, g).items():
            if local in names:
                pending[local] = pending[local] + grad if local in pending else grad
        self.seen[module] = self.seen.get(module, 0) + 1
        if self.seen[module] == self.calls[module]:
            for local, grad in self.pending.pop(module).items():
                _accumulate(self.acc[names[local]], self.w, grad, owned=True)

    def flush(self):
        """After the backward: a module called several times, some of whose outputs did not
        reach the loss, has all its per-sample gradient (those calls contribute zero)."""
        for module, pending in self.pending.items():
            for local, grad in pending.items():
                _accumulate(self.acc[self.names[module][local]], self.w, grad, owned=True)
        self.pending.clear()

    def remove(self):
        for handle in self.handles:
            handle.remove()


def _hooks(model, params, x, y, w, acc, loss_fn, scratch) -> torch.Tensor:
    """Accumulates the chunk's per-sample squared gradients; returns the model's output on it."""
    hooks = _Hooks(model, acc, w, scratch)
    try:
        for p in params.values():
            p.requires_grad_(False)  # no parameter gradients: only what flows to the input
        x = x.detach().requires_grad_(True)
        out = model(x)
        loss = loss_fn(out, y).sum()
        if loss.requires_grad:
            torch.autograd.grad(loss, x)
        hooks.flush()
    finally:
        hooks.remove()
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
