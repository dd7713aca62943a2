"""Forget time and peak memory of ours and of every baseline, same model and data, one run.

Trains one model with codes as a benchmark of a workflow config says (default: the small CNN
stand-in ``fmnist_resnet`` of config/small.yaml: ResNet-18 width 8, Fashion-MNIST 14x14, 500
training images per class), then forgets class 0 with ours (Alg. 2 from scratch: code Fisher,
perturbation, sign choice) and with each baseline at the config's settings, every call timed by
the one timer (``mnemu.baselines.timed``: the forget call alone, peak memory beside it). Ours runs
once as a warm-up first (it is cheap); the baselines run once (their own loops warm up within).
Prints seconds, peak memory (CPU: sampled RSS of the process, and its growth during the call;
CUDA: max allocated), test A_R / E_F after, and ours ÷ each method.

    python benchmarks/baselines_time.py                       # CPU, config/small.yaml, fmnist_resnet
    python benchmarks/baselines_time.py --methods ssd fastmu --epochs 2
    python benchmarks/baselines_time.py --device cuda --config config/config.yaml --benchmark cifar10
"""

from __future__ import annotations

import argparse
import copy
import json
import platform

import torch
import yaml

import mnemu
from mnemu.baselines import Unsupported, default_settings, run_baseline, timed
from mnemu.pipeline import train_settings

FORGET = [0]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/small.yaml")
    parser.add_argument("--benchmark", default="fmnist_resnet")
    parser.add_argument("--methods", nargs="*", help="baselines (default: the config's)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the config's)")
    parser.add_argument("--lambdas", nargs=2, type=float, default=[1e-4, 100.0],
                        metavar=("LAMBDA1", "LAMBDA2"), help="ours (time barely depends on them)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the rows here")
    return parser.parse_args()


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(open(args.config))
    bench = next(b for b in config["benchmarks"] if b["id"] == args.benchmark)
    device = torch.device(args.device)
    run = {"t_mix": bench["t_mix"], "seed": args.seed, "codes": config["code_distribution"]}
    settings = mnemu.TrainSettings(**{**train_settings(bench, run),
                                      **({"epochs": args.epochs} if args.epochs else {})})
    data = mnemu.load_dataset(bench["dataset"], config["data_dir"], **bench.get("data_options", {}))
    codes = mnemu.make_codes(data.num_classes, data.input_shape, settings.code_distribution,
                             settings.seed)
    torch.manual_seed(args.seed)
    model = mnemu.create_model(bench["model"], data.num_classes, data.input_shape,
                               **bench.get("model_options", {}))
    mnemu.train_with_codes(model, data.train, codes, settings, device=device)
    model.to(device).eval()
    codes = codes.to(device)

    def scores(m):
        metrics = mnemu.evaluate(m, data.test, FORGET, data.num_classes)
        return metrics["A_R"], metrics["E_F"]

    rows = [{"method": "before", "seconds": None, **dict(zip(("A_R", "E_F"), scores(model)))}]

    # The model the result is written into is made before the timer starts, as run_baseline
    # makes each baseline's working copy: the same work outside the timer for every method.
    working = copy.deepcopy(model)

    def ours():
        forgetter = mnemu.Forgetter(model, codes, FORGET, method=config["fisher_method"],
                                    eta_eps=config["eta_eps"])
        return forgetter.apply(*args.lambdas, into=working)

    ours()  # warm-up
    (forgotten, _), measured = timed(ours, device)
    rows.append({"method": "ours", **measured, **dict(zip(("A_R", "E_F"), scores(forgotten)))})
    for name in args.methods or config["baseline_methods"]:
        chosen = dict(config["baselines"].get(name) or {})
        if name == "retrain":
            chosen = {k: v for k, v in vars(settings).items() if k != "exclude_classes"}
        if "seed" in default_settings(name):
            chosen["seed"] = args.seed
        try:
            forgotten, record = run_baseline(name, model, data, FORGET, chosen, codes=codes,
                                             device=device)
        except Unsupported as err:
            rows.append({"method": name, "seconds": None, "unsupported": err.reason})
            continue
        rows.append({"method": name, **{k: record[k] for k in measured if k in record},
                     **dict(zip(("A_R", "E_F"), scores(forgotten)))})

    ours_seconds = rows[1]["seconds"]
    print(f"# {bench['label']} ({bench['model']} {bench.get('model_options', {})}), "
          f"{len(data.train)} training images, forget class 0; {settings.epochs} training epochs; "
          f"device {device}, {args.threads} threads, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()}")
    print("| method | forget time (s) | peak memory (MiB) | growth (MiB) | A_R | E_F | ours ÷ method |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        if row.get("unsupported"):
            print(f"| {row['method']} | — ({row['unsupported']}) | | | | | |")
            continue
        seconds = row["seconds"]
        peak = row.get("peak_memory_bytes")
        growth = row.get("rss_growth_bytes")
        print(f"| {row['method']} | {'' if seconds is None else f'{seconds:.3f}'} | "
              f"{'' if peak is None else f'{peak / 2**20:.0f}'} | "
              f"{'' if growth is None else f'{growth / 2**20:.1f}'} | {row['A_R']:.1f} | "
              f"{row['E_F']:.1f} | "
              f"{'' if seconds is None or row['method'] == 'ours' else f'{ours_seconds / seconds:.4f} (ours ×{seconds / ours_seconds:.0f} faster)'} |")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
