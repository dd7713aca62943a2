"""``mnemu``: train with mnemonic codes, make a model forget classes, evaluate it.

Every command checks its input before it writes anything, and writes files atomically.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

from .codes import DISTRIBUTIONS
from .data import dataset_names
from .errors import MnemuError
from .files import exit_process, write_csv, write_json
from .fisher import METHODS
from .models import model_names

PAPER_LAMBDA1 = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0]
PAPER_LAMBDA2 = [1e-1, 1.0, 1e1, 1e2, 1e3, 1e4, 1e5]

EXAMPLES = """\
examples:
  mnemu train --dataset fashion_mnist --model mlp --t-mix 0.1 --epochs 5 --out fmnist.pt
  mnemu forget fmnist.pt --classes 0 --lambda1 1e-3 --lambda2 10 --out fmnist-forgot0.pt
  mnemu forget fmnist.pt --classes 1 --lambda auto --out fmnist-forgot1.pt  # lambda from the codes
  mnemu evaluate fmnist-forgot0.pt --forget-classes 0
  mnemu grid fmnist.pt --forget-classes 0 --out grid.csv     # the paper's lambda search
"""


def _options(pairs: list[str] | None) -> dict:
    """``key=value`` pairs; values are parsed as JSON where they can be (numbers, lists, bools)."""
    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise MnemuError(f"option {pair!r} is not key=value (e.g. width=16)")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


def _check_out(path: str) -> Path:
    out = Path(path)
    if out.exists() and out.is_dir():
        raise MnemuError(f"--out {out} is a directory; give a file name such as {out}/model.pt")
    return out


def _print_epoch(record: dict) -> None:
    print(f"epoch {record['epoch']}/{record['epochs']}  loss {record['loss']:.4f}  "
          f"train accuracy {record['train_accuracy']:.2f}%  {record['seconds']:.1f}s", flush=True)


def cmd_datasets(args) -> None:
    print("data sets:", ", ".join(dataset_names()))
    print("models:   ", ", ".join(model_names()), "or timm:<name>")


def cmd_prepare(args) -> None:
    from .data import prepare_dataset

    manifest = prepare_dataset(args.dataset, args.data_root, **_options(args.data_option))
    print(json.dumps(manifest, indent=1))


def cmd_train(args) -> None:
    from .train import TrainSettings, default_device, train_checkpoint

    out = _check_out(args.out)
    settings = TrainSettings(
        t_mix=args.t_mix, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        momentum=args.momentum, weight_decay=args.weight_decay, schedule=args.schedule,
        steps=args.steps, seed=args.seed, code_distribution=args.codes, num_workers=args.workers)
    device = args.device or default_device()
    print(f"training {args.model} on {args.dataset} with codes (t_mix {args.t_mix}) on {device}; "
          f"state saved after each epoch to {out}.state", flush=True)
    checkpoint = train_checkpoint(
        args.dataset, args.model, settings, out, data_root=args.data_root,
        data_options=_options(args.data_option), model_options=_options(args.model_option),
        pretrained=args.pretrained, device=device, progress=_print_epoch)
    print(f"wrote {out} ({checkpoint.training['seconds']:.1f}s)")


def _load(path, device):
    from .checkpoint import load_checkpoint
    from .train import default_device

    return load_checkpoint(path, device or default_device())


def cmd_forget(args) -> None:
    from .checkpoint import Checkpoint
    from .forgetting import check_classes, check_lambdas, forget

    out = _check_out(args.out)
    if args.lambda_rule is not None:
        if args.lambda_rule != "auto" or args.lambda1 is not None or args.lambda2 is not None:
            raise MnemuError(f"--lambda takes only 'auto' and goes without --lambda1/--lambda2 "
                             f"(got --lambda {args.lambda_rule}); use --lambda auto, or give "
                             f"--lambda1 and --lambda2")
        lambdas = {"lambdas": "auto"}
    elif args.lambda1 is None or args.lambda2 is None:
        raise MnemuError("no lambdas given; pass --lambda1 and --lambda2, or --lambda auto")
    else:
        check_lambdas(args.lambda1, args.lambda2)
        lambdas = {"lambda1": args.lambda1, "lambda2": args.lambda2}
    checkpoint = _load(args.checkpoint, args.device)
    check_classes(args.classes, checkpoint.num_classes)
    model, record = forget(checkpoint.model, checkpoint.codes.to(_device_of(checkpoint.model)),
                           args.classes, **lambdas, method=args.fisher_method)
    history = list((checkpoint.forgotten or {}).get("history", [])) + [record]
    Checkpoint(model, checkpoint.codes, checkpoint.model_spec, checkpoint.data, checkpoint.training,
               {**record, "history": history}).save(out)
    names = [checkpoint.class_names[c] for c in record["forget_classes"]]
    how = (" (chosen by lambda auto)" if "auto" in record else
           " (codes tied; chosen by their losses)" if record["tie"] else "")
    print(f"forgot classes {record['forget_classes']} ({', '.join(names)}) in "
          f"{record['seconds']['total']:.3f}s (Fisher {record['seconds']['fisher']:.3f}s); sign "
          f"{record['sign']}{how}; "
          f"on the codes: A_R {record['code_scores'][record['sign']]['A_R']:.1f}, "
          f"E_F {record['code_scores'][record['sign']]['E_F']:.1f}")
    if "auto" in record:
        print(f"lambda auto: lambda1 {record['lambda1']:.3g}, lambda2 {record['lambda2']:.3g} after "
              f"{record['auto']['num_tried']} tries: {record['auto']['reason']}")
    if args.record:
        write_json(args.record, record)
    print(f"wrote {out}")


def _device_of(model):
    return next(model.parameters()).device


def _test_split(checkpoint, args):
    return checkpoint.dataset(args.data_root, args.dataset, **_options(args.data_option))


def _evaluate(model, data, forget_classes, workers):
    from .metrics import evaluate

    return evaluate(model, data.test, forget_classes, data.num_classes, num_workers=workers)


def cmd_evaluate(args) -> None:
    checkpoint = _load(args.checkpoint, args.device)
    forget_classes = args.forget_classes
    if forget_classes is None:
        forget_classes = (checkpoint.forgotten or {}).get("forget_classes", [])
    from .forgetting import check_classes

    if forget_classes:
        check_classes(forget_classes, checkpoint.num_classes)
    data = _test_split(checkpoint, args)
    metrics = _evaluate(checkpoint.model, data, forget_classes, args.workers)
    if forget_classes:
        print(f"A_R {metrics['A_R']:.2f}  E_F {metrics['E_F']:.2f}  (forget classes {forget_classes})")
    print(f"test accuracy {metrics['accuracy']:.2f}%")
    for c, acc in enumerate(metrics["per_class_accuracy"]):
        print(f"  {c:4d} {checkpoint.class_names[c][:30]:30s} {acc:6.2f}%")
    if args.json:
        write_json(args.json, metrics)


def cmd_grid(args) -> None:
    from .forgetting import Forgetter, check_classes, forget_grid
    from .lambdas import select_lambdas

    out = _check_out(args.out)
    checkpoint = _load(args.checkpoint, args.device)
    check_classes(args.forget_classes, checkpoint.num_classes)
    data = _test_split(checkpoint, args)
    forgetter = Forgetter(checkpoint.model, checkpoint.codes.to(_device_of(checkpoint.model)),
                          args.forget_classes, method=args.fisher_method)
    points = [(l1, l2) for l1 in args.lambda1 for l2 in args.lambda2]
    began = time.perf_counter()

    done = itertools.count(1)

    def evaluate(model):
        metrics = _evaluate(model, data, args.forget_classes, args.workers)
        print(f"[{next(done)}/{len(points)}] A_R {metrics['A_R']:.2f} E_F {metrics['E_F']:.2f}",
              flush=True)
        return {"A_R": metrics["A_R"], "E_F": metrics["E_F"]}

    rows = forget_grid(forgetter, points, evaluate)
    choice = select_lambdas([rows])
    best = next(r for r in rows
                if (r["lambda1"], r["lambda2"]) == (choice["lambda1"], choice["lambda2"]))
    write_csv(out, rows)
    print(f"{len(rows)} points in {time.perf_counter() - began:.1f}s (Fisher once: "
          f"{forgetter.fisher_seconds:.3f}s); best A_R + E_F at lambda1 {best['lambda1']:g}, "
          f"lambda2 {best['lambda2']:g}: A_R {best['A_R']:.2f}, E_F {best['E_F']:.2f}")
    print(f"wrote {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnemu",
        description="One-shot machine unlearning with mnemonic codes: train a classifier with "
                    "class codes mixed into its data, then make it forget classes in one step "
                    "that needs only the codes stored in its checkpoint.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def common(p, data=True):
        p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
        p.add_argument("--plugin", action="append", metavar="MODULE",
                       help="import this module first, e.g. one that calls mnemu.register_model "
                            "(repeatable; also $MNEMU_PLUGINS=mod1,mod2)")
        if data:
            p.add_argument("--data-root", help="where data sets live (default $MNEMU_DATA or ./data)")
            p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                           help="data set option, e.g. max_train_per_class=500 (repeatable)")
            p.add_argument("--workers", type=int, default=0, help="data loader processes")

    p = sub.add_parser("datasets", help="list the data sets and models mnemu knows")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("prepare", help="download (or find) and check a data set")
    p.add_argument("dataset")
    common(p)
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a model with mnemonic codes (paper, Alg. 1)",
                       description="Train with codes: each sample is replaced, with probability "
                       "t_mix, by its class's code. Defaults are the paper's (Appendix A). A "
                       "rerun after a crash resumes from the last finished epoch.")
    p.add_argument("--dataset", required=True, help=f"one of {', '.join(dataset_names())}")
    p.add_argument("--model", required=True,
                   help=f"one of {', '.join(model_names())}, or timm:<name>")
    p.add_argument("--out", required=True, help="checkpoint file to write")
    p.add_argument("--t-mix", type=float, default=0.1, help="code replacement probability (0.1)")
    p.add_argument("--codes", choices=DISTRIBUTIONS, default=DISTRIBUTIONS[0],
                   help="code distribution: uniform [0,1) as the authors' code, or N(0,1) as the text")
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--steps", type=int, help="stop after this many optimiser steps (fine-tuning)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=5e-4)
    p.add_argument("--schedule", choices=["none", "cosine"], default="none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pretrained", action="store_true", help="start from pretrained weights")
    p.add_argument("--model-option", action="append", metavar="KEY=VALUE",
                   help="model option, e.g. width=16 (repeatable)")
    common(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("forget", help="forget classes in one shot (paper, Alg. 2)",
                       description="Perturb the parameters that the forget classes' code Fisher "
                       "marks; the sign is chosen on the codes alone. No training data is used.")
    p.add_argument("checkpoint")
    p.add_argument("--classes", type=int, nargs="+", required=True, help="class indices to forget")
    p.add_argument("--lambda1", type=float, help="paper: 1e-3 MNIST, 1e-5 CIFAR-10")
    p.add_argument("--lambda2", type=float, help="paper: 10 MNIST, 1e4 CIFAR-10")
    p.add_argument("--lambda", dest="lambda_rule", metavar="auto",
                   help="'auto': lambda chosen for this request from the codes alone, instead of "
                   "--lambda1/--lambda2")
    p.add_argument("--out", required=True, help="checkpoint of the forgotten model")
    p.add_argument("--record", help="also write the forget record (JSON) here")
    p.add_argument("--fisher-method", choices=METHODS, default=METHODS[0])
    common(p, data=False)
    p.set_defaults(func=cmd_forget)

    p = sub.add_parser("evaluate", help="test accuracy, A_R and E_F of a checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--forget-classes", type=int, nargs="+",
                   help="classes counted as forgotten (default: those the checkpoint forgot)")
    p.add_argument("--dataset", help="default: the data set the checkpoint was trained on")
    p.add_argument("--json", help="also write the metrics (JSON) here")
    common(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("grid", help="evaluate a lambda1 x lambda2 grid (Fisher computed once)")
    p.add_argument("checkpoint")
    p.add_argument("--forget-classes", type=int, nargs="+", required=True)
    p.add_argument("--lambda1", type=float, nargs="+", default=PAPER_LAMBDA1)
    p.add_argument("--lambda2", type=float, nargs="+", default=PAPER_LAMBDA2)
    p.add_argument("--dataset", help="default: the data set the checkpoint was trained on")
    p.add_argument("--out", required=True, help="CSV of lambda1, lambda2, sign, A_R, E_F")
    p.add_argument("--fisher-method", choices=METHODS, default=METHODS[0])
    common(p)
    p.set_defaults(func=cmd_grid)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from .models import load_plugins

        load_plugins(getattr(args, "plugin", None))
        args.func(args)
    except MnemuError as err:
        print(f"mnemu {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mnemu {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    """The console script (and ``python -m mnemu.cli``): :func:`main`, then the process ends at
    once, without Python's teardown (a 2.4 s ``mnemu forget`` of a small CNN took 0.3 s less;
    see the README). Every file a command writes is complete by then (written atomically).
    Tests and other Python callers use :func:`main`, which returns."""
    exit_process(main())


if __name__ == "__main__":
    run()
