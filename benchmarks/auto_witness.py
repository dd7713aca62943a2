"""What the codes say beside what the test split says, along `lambda: auto`'s path past the point
where the forget codes are first rejected.

`lambda: auto` stops from the codes alone: at twice the first rejection (further while the forget
code is only just rejected and the remaining codes hold, back where a remaining code's margin
falls below half). This analysis shows, for each forget class, whether those readings could have
told a better stopping point: it runs auto, takes the strength s0 of the first path point where
auto's chosen sign rejects the forget codes, and at ``--multiples`` k of s0 (the same sign,
lambda1 = k s0, lambda2 = 1e5 k s0) prints

* the forget codes' largest margin and the remaining codes' smallest, each as a fraction of its
  value before forgetting (auto's "too far" is a remaining fraction below 0.5), and
* test A_R (its change from before) and test E_F.

Where two classes show the same code readings at points that need opposite decisions (stop
here: A_R is about to fall past the limit; go on: the class's test images are still
recognised), no rule that reads these margins can serve both. It reads the test split, as
benchmarks/auto_headroom.py does; the library never does when it chooses lambda.

    python benchmarks/auto_witness.py results/cpu/fmnist28_resnet/tmix0.3_uniform/seed4/model.pt \
        --classes 6 9 --multiples 1 1.5 2 3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, run as a script or not
from auto_headroom import held_test_split, scorer  # noqa: E402

import mnemu  # noqa: E402
from mnemu.lambdas import AUTO_RATIO  # noqa: E402
from mnemu.pipeline import fisher_inputs  # noqa: E402


def first_rejection(record: dict) -> float | None:
    """The smallest s at which auto's chosen sign had its forget codes rejected (None: never)."""
    rejected = [t["s"] for t in record["auto"]["tried"]
                if t["sign"] == record["sign"] and t["forget_margin"] <= 0]
    return min(rejected) if rejected else None


def fraction(scores: dict, before: dict, key: str) -> float | None:
    """A margin as a fraction of its value before forgetting (None where that was not > 0)."""
    return scores[key] / before[key] if before[key] > 0 else None


def witness(checkpoint, score, forget: int, multiples: list[float], samples: tuple) -> dict:
    inputs, labels = samples
    forgetter = mnemu.Forgetter(checkpoint.model, inputs, [forget], labels=labels,
                                num_classes=checkpoint.num_classes)
    before_codes = forgetter.scores_before
    a_r0, e_f0 = score(checkpoint.model, [forget])
    model, record = mnemu.auto_lambdas(forgetter)
    a_r, e_f = score(model, [forget])
    s0 = first_rejection(record)
    row = {"class": forget, "before": {"A_R": a_r0, "E_F": e_f0},
           "auto": {"s": record["auto"]["s"], "sign": record["sign"],
                    "verdict": record["auto"]["verdict"], "A_R": a_r, "E_F": e_f},
           "first_rejection": s0, "points": []}
    if s0 is None:
        return row
    sign = +1 if record["sign"] == "+" else -1
    for k in multiples:
        codes = forgetter.score(forgetter.perturb(k * s0, AUTO_RATIO * k * s0, sign, into=model))
        a_r, e_f = score(model, [forget])
        row["points"].append({
            "k": k, "s": k * s0,
            "forget_fraction": fraction(codes, before_codes, "forget_margin"),
            "remain_fraction": fraction(codes, before_codes, "remain_margin"),
            "A_R": a_r, "A_R_change": round(a_r - a_r0, 2), "E_F": e_f})
    return row


def show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="checkpoints trained with codes (model.pt)")
    parser.add_argument("--classes", type=int, nargs="+", help="forget classes (default: all)")
    parser.add_argument("--multiples", type=float, nargs="+", default=[1, 1.5, 2, 2.5, 3],
                        help="multiples of the first rejection's s to score (default 1 1.5 2 2.5 3)")
    parser.add_argument("--data-dir", default="data")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write every scored point here")
    args = parser.parse_args(argv)
    if any(k <= 0 for k in args.multiples):
        parser.error("--multiples must be positive")
    torch.set_num_threads(args.threads)
    rows = []
    print("| model | class | auto: A_R change / E_F (stop, x first rejection) | "
          + " | ".join(f"{k:g} x: forget, remain; A_R change / E_F" for k in args.multiples)
          + " |\n|---|---|---|" + "---|" * len(args.multiples))
    for path in args.models:
        checkpoint = mnemu.load_checkpoint(path)
        score = scorer(held_test_split(checkpoint, args.data_dir), checkpoint.num_classes)
        samples = fisher_inputs(checkpoint, "codes", args.data_dir)
        for forget in args.classes if args.classes is not None else range(checkpoint.num_classes):
            row = {"model": path, **witness(checkpoint, score, forget, args.multiples, samples)}
            rows.append(row)
            a, b, s0 = row["auto"], row["before"], row["first_rejection"]
            stop = f"{a['verdict']}, {a['s'] / s0:.2f} x" if s0 else f"{a['verdict']}, never rejected"
            cells = [f"{show(p['forget_fraction'])}, {show(p['remain_fraction'])}; "
                     f"{p['A_R_change']:+.1f} / {p['E_F']:.1f}" for p in row["points"]]
            print(f"| {path} | {forget} | {a['A_R'] - b['A_R']:+.1f} / {a['E_F']:.1f} ({stop}) | "
                  + " | ".join(cells or ["-"] * len(args.multiples)) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"multiples": args.multiples, "rows": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
