"""Real data: Fashion-MNIST, the paper's MNIST MLP and training settings, forget class 0 with the
lambda grid of Figs 6-9 (one code Fisher for the whole grid). ``pytest -s`` prints the numbers."""

from __future__ import annotations

import time

import torch

from mnemu import Forgetter, TrainSettings, evaluate, forget_grid, load_dataset, train_checkpoint
from mnemu import forgetting as forget_module

LAMBDA1 = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
LAMBDA2 = [1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5]


def test_fashion_mnist_forget_class_0_over_the_paper_grid(tmp_path, monkeypatch):
    calls = []
    real_class_fisher = forget_module.class_fisher

    def counting_class_fisher(*args, **kwargs):
        calls.append(1)
        return real_class_fisher(*args, **kwargs)

    monkeypatch.setattr(forget_module, "class_fisher", counting_class_fisher)

    # Appendix A for MNIST: SGD lr 0.01, momentum 0.9, weight decay 5e-4, batch 128, no schedule
    settings = TrainSettings(t_mix=0.1, epochs=3, batch_size=128, lr=0.01, momentum=0.9,
                             weight_decay=5e-4, schedule="none", seed=0)
    began = time.perf_counter()
    checkpoint = train_checkpoint("fashion_mnist", "mlp", settings, tmp_path / "fmnist.pt",
                                  data_root=tmp_path / "data", device="cpu")
    train_seconds = time.perf_counter() - began
    model, codes = checkpoint.model, checkpoint.codes
    assert sum(p.numel() for p in model.parameters()) == 784 * 1000 + 1000 + 1000 * 10 + 10
    data = load_dataset("fashion_mnist", tmp_path / "data")
    before = evaluate(model, data.test, [0], data.num_classes)
    weights_before = {k: v.clone() for k, v in model.state_dict().items()}

    began = time.perf_counter()
    forgetter = Forgetter(model, codes, [0])
    points = [(l1, l2) for l1 in LAMBDA1 for l2 in LAMBDA2]

    def test_metrics(forgotten):
        metrics = evaluate(forgotten, data.test, [0], data.num_classes)
        return {"A_R": metrics["A_R"], "E_F": metrics["E_F"]}

    rows = forget_grid(forgetter, points, test_metrics)
    grid_seconds = time.perf_counter() - began
    best = max(rows, key=lambda r: r["A_R"] + r["E_F"])

    print(f"\nFashion-MNIST MLP, t_mix 0.1, 3 epochs, seed 0: trained in {train_seconds:.1f}s")
    print(f"before forgetting (class 0 as forget class): A_R {before['A_R']:.2f}  "
          f"E_F {before['E_F']:.2f}  test accuracy {before['accuracy']:.2f}")
    print(f"grid of {len(rows)} points in {grid_seconds:.1f}s (code Fisher once: "
          f"{forgetter.fisher_seconds:.3f}s)")
    print(f"best A_R + E_F at lambda1 {best['lambda1']:g}, lambda2 {best['lambda2']:g} "
          f"(sign {best['sign']}{', tie' if best['tie'] else ''}): A_R {best['A_R']:.2f}  "
          f"E_F {best['E_F']:.2f}")
    paper = next(r for r in rows if (r["lambda1"], r["lambda2"]) == (1e-3, 10.0))
    print(f"at the paper's MNIST lambdas (1e-3, 10): A_R {paper['A_R']:.2f}  E_F {paper['E_F']:.2f}")

    assert len(calls) == 1  # one Fisher for all 49 points
    assert len(rows) == 49 and [(r["lambda1"], r["lambda2"]) for r in rows] == points
    assert before["E_F"] < 50  # the trained model knows class 0 ...
    assert best["E_F"] >= 99  # ... and forgets it
    assert best["A_R"] >= before["A_R"] - 5  # while keeping the other classes
    for k, v in model.state_dict().items():  # the grid never touched the trained model
        assert torch.equal(v, weights_before[k]), k
