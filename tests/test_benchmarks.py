"""benchmarks/auto_headroom.py on a real (tiny) checkpoint: its answers must follow from the
points it scored, and auto's row must be what auto does."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

import mnemu

ROOT = Path(__file__).resolve().parents[1]


def _module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("source", ["codes", "data5"])
def test_headroom_picks_from_the_points_it_scored(lib_tiny_checkpoint, tmp_path, capsys, source):
    headroom = _module("auto_headroom")
    out = tmp_path / "headroom.json"
    headroom.main([lib_tiny_checkpoint, "--classes", "1", "--path-step", "16", "--tolerance", "2",
                   "--target", "90", "--data-dir", str(tmp_path), "--json", str(out),
                   "--fisher-from", source, "--config", str(ROOT / "config" / "config.yaml")])
    assert "| 1 |" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["rows"]
    assert row["class"] == 1
    checkpoint = mnemu.load_checkpoint(lib_tiny_checkpoint)
    test = checkpoint.dataset(str(tmp_path)).test
    before = mnemu.evaluate(checkpoint.model, test, [1], checkpoint.num_classes)
    assert abs(row["before"]["A_R"] - before["A_R"]) < 0.01
    # auto's row is auto's model on the test split, from the Fisher of the codes or of 5 real
    # training samples per class
    inputs, labels = checkpoint.codes, None
    if source == "data5":
        inputs = checkpoint.dataset(str(tmp_path), augment=False, max_train_per_class=5).train
        labels = inputs.labels
    model, record = mnemu.auto_lambdas(mnemu.Forgetter(checkpoint.model, inputs, [1],
                                                       labels=labels))
    after = mnemu.evaluate(model, test, [1], checkpoint.num_classes)
    assert row["auto"]["s"] == record["auto"]["s"]
    assert abs(row["auto"]["E_F"] - after["E_F"]) < 0.01
    # both signs at every 16th path point, and the paper's 7 x 7 grid (config/config.yaml's)
    assert len(row["points"]["path"]) == 2 * len(mnemu.lambdas.auto_path()[::16])
    assert len(row["points"]["grid"]) == 49
    for where in ("path", "grid"):
        points, answer = row["points"][where], row[where]
        kept = [p for p in points if p["A_R"] >= row["before"]["A_R"] - 2]
        best = answer["best_within_tolerance"]
        assert best in kept and best["E_F"] == max(p["E_F"] for p in kept)
        reaching = [p for p in points if p["E_F"] >= 90]
        cheapest = answer["cheapest_reaching_target"]
        if reaching:
            assert cheapest in reaching and cheapest["A_R"] == max(p["A_R"] for p in reaching)
        else:
            assert cheapest is None


def test_auto_cost_times_both_forgets_and_counts_autos_tries(lib_tiny_checkpoint, tmp_path,
                                                             capsys):
    cost = _module("auto_cost")
    checkpoint = mnemu.load_checkpoint(lib_tiny_checkpoint)
    row = cost.request_cost(checkpoint, (checkpoint.codes, None), 1, (1e-4, 10.0), repeats=2)
    _, record = mnemu.auto_lambdas(mnemu.Forgetter(checkpoint.model, checkpoint.codes, [1]))
    assert row["tries"] == record["auto"]["num_tried"] > 0
    assert row["verdict"] == record["auto"]["verdict"]
    # parts of auto's own runs are smaller than those runs (the fixed forgets are other runs, and
    # comparing times across runs would flake on a busy machine)
    assert row["fixed"] > 0 and 0 < row["fisher"] < row["auto"]
    assert 0 < row["per_try"] * row["tries"] < row["auto"]
    cost.main([lib_tiny_checkpoint, "--classes", "1", "2", "--repeats", "1",
               "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "| 1 |" in out and "| 2 |" in out
    assert "auto / fixed median" in out and "of 2; tries median" in out


def test_forget_time_measures_the_step_its_floor_and_the_split(tmp_path, capsys):
    forget_time = _module("forget_time")
    out = tmp_path / "forget_time.json"
    forget_time.main(["--classes", "10", "--width", "4", "--input-shape", "3", "16", "16",
                      "--repeats", "1", "--methods", "hooks", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["exactness"]["hooks"] < 1e-3  # the hooks Fisher is the loop's
    (row,) = result["rows"]
    # the floor's parts: fb and the inference forwards, and the input backward inside fb
    assert row["floor"] == row["backward_floor"] + row["inference_floor"]
    assert 0 < row["input_backward"] and 0 < row["forget"]
    parts = row["forget_parts"]
    assert 0 < parts["fisher"] < parts["total"] and parts["select"] > 0
    assert set(row["page_faults"]) == {"backward_floor", "input_backward", "inference_floor",
                                       "forget", "fisher_hooks"}
    assert all(count >= 0 for count in row["page_faults"].values())
    # the lower bound: the input backward, the per-sample products and the sign choice's forwards
    assert 0 < row["products"]
    assert row["least"] == pytest.approx(row["input_backward"] + row["products"]
                                         + row["inference_floor"])
    printed = capsys.readouterr().out
    assert "beyond in" in printed and "faults: forget, floor" in printed and "least s" in printed
    assert printed.strip().splitlines()[-1].split()[0] == "10"


def test_each_cpu_kernel_of_the_bound_is_its_own_and_exact(monkeypatch):
    """The lower bound takes the fastest of CPU_CONV_KERNELS per layer: each setting must send a
    convolution to a different kernel, and all must give the same sums (the loop's)."""
    import torch

    from mnemu import fisher

    forget_time = _module("forget_time")
    torch.manual_seed(0)
    model = mnemu.create_model("resnet18_cifar", 4, (3, 8, 8), width=4).eval()
    codes, labels = torch.randn(4, 3, 8, 8), torch.arange(4)
    weights = forget_time.group_weights(4)
    convs = [(m, a, g) for m, a, g in forget_time.layer_inputs_and_grads(model, codes, labels)
             if isinstance(m, torch.nn.Conv2d)]
    reference = fisher.sum_squared_grads(model, codes, labels, weights, method="loop")
    names = {id(p): n for n, p in model.named_parameters()}
    calls = []
    for kernel in ("_few_samples_square_sum", "_sample_by_sample_square_sum"):
        original = getattr(fisher, kernel)
        monkeypatch.setattr(fisher, kernel, lambda *a, _k=kernel, _f=original: (
            calls.append(_k), _f(*a))[1])
    used = {}
    for name, setting in forget_time.CPU_CONV_KERNELS.items():
        for key, value in setting.items():
            monkeypatch.setattr(fisher, key, value)
        calls.clear()
        for module, a, g in convs:
            acc = {"weight": torch.zeros(2, *module.weight.shape)}
            fisher._conv2d_fast(module, a, g, weights, acc, torch.empty(1 << 16))
            ref = reference[names[id(module.weight)]]
            assert torch.allclose(acc["weight"], ref, rtol=1e-4, atol=1e-6 * ref.abs().max())
        used[name] = tuple(sorted(set(calls)))
    assert len(set(used.values())) == len(used)  # grouped uses neither unfolded kernel


def test_witness_scores_multiples_of_autos_first_rejection(lib_tiny_checkpoint, tmp_path, capsys):
    witness = _module("auto_witness")
    out = tmp_path / "witness.json"
    witness.main([lib_tiny_checkpoint, "--classes", "1", "--multiples", "1", "2",
                  "--data-dir", str(tmp_path), "--json", str(out)])
    assert "| 1 |" in capsys.readouterr().out
    (row,) = json.loads(out.read_text())["rows"]
    checkpoint = mnemu.load_checkpoint(lib_tiny_checkpoint)
    forgetter = mnemu.Forgetter(checkpoint.model, checkpoint.codes, [1])
    _, record = mnemu.auto_lambdas(forgetter)
    assert row["auto"]["s"] == record["auto"]["s"]
    s0 = row["first_rejection"]
    # the first rejection is auto's own tried point: the forget codes rejected there, on the
    # chosen sign, and recognised at every smaller s it tried with that sign
    mine = [t for t in record["auto"]["tried"] if t["sign"] == record["sign"]]
    assert s0 is not None and any(t["s"] == s0 and t["forget_margin"] <= 0 for t in mine)
    assert all(t["forget_margin"] > 0 for t in mine if t["s"] < s0)
    # each point is that multiple of it, scored on the codes and on the test split
    test = checkpoint.dataset(str(tmp_path)).test
    sign = +1 if record["sign"] == "+" else -1
    for point, k in zip(row["points"], (1, 2)):
        assert point["k"] == k and point["s"] == k * s0
        model = forgetter.perturb(k * s0, mnemu.lambdas.AUTO_RATIO * k * s0, sign)
        codes = forgetter.score(model)
        before = forgetter.scores_before
        assert point["forget_fraction"] == pytest.approx(codes["forget_margin"] / before["forget_margin"])
        assert point["remain_fraction"] == pytest.approx(codes["remain_margin"] / before["remain_margin"])
        assert point["E_F"] == pytest.approx(
            mnemu.evaluate(model, test, [1], checkpoint.num_classes)["E_F"], abs=0.01)
