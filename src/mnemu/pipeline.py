"""The workflow's steps: each reads files, calls the library and writes its outputs atomically.

The Snakemake scripts in ``scripts/`` are one call into this module, so every step can be run and
tested without Snakemake. Metrics are percentages; times are seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import fields
from pathlib import Path

import torch

from .checkpoint import Checkpoint, load_checkpoint
from .data import DataSplits, loader, prepare_dataset
from .errors import MnemuError
from .files import atomic_write, read_csv, write_csv, write_json
from .fisher import class_fisher
from .forget import Forgetter, check_classes, forget_grid
from .lambdas import auto_lambdas, select_lambdas
from .metrics import evaluate
from .train import TrainSettings, default_device, train_checkpoint

log = logging.getLogger("mnemu")


@contextlib.contextmanager
def job(log_path: str | None, threads: int = 1) -> Iterator[None]:
    """Run a workflow step with its log going to ``log_path`` and ``threads`` CPU threads.

    A :class:`MnemuError` is logged as one line, anything else with its traceback, and re-raised:
    the job fails with the reason in its log, and nothing half-written is left behind (outputs
    are written atomically).
    """
    torch.set_num_threads(max(1, int(threads)))
    handlers = [logging.StreamHandler(sys.stderr)]
    stream = None
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        stream = open(log_path, "w")
        handlers = [logging.StreamHandler(stream)]
    logging.basicConfig(level=logging.INFO, handlers=handlers, force=True,
                        format="%(asctime)s %(levelname)s %(message)s")
    try:
        yield
    except MnemuError as err:
        log.error("%s", err)
        raise
    except Exception:
        log.exception("the step failed")
        raise
    finally:
        logging.shutdown()
        if stream is not None:
            stream.close()


def _device() -> torch.device:
    device = default_device()
    log.info("device: %s", device)
    return device


def _parse_classes(tag: str) -> list[int]:
    return [int(c) for c in tag.split("+")]


# --- data --------------------------------------------------------------------------------------


def prepare_data_step(dataset: str, data_options: dict, data_dir: str, out: str,
                      num_classes: int, model: str | None = None, pretrained: bool = False) -> None:
    """Fetch and check a data set (and pretrained weights, so that compute nodes need no network)."""
    manifest = prepare_dataset(dataset, data_dir, **data_options)
    if manifest["num_classes"] != num_classes:
        raise MnemuError(
            f"data set {dataset} has {manifest['num_classes']} classes with these options, but the "
            f"config says num_classes: {num_classes}; fix the config entry")
    if pretrained and model:
        from .models import create_model

        create_model(model, num_classes, manifest["input_shape"], pretrained=True)
        manifest["pretrained_weights"] = model
    log.info("%s: %d train / %d test samples, %d classes", dataset, manifest["train_size"],
             manifest["test_size"], manifest["num_classes"])
    write_json(out, manifest)


# --- training ----------------------------------------------------------------------------------


def train_step(bench: dict, run: dict, data_dir: str, out_model: str, out_metrics: str) -> None:
    """Train one model with codes (Alg. 1) and record its test accuracy (Fig. 2).

    ``run`` identifies the model (benchmark, t_mix, codes, seed): it is written into every record
    this model's steps produce, so summaries need nothing but their input files."""
    allowed = {f.name for f in fields(TrainSettings)}
    settings = TrainSettings(t_mix=run["t_mix"], seed=run["seed"], code_distribution=run["codes"],
                             **{k: v for k, v in bench["train"].items() if k in allowed})
    device = _device()
    checkpoint = train_checkpoint(
        bench["dataset"], bench["model"], settings, out_model, data_root=data_dir,
        data_options=bench.get("data_options") or {}, model_options=bench.get("model_options") or {},
        pretrained=bench.get("pretrained", False), device=device)
    data = checkpoint.dataset(data_dir)
    metrics = evaluate(checkpoint.model, data.test, [], data.num_classes)
    log.info("test accuracy %.2f%%", metrics["accuracy"])
    write_json(out_metrics, {
        **run,
        "accuracy": metrics["accuracy"],
        "per_class_accuracy": metrics["per_class_accuracy"],
        "train_seconds": checkpoint.training["seconds"],
        "final_train_loss": checkpoint.training["history"][-1]["loss"],
        "settings": checkpoint.training["settings"],
        "device": str(device),
    })


# --- Fisher ------------------------------------------------------------------------------------


def _fisher_inputs(checkpoint: Checkpoint, source: str, data_dir: str):
    """Inputs and labels the Fisher is computed from: the codes, or real training samples."""
    if source == "codes":
        return checkpoint.codes, torch.arange(len(checkpoint.codes))
    options = {"augment": False}
    if source != "data":  # "dataN": the first N training samples of each class
        options["max_train_per_class"] = int(source.removeprefix("data"))
    train = checkpoint.dataset(data_dir, **options).train
    images, labels = zip(*loader(train, 256, shuffle=False))
    return torch.cat(images), torch.cat(labels)


def fisher_step(model_path: str, source: str, classes: str, data_dir: str, method: str,
                out: str) -> None:
    """Fisher of the forget and remaining classes, from the codes (Eq. 4) or from training data
    ("data" = all of it, the oracle FIM of Sec. 4.3; "dataN" = N samples per class)."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
    remain = [c for c in range(checkpoint.num_classes) if c not in forget]
    inputs, labels = _fisher_inputs(checkpoint, source, data_dir)
    began = time.perf_counter()
    f_forget, f_remain = class_fisher(checkpoint.model, inputs, labels, [forget, remain],
                                      method=method)
    seconds = time.perf_counter() - began
    log.info("Fisher from %s (%d samples) in %.3fs", source, len(inputs), seconds)
    payload = {"source": source, "forget_classes": forget, "num_samples": len(inputs),
               "method": method, "seconds": seconds,
               "forget": {n: t.cpu() for n, t in f_forget.items()},
               "remain": {n: t.cpu() for n, t in f_remain.items()}}
    atomic_write(out, lambda handle: torch.save(payload, handle))


def load_fisher(path: str, device) -> tuple[dict, dict, dict]:
    payload = torch.load(path, map_location=device, weights_only=True)
    return payload["forget"], payload["remain"], payload


# --- forgetting --------------------------------------------------------------------------------


def _test_metrics(model, data: DataSplits, forget: Sequence[int]) -> dict:
    metrics = evaluate(model, data.test, forget, data.num_classes)
    return {k: metrics[k] for k in ("A_R", "E_F", "accuracy", "per_class_accuracy")}


#: Where ``lambda: select`` scores the grid: "validation" (samples carved from the training
#: split, the default: the test split never steers the method) or "test" (the paper's practice).
SELECT_ON = ("validation", "test")


def validation_split(checkpoint: Checkpoint, data_dir: str, per_class: int):
    """The first ``per_class`` training samples of each class, without augmentation: part of
    what the model was trained on (its own training split, never the test split)."""
    if per_class < 1:
        raise MnemuError(f"validation_per_class must be at least 1, got {per_class}")
    trained = (checkpoint.data.get("options") or {}).get("max_train_per_class")
    per_class = min(per_class, trained) if trained else per_class
    return checkpoint.dataset(data_dir, augment=False, max_train_per_class=per_class).train


def lambda_grid_step(model_path: str, fisher_path: str, lambda1s: Sequence[float],
                     lambda2s: Sequence[float], run: dict, data_dir: str, out: str,
                     eta_eps: str = "per_class", validation_per_class: int = 100) -> None:
    """Alg. 2 at every (lambda1, lambda2) of the grid: the code Fisher is read once, each point is
    a perturbation, a sign choice on the codes and an evaluation on the test split (``A_R``,
    ``E_F``: the sweep figures) and on a validation split carved from the training data
    (``val_A_R``, ``val_E_F``: what ``lambda: select`` reads unless ``select_on: test``)."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    f_forget, f_remain, payload = load_fisher(fisher_path, device)
    forgetter = Forgetter(checkpoint.model, checkpoint.codes.to(device), payload["forget_classes"],
                          fisher=(f_forget, f_remain), eta_eps=eta_eps)
    data = checkpoint.dataset(data_dir)
    validation = validation_split(checkpoint, data_dir, validation_per_class)

    def scores(model) -> dict:
        test = evaluate(model, data.test, forgetter.forget, data.num_classes)
        val = evaluate(model, validation, forgetter.forget, data.num_classes)
        return {"A_R": test["A_R"], "E_F": test["E_F"], "val_A_R": val["A_R"],
                "val_E_F": val["E_F"]}

    began = time.perf_counter()
    rows = forget_grid(forgetter, [(l1, l2) for l1 in lambda1s for l2 in lambda2s], scores)
    log.info("%d grid points in %.1fs", len(rows), time.perf_counter() - began)
    tag = classes_tag(forgetter.forget)
    write_csv(out, [{**run, "forget": tag, **row} for row in rows])


def choose_lambda_step(benchmark: str, setting, grid_paths: Sequence[str], out: str,
                       select_on: str = "validation") -> None:
    """The lambdas every forget job of a benchmark uses: fixed by the config, "auto" (chosen per
    forget request from the codes), or the grid point with the highest mean A_R + E_F over the
    seeds' grids (App. A), scored on the validation split or, with ``select_on="test"``, on the
    test split as the paper did."""
    if setting == "auto":
        write_json(out, {"benchmark": benchmark, "lambda_rule": "auto", "selected": False})
        return
    if setting != "select":
        lambda1, lambda2 = setting
        write_json(out, {"benchmark": benchmark, "lambda1": lambda1, "lambda2": lambda2,
                         "lambda_rule": "fixed", "selected": False})
        return
    if select_on not in SELECT_ON:
        raise MnemuError(f"select_on must be one of {', '.join(SELECT_ON)}, got {select_on!r}")
    metrics = ("val_A_R", "val_E_F") if select_on == "validation" else ("A_R", "E_F")
    choice = select_lambdas([read_csv(path) for path in grid_paths], metrics=metrics)
    log.info("selected lambda1 %g, lambda2 %g (mean A_R + E_F %.2f on %s over %d seeds)",
             choice["lambda1"], choice["lambda2"], choice["mean_score"], select_on,
             len(grid_paths))
    write_json(out, {"benchmark": benchmark, "lambda1": choice["lambda1"],
                     "lambda2": choice["lambda2"], "lambda_rule": f"select on {select_on}",
                     "selected": True, "select_on": select_on,
                     "mean_score": choice["mean_score"], "grids": list(grid_paths)})


def forget_step(model_path: str, lambda_path: str | None, classes: str, method: str, run: dict,
                data_dir: str, out_metrics: str, out_model: str, eta_eps: str = "per_class") -> None:
    """Alg. 2 at the benchmark's lambdas (``lambda_path``: a choose_lambda output) or, with
    ``lambda_path`` None or saying "auto", at lambdas chosen for this request from the codes
    alone; timed, with test A_R / E_F before and after."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
    lambdas = json.loads(Path(lambda_path).read_text()) if lambda_path else {"lambda_rule": "auto"}
    data = checkpoint.dataset(data_dir)
    before = _test_metrics(checkpoint.model, data, forget)
    # Alg. 2 from scratch (code Fisher included), as a user would run it.
    forgetter = Forgetter(checkpoint.model, checkpoint.codes.to(device), forget, method=method,
                          eta_eps=eta_eps)
    if lambdas.get("lambda_rule") == "auto":
        model, record = auto_lambdas(forgetter)
    else:
        model, record = forgetter.apply(lambdas["lambda1"], lambdas["lambda2"])
    rule = lambdas.get("lambda_rule", "select" if lambdas.get("selected") else "fixed")
    after = _test_metrics(model, data, forget)
    log.info("forgot %s with lambda1 %g, lambda2 %g (%s) in %.3fs: A_R %.2f -> %.2f, "
             "E_F %.2f -> %.2f", forget, record["lambda1"], record["lambda2"], rule,
             record["seconds"]["total"], before["A_R"], after["A_R"], before["E_F"], after["E_F"])
    Checkpoint(model, checkpoint.codes, checkpoint.model_spec, checkpoint.data,
               checkpoint.training, record).save(out_model)
    write_json(out_metrics, {
        **run, "forget": classes_tag(forget), "forget_classes": forget,
        "before": before, "after": after, "lambda_rule": rule,
        "lambda1": record["lambda1"], "lambda2": record["lambda2"], "sign": record["sign"],
        "tie": record["tie"], "code_scores": record["code_scores"], "seconds": record["seconds"],
        "alpha": record["alpha"], "fisher_method": record["fisher_method"],
        "eta_eps": record["eta_eps"], "device": str(device),
        **({"auto": record["auto"]} if "auto" in record else {}),
    })


# --- summaries ---------------------------------------------------------------------------------


def classes_tag(classes: Sequence[int]) -> str:
    """[2, 0] -> "0+2": the one spelling of a class set in paths and records."""
    return "+".join(str(c) for c in sorted(classes))


def _flatten(obj: dict, prefix: str = "") -> dict:
    """Nested dicts -> dotted keys; lists are dropped (per-class vectors stay in the JSON)."""
    flat = {}
    for key, value in obj.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif not isinstance(value, list):
            flat[name] = value
    return flat


def summarise_step(files: Sequence[str], out: str) -> None:
    """One tidy CSV from per-run JSON records and CSV tables: each record carries its own
    identity (benchmark, t_mix, codes, seed, forget classes), so the files are all it needs."""
    rows = []
    for path in files:
        if str(path).endswith(".json"):
            rows.append(_flatten(json.loads(Path(path).read_text())))
        else:
            rows.extend(read_csv(path))
    if not rows:
        raise MnemuError(f"nothing to summarise into {out}: no input rows")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    write_csv(out, [{c: row.get(c, "") for c in columns} for row in rows])
