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
from .lambdas import select_lambdas
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


def lambda_grid_step(model_path: str, fisher_path: str, lambda1s: Sequence[float],
                     lambda2s: Sequence[float], run: dict, data_dir: str, out: str,
                     eta_eps: str = "per_class") -> None:
    """Alg. 2 at every (lambda1, lambda2) of the grid: the code Fisher is read once, each point is
    a perturbation, a sign choice on the codes and an evaluation on the test split."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    f_forget, f_remain, payload = load_fisher(fisher_path, device)
    forgetter = Forgetter(checkpoint.model, checkpoint.codes.to(device), payload["forget_classes"],
                          fisher=(f_forget, f_remain), eta_eps=eta_eps)
    data = checkpoint.dataset(data_dir)
    began = time.perf_counter()
    rows = forget_grid(forgetter, [(l1, l2) for l1 in lambda1s for l2 in lambda2s],
                       lambda model: {k: v for k, v in _test_metrics(
                           model, data, forgetter.forget).items() if k in ("A_R", "E_F")})
    log.info("%d grid points in %.1fs", len(rows), time.perf_counter() - began)
    tag = classes_tag(forgetter.forget)
    write_csv(out, [{**run, "forget": tag, **row} for row in rows])


def choose_lambda_step(benchmark: str, setting, grid_paths: Sequence[str], out: str) -> None:
    """The lambdas every forget job of a benchmark uses: fixed by the config, or the grid point
    with the highest mean A_R + E_F over the seeds' grids (App. A)."""
    if setting != "select":
        lambda1, lambda2 = setting
        write_json(out, {"benchmark": benchmark, "lambda1": lambda1, "lambda2": lambda2,
                         "selected": False})
        return
    choice = select_lambdas([read_csv(path) for path in grid_paths])
    log.info("selected lambda1 %g, lambda2 %g (mean A_R + E_F %.2f over %d seeds)",
             choice["lambda1"], choice["lambda2"], choice["mean_score"], len(grid_paths))
    write_json(out, {"benchmark": benchmark, "lambda1": choice["lambda1"],
                     "lambda2": choice["lambda2"], "selected": True,
                     "mean_score": choice["mean_score"], "grids": list(grid_paths)})


def forget_step(model_path: str, lambda_path: str, classes: str, method: str, run: dict,
                data_dir: str, out_metrics: str, out_model: str, eta_eps: str = "per_class") -> None:
    """Alg. 2 at the chosen lambdas, timed, with test A_R / E_F before and after."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
    lambdas = json.loads(Path(lambda_path).read_text())
    data = checkpoint.dataset(data_dir)
    before = _test_metrics(checkpoint.model, data, forget)
    # Alg. 2 from scratch (code Fisher included), as a user would run it.
    forgetter = Forgetter(checkpoint.model, checkpoint.codes.to(device), forget, method=method,
                          eta_eps=eta_eps)
    model, record = forgetter.apply(lambdas["lambda1"], lambdas["lambda2"])
    after = _test_metrics(model, data, forget)
    log.info("forgot %s with lambda1 %g, lambda2 %g in %.3fs: A_R %.2f -> %.2f, E_F %.2f -> %.2f",
             forget, lambdas["lambda1"], lambdas["lambda2"], record["seconds"]["total"],
             before["A_R"], after["A_R"], before["E_F"], after["E_F"])
    Checkpoint(model, checkpoint.codes, checkpoint.model_spec, checkpoint.data,
               checkpoint.training, record).save(out_model)
    write_json(out_metrics, {
        **run, "forget": classes_tag(forget), "forget_classes": forget,
        "before": before, "after": after,
        "lambda1": record["lambda1"], "lambda2": record["lambda2"], "sign": record["sign"],
        "tie": record["tie"], "code_scores": record["code_scores"], "seconds": record["seconds"],
        "alpha": record["alpha"], "fisher_method": record["fisher_method"],
        "eta_eps": record["eta_eps"], "device": str(device),
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


# --- Table 4: pretrained models fine-tuned with codes, then forgetting (Sec. 4.4) ---------------


def _model_spec(arch: dict, manifest_path: str) -> dict:
    """The architecture of an ``imagenet.architectures`` entry on the data set a manifest
    (``prepare_data_step``'s output) describes."""
    manifest = json.loads(Path(manifest_path).read_text())
    return {"name": arch["model"], "num_classes": manifest["num_classes"],
            "input_shape": manifest["input_shape"], "options": arch.get("model_options") or {}}


def _build(spec: dict, pretrained: bool = False):
    from .models import create_model

    return create_model(spec["name"], spec["num_classes"], spec["input_shape"],
                        pretrained=pretrained, **spec["options"])


def pretrained_weights_step(arch: dict, manifest: str, out: str, seed: int = 0) -> None:
    """The weights Table 4 starts from, as one state_dict file that compute nodes read: the file
    the config names, timm's pretrained weights (downloaded here, on the login node), or a seeded
    random initialisation (``pretrained: false``, the small configuration's stand-in)."""
    from .models import load_weights, missing_weights

    problem = missing_weights(arch["model"], arch.get("pretrained", False), arch.get("weights"))
    if problem:
        raise MnemuError(problem)
    spec = _model_spec(arch, manifest)
    torch.manual_seed(seed)
    from_timm = bool(arch.get("pretrained")) and not arch.get("weights")
    model = _build(spec, pretrained=from_timm)
    if arch.get("weights"):
        load_weights(model, arch["weights"])
    source = arch.get("weights") or ("timm" if from_timm else f"random (seed {seed})")
    log.info("%s: weights from %s, %d parameters", arch["model"], source,
             sum(p.numel() for p in model.parameters()))
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(out, lambda handle: torch.save(state, handle))


def finetune_step(arch: dict, section: dict, run: dict, weights: str, codes: str, data_dir: str,
                  out_model: str, out_record: str) -> None:
    """Fine-tune pretrained weights with codes for ``arch["steps"]`` optimiser steps (App. A),
    saving the training state every ``save_every_steps`` steps (a rerun resumes there). No
    evaluation here: that is its own job."""
    allowed = {f.name for f in fields(TrainSettings)}
    settings = TrainSettings(t_mix=section["t_mix"], seed=run["seed"], code_distribution=codes,
                             steps=arch["steps"], epochs=1,
                             **{k: v for k, v in section["train"].items() if k in allowed})
    device = _device()
    checkpoint = train_checkpoint(
        section["dataset"], arch["model"], settings, out_model, data_root=data_dir,
        data_options=section.get("data_options") or {},
        model_options=arch.get("model_options") or {}, init_weights=weights, device=device)
    seconds = checkpoint.training["seconds"]
    log.info("fine-tuned %s for %d steps in %.1fs", arch["model"], arch["steps"], seconds)
    write_json(out_record, {**run, "steps": arch["steps"], "seconds": seconds,
                            "final_train_loss": checkpoint.training["history"][-1]["loss"],
                            "device": str(device)})


def forget_only_step(model_path: str, fisher_path: str, lambdas: Sequence[float], run: dict,
                     out_model: str, out_record: str, eta_eps: str = "per_class") -> None:
    """Alg. 2 with the code Fisher of the Fisher job, timed, no evaluation (its own job): the
    recorded total is the Fisher job's seconds plus this job's eta, perturbation and sign
    choice, i.e. the whole of Alg. 2."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    f_forget, f_remain, payload = load_fisher(fisher_path, device)
    forgetter = Forgetter(checkpoint.model, checkpoint.codes.to(device), payload["forget_classes"],
                          fisher=(f_forget, f_remain), eta_eps=eta_eps)
    model, record = forgetter.apply(*lambdas)
    seconds = dict(record["seconds"])
    seconds["eta"] = seconds.pop("fisher")  # with a given Fisher, only eta was computed here
    seconds["fisher"] = payload["seconds"]
    seconds["total"] = payload["seconds"] + seconds["eta"] + seconds["perturb"] + seconds["select"]
    record = {**record, "seconds": seconds, "fisher_method": payload["method"]}
    log.info("forgot %s in %.3fs (Fisher %.3fs)", forgetter.forget, seconds["total"],
             seconds["fisher"])
    Checkpoint(model, checkpoint.codes, checkpoint.model_spec, checkpoint.data,
               checkpoint.training, record).save(out_model)
    write_json(out_record, {**run, "forget": classes_tag(forgetter.forget), "sign": record["sign"],
                            "lambda1": record["lambda1"], "lambda2": record["lambda2"],
                            "seconds": seconds, "device": str(device)})


def evaluate_step(model_path: str, stage: str, forget_classes: Sequence[int], run: dict,
                  section: dict, data_dir: str, out: str, arch: dict | None = None,
                  manifest: str | None = None, batch_size: int = 256) -> None:
    """A_R and E_F of one model on the test split (ImageNet: the 50,000 validation images), with
    the seconds the stage took (fine-tuning, or the whole forget step). ``model_path`` is a
    checkpoint, or (stage "pretrained", with ``arch`` and ``manifest``) a weights file."""
    from .data import load_dataset
    from .models import load_weights

    device = _device()
    seconds = None
    if arch is not None:
        model = _build(_model_spec(arch, manifest))
        load_weights(model, model_path)
        model.to(device)
    else:
        checkpoint = load_checkpoint(model_path, device)
        model = checkpoint.model
        seconds = (checkpoint.forgotten["seconds"]["total"] if checkpoint.forgotten
                   else checkpoint.training.get("seconds"))
    data = load_dataset(section["dataset"], data_dir, **(section.get("data_options") or {}))
    num_workers = section["train"].get("num_workers", 0)
    began = time.perf_counter()
    metrics = evaluate(model, data.test, forget_classes, data.num_classes, batch_size=batch_size,
                       num_workers=num_workers)
    log.info("%s: A_R %.2f, E_F %.2f on %d test images in %.1fs", stage, metrics["A_R"],
             metrics["E_F"], len(data.test), time.perf_counter() - began)
    write_json(out, {**run, "stage": stage, "forget": classes_tag(forget_classes),
                     "A_R": metrics["A_R"], "E_F": metrics["E_F"], "accuracy": metrics["accuracy"],
                     "seconds": seconds, "test_size": len(data.test), "device": str(device)})


def forget_time_scaling_step(arch: dict, classes: Sequence[int], input_size: int, repeats: int,
                             lambdas: Sequence[float], out: str, method: str = "hooks") -> None:
    """Whole Alg. 2 (code Fisher, eta, perturbation, sign choice) timed at each number of classes
    C, on a randomly initialised model with a C-way head and C codes at 3 x input_size^2
    (forget time does not depend on trained weights), with the peak memory of each point: GPU
    memory allocated on CUDA, the process's resident high-water mark on a CPU."""
    import resource
    import statistics

    from .codes import make_codes
    from .forget import forget

    device = _device()
    shape = (3, input_size, input_size)
    rows = []
    for index, num_classes in enumerate(classes):
        torch.manual_seed(0)
        spec = {"name": arch["model"], "num_classes": num_classes, "input_shape": list(shape),
                "options": arch.get("model_options") or {}}
        model = _build(spec).to(device).eval()
        codes = make_codes(num_classes, shape, seed=0).to(device)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times, parts = [], None
        for attempt in range((1 if index else 2) * repeats):  # the first point warms up too
            began = time.perf_counter()
            _, record = forget(model, codes, [0], *lambdas, method=method)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            times.append(time.perf_counter() - began)
            parts = record["seconds"]
        times = times[-repeats:]
        peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
                else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
        row = {"architecture": arch["id"], "model": arch["model"], "classes": num_classes,
               "input_size": input_size, "seconds": statistics.median(times),
               "fisher_seconds": parts["fisher"], "perturb_seconds": parts["perturb"],
               "select_seconds": parts["select"], "peak_memory_mb": peak / 2**20,
               "memory": "gpu_allocated" if device.type == "cuda" else "process_rss",
               "device": str(device), "threads": torch.get_num_threads(), "repeats": repeats}
        log.info("%s, C = %d: %.3fs, peak %.0f MB", arch["id"], num_classes, row["seconds"],
                 row["peak_memory_mb"])
        rows.append(row)
        del model, codes
    write_csv(out, rows)
