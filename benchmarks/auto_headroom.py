"""How far `lambda: auto` is from the best lambda any rule could pick, judged on the test split.

`lambda: auto` reads only the codes. This benchmark asks what a rule that could see the test
split would do: for each forget class of a trained model it runs Alg. 2 (one code Fisher) at

* auto's own choice (``mnemu.auto_lambdas``),
* every ``--path-step``-th point of auto's path (lambda1 = s, lambda2 = 1e5 s; at
  ``--steps-per-decade``, auto's own by default), each sign on its own, as auto follows them,
* every point of the paper's 7 x 7 grid (Figs. 6-9; ``lambda1_grid`` x ``lambda2_grid`` of
  ``--config``), the sign chosen on the codes as Alg. 2 does,

and scores each on the test split (A_R, E_F). ``--fisher-from dataN`` computes the Fisher (and
scores auto's tries) from the first N real training samples of each class instead of the codes,
the paper's "ours-w-data": where that forgets a class the codes do not, the codes are the weak
witness, not the perturbation. For each class it prints the test A_R and E_F
before, auto's, and the best any point reaches: the highest E_F that keeps A_R within
``--tolerance`` points of before (ties: the higher A_R), and the least A_R lost at a point with
E_F >= ``--target``. Where no point of the path or the grid reaches the target without losing
more A_R than the tolerance, no lambda rule on that path or grid can, codes or not.

This is an analysis, not a rule: it reads the test split, which the library never does when it
chooses lambda.

    python benchmarks/auto_headroom.py results/small/fmnist_resnet/tmix0.3_uniform/seed0/model.pt
    python benchmarks/auto_headroom.py MODEL.pt --classes 1 3 --json headroom.json
"""

from __future__ import annotations

import argparse
import copy
import json
import time

import torch
import yaml
from torch.utils.data import TensorDataset

import mnemu
from mnemu.lambdas import AUTO_RATIO, AUTO_STEPS_PER_DECADE, auto_path
from mnemu.pipeline import fisher_inputs


def grid_of(config_path: str) -> list[tuple[float, float]]:
    """The (lambda1, lambda2) grid of a workflow configuration (the paper's: config/config.yaml)."""
    with open(config_path) as handle:
        config = yaml.safe_load(handle)
    return [(float(l1), float(l2)) for l1 in config["lambda1_grid"] for l2 in config["lambda2_grid"]]


def held_test_split(checkpoint, data_dir: str) -> TensorDataset:
    """The model's test split held as tensors: it is scored hundreds of times."""
    test = checkpoint.dataset(data_dir, augment=False).test
    images, labels = zip(*(test[i] for i in range(len(test))))
    return TensorDataset(torch.stack([torch.as_tensor(x) for x in images]), torch.as_tensor(labels))


def scorer(test: TensorDataset, num_classes: int):
    def score(model, forget) -> tuple[float, float]:
        out = mnemu.predict(model, test)
        m = mnemu.forgetting_metrics(out["labels"], out["predictions"], forget, num_classes,
                                     per_class=False)
        return round(m["A_R"], 2), round(m["E_F"], 2)

    return score


def headroom(points: list[dict], before_a_r: float, tolerance: float, target: float) -> dict:
    """The best point within ``tolerance`` of A_R, and the cheapest point reaching ``target``."""
    kept = [p for p in points if p["A_R"] >= before_a_r - tolerance]
    best = max(kept, key=lambda p: (p["E_F"], p["A_R"])) if kept else None
    reaching = [p for p in points if p["E_F"] >= target]
    cheapest = max(reaching, key=lambda p: p["A_R"]) if reaching else None
    return {"best_within_tolerance": best, "cheapest_reaching_target": cheapest}


def fisher_source(value: str) -> str:
    """``--fisher-from``: ``codes``, or ``dataN`` (the first N unaugmented training samples of
    each class, as the workflow's Fisher rule reads them: :func:`mnemu.pipeline.fisher_inputs`)."""
    if value != "codes" and not (value.startswith("data") and value[4:].isdigit()):
        raise argparse.ArgumentTypeError(f"codes or dataN (N samples per class), not {value!r}")
    return value


def analyse(checkpoint, score, forget: int, path_points: list[float], tolerance: float,
            target: float, samples: tuple, grid_points: list[tuple[float, float]]) -> dict:
    began = time.perf_counter()
    inputs, labels = samples
    forgetter = mnemu.Forgetter(checkpoint.model, inputs, [forget], labels=labels,
                                num_classes=checkpoint.num_classes)
    before = score(checkpoint.model, [forget])
    model, record = mnemu.auto_lambdas(forgetter)
    a_r, e_f = score(model, [forget])
    auto = {"s": record["auto"]["s"], "sign": record["sign"], "verdict": record["auto"]["verdict"],
            "A_R": a_r, "E_F": e_f}
    scratch = copy.deepcopy(checkpoint.model)
    path = []
    for s in path_points:
        for sign in (-1, +1):
            a_r, e_f = score(forgetter.perturb(s, AUTO_RATIO * s, sign, into=scratch), [forget])
            path.append({"s": s, "sign": "+" if sign > 0 else "-", "A_R": a_r, "E_F": e_f})
    grid = []
    for lambda1, lambda2 in grid_points:
        model, rec = forgetter.apply(lambda1, lambda2, into=scratch)
        a_r, e_f = score(model, [forget])
        grid.append({"lambda1": lambda1, "lambda2": lambda2, "sign": rec["sign"], "A_R": a_r,
                     "E_F": e_f})
    return {"class": forget, "before": {"A_R": before[0], "E_F": before[1]}, "auto": auto,
            "path": headroom(path, before[0], tolerance, target),
            "grid": headroom(grid, before[0], tolerance, target),
            "points": {"path": path, "grid": grid}, "seconds": time.perf_counter() - began}


def cell(point: dict | None) -> str:
    if point is None:
        return "none"
    where = (f"s {point['s']:.2g}{point['sign']}" if "s" in point
             else f"{point['lambda1']:g}, {point['lambda2']:g}")
    return f"{point['A_R']:.1f} / {point['E_F']:.1f} ({where})"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="checkpoints trained with codes (model.pt)")
    parser.add_argument("--classes", type=int, nargs="+", help="forget classes (default: all)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--config", default="config/config.yaml",
                        help="the workflow configuration whose lambda grid is scored")
    parser.add_argument("--path-step", type=int, default=3,
                        help="score every n-th point of the path (default 3)")
    parser.add_argument("--steps-per-decade", type=int, default=AUTO_STEPS_PER_DECADE,
                        help=f"points a decade of the path scored (default auto's: "
                             f"{AUTO_STEPS_PER_DECADE})")
    parser.add_argument("--tolerance", type=float, default=5.0,
                        help="points of test A_R a point may lose (default 5)")
    parser.add_argument("--target", type=float, default=95.0, help="test E_F to reach (default 95)")
    parser.add_argument("--fisher-from", default="codes", type=fisher_source,
                        help="codes (default) or dataN: N real training samples per class")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write every scored point here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid_points = grid_of(args.config)
    path_points = auto_path(steps_per_decade=args.steps_per_decade)[::args.path_step]
    rows = []
    print(f"Fisher from {args.fisher_from}; test A_R / E_F; best: highest E_F within "
          f"{args.tolerance:g} points of A_R before; cheapest: highest A_R where E_F >= "
          f"{args.target:g}")
    print("| model | class | before | auto | path: best | path: cheapest | grid: best | "
          "grid: cheapest |\n|---|---|---|---|---|---|---|---|")
    for path in args.models:
        checkpoint = mnemu.load_checkpoint(path)
        score = scorer(held_test_split(checkpoint, args.data_dir), checkpoint.num_classes)
        samples = fisher_inputs(checkpoint, args.fisher_from, args.data_dir)
        for forget in args.classes if args.classes is not None else range(checkpoint.num_classes):
            row = {"model": path, "fisher_from": args.fisher_from,
                   **analyse(checkpoint, score, forget, path_points, args.tolerance,
                             args.target, samples, grid_points)}
            rows.append(row)
            b, a = row["before"], row["auto"]
            print(f"| {path} | {forget} | {b['A_R']:.1f} / {b['E_F']:.1f} | {a['A_R']:.1f} / "
                  f"{a['E_F']:.1f} ({a['verdict']}) | "
                  f"{cell(row['path']['best_within_tolerance'])} | "
                  f"{cell(row['path']['cheapest_reaching_target'])} | "
                  f"{cell(row['grid']['best_within_tolerance'])} | "
                  f"{cell(row['grid']['cheapest_reaching_target'])} |", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"tolerance": args.tolerance, "target": args.target, "rows": rows}, handle,
                      indent=1)


if __name__ == "__main__":
    main()
