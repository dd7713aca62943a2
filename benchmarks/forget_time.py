"""Forget time (whole Alg. 2) against its floor, and the Fisher methods compared.

For each number of classes C it prints, measured in the same run on the same model and codes:

* ``forget``: the whole forget step (code Fisher + eta + perturbation + sign choice on the codes),
  as ``mnemu.forget`` runs it;
* ``floor``: the floor of Alg. 2 itself: one batched forward+backward of the summed loss over the
  same C codes (in the same chunks, ``fb``: no per-sample quantity at all) plus the two inference
  forwards over the codes that the sign choice needs (``inf``);
* the ratio of the two (noisy machines make ratios the honest figure), the split of the forget
  step (Fisher against fb, sign choice against inf, perturbation), where the Fisher loses time
  (``in``: the forward and the backward to the input that both begin with, and what each spends
  beyond it), the minor page faults of each, and the Fisher alone with each method (``hooks`` is
  the library's default) against fb; on a GPU, the forget step's peak memory (allocated by
  torch, the model and codes included);
* ``least``: a lower bound of the forget step with the library's kernels: the forward and
  backward to the input, every layer's per-sample products squared into the sums by the fastest
  kernel for that layer, and the sign choice's two forwards, nothing else. Where it is above
  1.2x the floor, the kernels themselves, not the way the library uses them, keep the step
  from 1.2x.

It first checks that every method gives the same Fisher as the loop of batch-1 backward passes.
BackPACK and Opacus, when installed, are measured as candidates too (``pip install
backpack-for-pytorch opacus``).

    python benchmarks/forget_time.py                      # CIFAR-style ResNet-18, C = 10, 100, 1000
    python benchmarks/forget_time.py --device cuda --classes 10 100 1000
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import time

import torch
import torch.nn.functional as F

import mnemu
from mnemu import fisher as fisher_impl
from mnemu.fisher import default_chunk_size, sum_squared_grads


def timed(fns: dict, device, repeats) -> tuple[dict, dict]:
    """Median wall time of each of ``fns`` over ``repeats`` rounds after one warm-up round, and
    its median count of minor page faults (memory the process touches for the first time: the
    kernel maps and zeroes each page); the functions take turns within a round, so that a
    machine that slows down or speeds up for a while (other jobs, frequency) weighs on all of
    them alike and their ratios stay honest."""
    times = {name: [] for name in fns}
    faults = {name: [] for name in fns}
    for round_ in range(repeats + 1):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
            faulted = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            began = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_:
                times[name].append(time.perf_counter() - began)
                faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faulted)
    return ({name: statistics.median(t) for name, t in times.items()},
            {name: statistics.median(f) for name, f in faults.items()})


def group_weights(num_classes: int) -> torch.Tensor:
    """Eq. 6 weights for C_F = {0}: forget mean over one code, remain mean over the others."""
    weights = torch.zeros(2, num_classes)
    weights[0, 0] = 1.0
    weights[1, 1:] = 1.0 / (num_classes - 1)
    return weights


def backpack_sums(model, codes, labels, weights):
    """Fisher sums with BackPACK's SumGradSquared: one extended backward per group."""
    from backpack import backpack, extend
    from backpack.extensions import SumGradSquared

    model = extend(model, use_converter=True)
    out = {}
    for g in range(weights.shape[0]):
        members = weights[g] > 0
        model.zero_grad()
        logits = model(codes[members])
        loss = (F.cross_entropy(logits, labels[members], reduction="none") * weights[g, members].sqrt()).sum()
        with backpack(SumGradSquared()):
            loss.backward()
        for name, p in model.named_parameters():
            out.setdefault(name, []).append(p.sum_grad_squared.detach().clone())
    return {n: torch.stack(v) for n, v in out.items()}


def opacus_sums(model, codes, labels, weights):
    """Fisher sums from Opacus' per-sample gradients (grad_sample)."""
    from opacus import GradSampleModule

    wrapped = GradSampleModule(model, strict=False)
    wrapped.zero_grad()
    loss = (F.cross_entropy(wrapped(codes), labels, reduction="none")).sum()
    loss.backward()
    out = {}
    for name, p in model.named_parameters():
        per_sample = p.grad_sample.flatten(1).square()
        out[name] = (weights.to(per_sample) @ per_sample).view(weights.shape[0], *p.shape)
        p.grad_sample = None
    wrapped._close()
    return out


def library_method(method):
    def run(model, codes, labels, weights):
        return sum_squared_grads(model, codes, labels, weights, method=method)

    return run


CANDIDATES = {
    "hooks": library_method("hooks"),
    "vmap": library_method("vmap"),
    "loop": library_method("loop"),
    "backpack": backpack_sums,
    "opacus": opacus_sums,
}


def build(args, num_classes, device):
    torch.manual_seed(0)
    model = mnemu.create_model(args.model, num_classes, args.input_shape, **args.model_options)
    model.to(device).eval()
    codes = mnemu.make_codes(num_classes, args.input_shape, seed=0).to(device)
    return model, codes, torch.arange(num_classes, device=device)


def check_exactness(args, device) -> dict:
    """Max relative difference of each method's Fisher sums from the loop's, at C = 10."""
    model, codes, labels = build(args, 10, device)
    weights = group_weights(10).to(device)
    reference = sum_squared_grads(model, codes, labels, weights, method="loop")
    errors = {}
    for name in args.methods:
        if name == "loop":
            continue
        try:
            got = CANDIDATES[name](model, codes, labels, weights)
            errors[name] = max(
                ((got[n] - ref).abs().max() / ref.abs().max().clamp_min(1e-30)).item()
                for n, ref in reference.items())
        except Exception as err:  # a library that does not cover this model
            errors[name] = f"unavailable: {type(err).__name__}: {str(err).splitlines()[0][:80]}"
        model, codes, labels = build(args, 10, device)  # extensions may have changed the model
    return errors


#: The kernels the library has for a convolution's per-sample squared gradients on a CPU (the
#: settings of mnemu.fisher that select each); the library picks one by the layer's positions.
CPU_CONV_KERNELS = {
    "grouped": {"GROUPED_CONV_MIN_POSITIONS": 0},
    "unfolded, sample by sample": {"GROUPED_CONV_MIN_POSITIONS": 1 << 62, "FEW_SAMPLES": 1 << 62},
    "unfolded, transposed sums": {"GROUPED_CONV_MIN_POSITIONS": 1 << 62, "FEW_SAMPLES": 0},
}


def layer_inputs_and_grads(model, codes, labels) -> list:
    """(module, input, output gradient) of every Conv2d and Linear on these codes, for the summed
    per-sample loss: what the Fisher's hooks hand to each layer's per-sample kernel."""
    captured, handles = [], []

    def keep(module, args, output):
        a = args[0].detach()
        output.register_hook(lambda g: captured.append((module, a, g.detach())))

    for module in model.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            handles.append(module.register_forward_hook(keep))
    frozen = [q for q in model.parameters() if q.requires_grad]
    try:
        for q in frozen:
            q.requires_grad_(False)
        x = codes.clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(model(x), labels, reduction="sum"), [x])
    finally:
        for q in frozen:
            q.requires_grad_(True)
        for handle in handles:
            handle.remove()
    return captured


def per_sample_products(model, codes, labels, weights, chunk, device, repeats) -> float:
    """Seconds to form every sample's weight gradient of every Conv2d and Linear layer and add its
    square into the two groups' sums, by the fastest of the library's kernels for each layer
    (on a CPU, :data:`CPU_CONV_KERNELS`; timed layer by layer, median of ``repeats``, the kernels
    taking turns). This is the least per-sample work of the Fisher with these kernels: no hooks,
    no BatchNorm or bias, no eta, no accumulator allocation. Measured on a full chunk and on the
    last, partial one; the other full chunks cost the same (codes of the same shape)."""
    sizes = [min(chunk, len(codes) - start) for start in range(0, len(codes), chunk)]
    kernels = CPU_CONV_KERNELS if device.type == "cpu" else {"the library's": {}}
    defaults = {k: getattr(fisher_impl, k) for setting in kernels.values() for k in setting}
    scratch = torch.empty(fisher_impl.BLOCK_ELEMENTS.get(device.type, 1 << 26), device=device)
    cost = {}
    for size in sorted(set(sizes)):
        w = weights[:, :size].contiguous()
        total = 0.0
        for module, a, g in layer_inputs_and_grads(model, codes[:size], labels[:size]):
            is_conv = isinstance(module, torch.nn.Conv2d)
            if not is_conv and a.shape[0] != size:  # rows of windows x samples (Swin): a
                # sample's rows are more positions, as the library's module-level pass takes them
                a, g = a.reshape(size, -1, a.shape[-1]), g.reshape(size, -1, g.shape[-1])
            fast = fisher_impl._conv2d_fast if is_conv else fisher_impl._linear_fast
            acc = {n: torch.zeros(w.shape[0], *p.shape, device=device)
                   for n, p in module.named_parameters(recurse=False)}
            times = {}
            for _ in range(repeats + 1):
                for name, setting in (kernels if is_conv else {"": {}}).items():
                    for key, value in {**defaults, **setting}.items():
                        setattr(fisher_impl, key, value)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    began = time.perf_counter()
                    fast(module, a, g, w, acc, scratch)
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    times.setdefault(name, []).append(time.perf_counter() - began)
            for key, value in defaults.items():
                setattr(fisher_impl, key, value)
            total += min(statistics.median(t[1:]) for t in times.values())
        cost[size] = total
    return sum(cost[size] for size in sizes)


def measure(args, num_classes, device, methods) -> dict:
    model, codes, labels = build(args, num_classes, device)
    weights = group_weights(num_classes).to(device)
    chunk = args.chunk_size or default_chunk_size(codes[0].numel(), device)

    def backward_floor():
        model.zero_grad()
        for start in range(0, num_classes, chunk):
            logits = model(codes[start : start + chunk])
            F.cross_entropy(logits, labels[start : start + chunk], reduction="sum").backward()

    def input_backward():  # what the hooks Fisher runs before its per-sample work
        frozen = [q for q in model.parameters() if q.requires_grad]
        for q in frozen:
            q.requires_grad_(False)
        try:
            for start in range(0, num_classes, chunk):
                x = codes[start : start + chunk].clone().requires_grad_(True)
                loss = F.cross_entropy(model(x), labels[start : start + chunk], reduction="sum")
                torch.autograd.grad(loss, [x])
        finally:
            for q in frozen:
                q.requires_grad_(True)

    @torch.inference_mode()
    def inference_floor():  # the sign choice scores both candidates on every code
        for _ in range(2):
            for start in range(0, num_classes, chunk):
                model(codes[start : start + chunk])

    records, peaks = [], []

    def forget():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        records.append(mnemu.forget(model, codes, [0], 1e-5, 1e4, chunk_size=chunk)[1])
        if device.type == "cuda":  # the model and codes count too: all the step needs
            peaks.append(torch.cuda.max_memory_allocated(device))

    fns = {"backward_floor": backward_floor, "input_backward": input_backward,
           "inference_floor": inference_floor, "forget": forget}
    for name in methods:
        if name in ("backpack", "opacus"):
            run = CANDIDATES[name]
            fns[f"fisher_{name}"] = lambda run=run: run(build(args, num_classes, device)[0], codes,  # noqa: E731
                                                        labels, weights)
        else:
            fns[f"fisher_{name}"] = lambda name=name: sum_squared_grads(  # noqa: E731
                model, codes, labels, weights, method=name, chunk_size=chunk)
    row = {"classes": num_classes}
    for name in [n for n in fns if n.startswith("fisher_")]:
        try:  # a candidate library may not take this model
            fns[name]()
        except Exception as err:
            row[name] = f"unavailable: {type(err).__name__}"
            del fns[name]
    seconds, faults = timed(fns, device, args.repeats)
    row.update(seconds)
    row["page_faults"] = faults
    row["floor"] = row["backward_floor"] + row["inference_floor"]
    parts = [r["seconds"] for r in records[1:]]  # after the warm-up
    row["forget_parts"] = {k: statistics.median(p[k] for p in parts) for k in parts[0]}
    row["products"] = per_sample_products(model, codes, labels, weights, chunk, device,
                                          args.repeats)
    # the least a Fisher with these kernels can cost (forward, backward to the input, per-sample
    # products squared into the sums), plus the sign choice's two forwards
    row["least"] = row["input_backward"] + row["products"] + row["inference_floor"]
    row["forget_peak_memory_mib"] = max(peaks) / 2**20 if peaks else None
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--model", default="resnet18_cifar")
    parser.add_argument("--input-shape", type=int, nargs=3, default=[3, 32, 32])
    parser.add_argument("--width", type=int, default=None, help="resnet18_cifar width (default 64)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a model option (integers as such), e.g. img_size=32 for timm's Swin")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="codes per batched pass (default: the library's choice)")
    parser.add_argument("--methods", nargs="+", default=list(CANDIDATES),
                        help="Fisher methods to time (at C > 100 only hooks unless --all)")
    parser.add_argument("--all", action="store_true", help="time every method at every size")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    args.input_shape = tuple(args.input_shape)
    args.model_options = {"width": args.width} if args.width else {}
    for option in args.option:
        key, value = option.split("=", 1)
        args.model_options[key] = int(value) if value.isdigit() else value
    device = torch.device(args.device)

    print(f"# {args.model} {args.input_shape} on {device}"
          f" ({torch.cuda.get_device_name(device) if device.type == 'cuda' else platform.processor() or platform.machine()},"
          f" {torch.get_num_threads()} threads), torch {torch.__version__}, median of {args.repeats}")
    errors = check_exactness(args, device)
    print("# Fisher vs loop of batch-1 backward, max relative difference at C=10:")
    for name, err in errors.items():
        print(f"#   {name:9s} {err:.1e}" if isinstance(err, float) else f"#   {name:9s} {err}")
    rows = []
    # floor = one batched forward+backward over the C codes (fb) + the sign choice's two inference
    # forwards (inf); Alg. 2 cannot beat it. The split: Fisher vs fb, sign choice vs inf. Both
    # the Fisher and fb begin with a forward and a backward to the input (in); beyond it, fb
    # forms the batched weight gradient (fb - in) and the Fisher each sample's squared one, its
    # sums and eta (fisher - in): "beyond in" is the second over the first. Faults: the minor
    # page faults of the forget step and of the floor's passes (the floor reuses its memory from
    # round to round; the forget step's new tensors are fresh pages that the kernel zeroes).
    # "products": the per-sample products alone, squared into the sums, by the fastest of the
    # library's kernels for each layer; "least": in + products + inf, what the forget step would
    # cost if nothing else took time: where least / floor passes 1.2, no dispatch among these
    # kernels brings the step within 1.2x of the floor.
    header = (f"{'C':>5} {'forget s':>9} {'floor s':>8} {'ratio':>6} | {'fisher s':>9} "
              f"{'fb s':>8} {'ratio':>6} | {'in s':>7} {'beyond in':>9} | {'select s':>9} "
              f"{'inf s':>8} {'ratio':>6} | {'perturb s':>9} | {'products s':>10} {'least s':>8} "
              f"{'/floor':>6} | {'faults: forget, floor':>21} | {'peak MiB':>8}")
    for name in args.methods:
        header += f" | {name + ' s':>11} {'/fb':>5}"
    print(header)
    for num_classes in args.classes:
        methods = [m for m in args.methods if args.all or num_classes <= 100 or m == "hooks"]
        row = measure(args, num_classes, device, methods)
        rows.append(row)
        p = row["forget_parts"]
        # the library's "fisher" part includes eta (Eq. 6), a few elementwise passes
        weight_grad = row["backward_floor"] - row["input_backward"]
        beyond = ((p["fisher"] - row["input_backward"]) / weight_grad if weight_grad > 0
                  else float("nan"))
        faults, peak = row["page_faults"], row["forget_peak_memory_mib"]
        floor_faults = faults["backward_floor"] + faults["inference_floor"]
        line = (f"{num_classes:5d} {row['forget']:9.3f} {row['floor']:8.3f} "
                f"{row['forget'] / row['floor']:6.2f} | {p['fisher']:9.3f} "
                f"{row['backward_floor']:8.3f} {p['fisher'] / row['backward_floor']:6.2f} | "
                f"{row['input_backward']:7.3f} {beyond:9.2f} | "
                f"{p['select']:9.3f} {row['inference_floor']:8.3f} "
                f"{p['select'] / row['inference_floor']:6.2f} | {p['perturb']:9.3f} | "
                f"{row['products']:10.3f} {row['least']:8.3f} {row['least'] / row['floor']:6.2f} | "
                f"{faults['forget']:>10.0f} {floor_faults:>10.0f} | "
                f"{'-' if peak is None else f'{peak:.0f}':>8}")
        for name in args.methods:
            value = row.get(f"fisher_{name}")
            line += (f" | {value:11.3f} {value / row['backward_floor']:5.2f}"
                     if isinstance(value, float) else f" | {'-':>11} {'':>5}")
        print(line, flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"device": str(device), "model": args.model, "exactness": errors, "rows": rows},
                      handle, indent=1)


if __name__ == "__main__":
    main()
