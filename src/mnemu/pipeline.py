"""The workflow's steps: each reads files, calls the library and writes its outputs atomically.

The Snakemake scripts in ``scripts/`` are one call into this module, so every step can be run and
tested without Snakemake. Metrics are percentages; times are seconds.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import TypeVar

import torch

from .analysis import fisher_error, gradient_stats, loss_gradients
from .baselines import Unsupported, check_supported, default_settings, run_baseline, timed
from .checkpoint import Checkpoint, first_line, load_checkpoint
from .data import DataSplits, prepare_dataset
from .errors import DamagedFile, MnemuError
from .files import atomic_write, read_csv, write_csv, write_json
from .fisher import class_fisher
from .forgetting import Forgetter, check_classes, forget_grid
from .jobs import classes_tag, job  # noqa: F401  (job: the scripts import it with their step)
from .lambdas import auto_lambdas, select_lambdas
from .metrics import evaluate, forgetting_metrics
from .progress import eta
from .train import TrainSettings, default_device, train_checkpoint

log = logging.getLogger("mnemu")
T = TypeVar("T")


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


def train_settings(bench: dict, run: dict) -> dict:
    """The :class:`TrainSettings` fields of a model: the benchmark's ``train`` entry with the
    run's t_mix, seed and code distribution."""
    allowed = {f.name for f in fields(TrainSettings)}
    return {**{k: v for k, v in bench["train"].items() if k in allowed},
            "t_mix": run["t_mix"], "seed": run["seed"], "code_distribution": run["codes"]}


def train_step(bench: dict, run: dict, data_dir: str, out_model: str, out_metrics: str) -> None:
    """Train one model with codes (Alg. 1) and record its test accuracy (Fig. 2).

    ``run`` identifies the model (benchmark, t_mix, codes, seed): it is written into every record
    this model's steps produce, so summaries need nothing but their input files."""
    settings = TrainSettings(**train_settings(bench, run))
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


def _training_samples(checkpoint: Checkpoint, source: str, data_dir: str):
    """The real training samples a ``data`` / ``dataN`` source names, as a data set read a chunk
    at a time (a whole training split never sits in memory), without augmentation: all of the
    model's training split, or the first N of each of its classes (never more than it trained on)."""
    options = {"augment": False}
    if source != "data":  # "dataN"
        n = int(source.removeprefix("data"))
        trained = (checkpoint.data.get("options") or {}).get("max_train_per_class")
        options["max_train_per_class"] = min(n, trained) if trained else n
    return checkpoint.dataset(data_dir, **options).train


def fisher_inputs(checkpoint: Checkpoint, source: str, data_dir: str):
    """What the Fisher is computed from: the codes ``(tensor, labels)``, or real training
    samples ``(Dataset, its labels)``."""
    if source == "codes":
        return checkpoint.codes, torch.arange(len(checkpoint.codes))
    train = _training_samples(checkpoint, source, data_dir)
    return train, train.labels


def fisher_step(model_path: str, source: str, classes: str, data_dir: str, method: str,
                out: str) -> None:
    """Fisher of the forget and remaining classes, from the codes (Eq. 4) or from training data
    ("data" = all of it, the oracle FIM of Sec. 4.3; "dataN" = N samples per class)."""
    device = _device()
    checkpoint = read_output(model_path, "train", lambda p: load_checkpoint(p, device))
    forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
    remain = [c for c in range(checkpoint.num_classes) if c not in forget]
    inputs, labels = fisher_inputs(checkpoint, source, data_dir)
    began = time.perf_counter()
    f_forget, f_remain = class_fisher(checkpoint.model, inputs, labels, [forget, remain],
                                      method=method)
    seconds = time.perf_counter() - began
    log.info("Fisher from %s (%d samples) in %.3fs", source, len(inputs), seconds)
    payload = {"source": source, "forget_classes": forget, "num_samples": len(inputs),
               "num_classes": checkpoint.num_classes,
               "method": method, "seconds": seconds,
               "forget": {n: t.cpu() for n, t in f_forget.items()},
               "remain": {n: t.cpu() for n, t in f_remain.items()}}
    atomic_write(out, lambda handle: torch.save(payload, handle))


def load_fisher(path: str, device) -> tuple[dict, dict, dict]:
    """The Fisher of the forget and remaining classes (``{parameter name: tensor}`` each, shaped
    like the parameters) and the whole record that :func:`fisher_step` wrote."""
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
        return payload["forget"], payload["remain"], payload
    except Exception as err:
        reason = first_line(err) if not isinstance(err, (KeyError, TypeError)) else \
            "not a Fisher record"
        raise DamagedFile(f"Fisher file {path} cannot be read ({reason}); it is truncated or "
                          f"corrupted: compute it again", path, reason) from None


def read_output(path: str, rule: str, read: Callable[[str], T]) -> T:
    """``read(path)`` for a file that the workflow's rule ``rule`` wrote. A damaged file (a job cut
    off before atomic writes existed, a disk fault, a bad copy) gives one error that names the
    file, the rule and the fix, instead of a traceback in a later rule's log."""
    try:
        return read(path)
    except DamagedFile as err:
        raise MnemuError(
            f"{path} cannot be read ({err.reason}): it is truncated or corrupted. It was written "
            f"by rule {rule}: delete it and run snakemake again to rebuild it (after a run that "
            f"was cut off: snakemake --rerun-incomplete)") from None


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
    checkpoint = read_output(model_path, "train", lambda p: load_checkpoint(p, device))
    f_forget, f_remain, payload = read_output(fisher_path, "fisher",
                                              lambda p: load_fisher(p, device))
    forgetter = Forgetter(checkpoint.model, checkpoint.codes.to(device), payload["forget_classes"],
                          fisher=(f_forget, f_remain), eta_eps=eta_eps)
    data = checkpoint.dataset(data_dir)
    validation = validation_split(checkpoint, data_dir, validation_per_class)
    points = [(l1, l2) for l1 in lambda1s for l2 in lambda2s]
    began, done = time.perf_counter(), 0

    def scores(model) -> dict:
        nonlocal done
        test = evaluate(model, data.test, forgetter.forget, data.num_classes)
        val = evaluate(model, validation, forgetter.forget, data.num_classes)
        done += 1
        log.info("grid point %d/%d: A_R %.2f E_F %.2f, ETA %s", done, len(points), test["A_R"],
                 test["E_F"], eta(time.perf_counter() - began, done, len(points)))
        return {"A_R": test["A_R"], "E_F": test["E_F"], "val_A_R": val["A_R"],
                "val_E_F": val["E_F"]}

    rows = forget_grid(forgetter, points, scores)
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
    checkpoint = read_output(model_path, "train", lambda p: load_checkpoint(p, device))
    forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
    lambdas = json.loads(Path(lambda_path).read_text()) if lambda_path else {"lambda_rule": "auto"}
    data = checkpoint.dataset(data_dir)
    before = _test_metrics(checkpoint.model, data, forget)

    # The model the result is written into is made before the timer, as run_baseline makes each
    # baseline's working copy: Fig. 3 times the same work for every method.
    working = copy.deepcopy(checkpoint.model)

    def alg2():  # from scratch (code Fisher included), as a user would run it
        forgetter = Forgetter(checkpoint.model, checkpoint.codes.to(device), forget,
                              method=method, eta_eps=eta_eps)
        if lambdas.get("lambda_rule") == "auto":
            return auto_lambdas(forgetter, into=working)
        return forgetter.apply(lambdas["lambda1"], lambdas["lambda2"], into=working)

    # the baselines' timer (Fig. 3 compares like with like)
    (model, record), timer = timed(alg2, device)
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
        "eta_eps": record["eta_eps"], "device": str(device), "timer": timer,
        **({"auto": record["auto"]} if "auto" in record else {}),
    })


#: The keys of a run_baseline record that its timer wrote (see mnemu.baselines.timed).
_TIMER_KEYS = ("seconds", "device", "device_name", "peak_memory_bytes", "memory_kind",
               "rss_start_bytes", "rss_growth_bytes")


def baseline_step(model_path: str, method: str, classes: str, settings: dict | None, run: dict,
                  data_dir: str, out_metrics: str, out_model: str | None = None) -> None:
    """Baseline ``method`` (mnemu.baselines) on a model, timed by the one timer, with test A_R /
    E_F before and after. A method that cannot handle the model writes its reason under
    ``unsupported`` instead (tables show a dash with it). ``settings`` override the method's
    defaults; a method with a ``seed`` setting gets the run's. ``out_model``: keep the result
    (retraining's model, for later studies)."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
    identity = {**run, "forget": classes_tag(forget), "forget_classes": forget, "method": method}
    try:
        check_supported(method, checkpoint.model)
    except Unsupported as err:
        log.info("%s: unsupported (%s)", method, err.reason)
        write_json(out_metrics, {**identity, "unsupported": err.reason, "device": str(device)})
        return
    settings = dict(settings or {})
    if "seed" in default_settings(method):
        settings["seed"] = run["seed"]
    data = checkpoint.dataset(data_dir)
    before = _test_metrics(checkpoint.model, data, forget)
    model, record = run_baseline(method, checkpoint.model, data, forget, settings,
                                 codes=checkpoint.codes, device=device)
    after = _test_metrics(model, data, forget)
    log.info("%s forgot %s in %.3fs: A_R %.2f -> %.2f, E_F %.2f -> %.2f", method, forget,
             record["seconds"], before["A_R"], after["A_R"], before["E_F"], after["E_F"])
    if out_model:
        training = {"settings": record["settings"], "method": method, "forget_classes": forget,
                    "seconds": record["seconds"]}
        Checkpoint(model, checkpoint.codes, checkpoint.model_spec, checkpoint.data,
                   training).save(out_model)
    write_json(out_metrics, {
        **identity, "before": before, "after": after,
        "timer": {k: record[k] for k in _TIMER_KEYS if k in record},
        "prepare": record["prepare"], "settings": record["settings"], "info": record["info"],
        "source": record["source"], "device": str(device),
    })


# --- why codes work (Sec. 4.3, App. A and B) ---------------------------------------------------


def forget_w_data_step(model_path: str, fisher_path: str, lambda_path: str, data_dir: str,
                       run: dict, out: str, eta_eps: str = "per_class") -> None:
    """"Ours-w-data" (Fig. 4): Alg. 2 with a Fisher from real training samples (``fisher_path``,
    source ``dataN`` or ``data``) instead of codes, at the benchmark's lambdas. The sign is chosen
    on the same real samples the Fisher used (the model, trained without codes, has no codes to
    choose on); test A_R / E_F before and after."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    f_forget, f_remain, payload = load_fisher(fisher_path, device)
    if payload["source"] == "codes":
        raise MnemuError(f"{fisher_path} is a code Fisher; ours-w-data takes a Fisher from "
                         "training data (source data or dataN)")
    forget = payload["forget_classes"]
    samples = _training_samples(checkpoint, payload["source"], data_dir)
    lambdas = json.loads(Path(lambda_path).read_text())
    data = checkpoint.dataset(data_dir)
    before = _test_metrics(checkpoint.model, data, forget)
    forgetter = Forgetter(checkpoint.model, samples, forget, labels=samples.labels,
                          num_classes=checkpoint.num_classes, fisher=(f_forget, f_remain),
                          eta_eps=eta_eps)
    model, record = forgetter.apply(lambdas["lambda1"], lambdas["lambda2"])
    after = _test_metrics(model, data, forget)
    per_class = len(samples) / checkpoint.num_classes
    log.info("ours-w-data from %s (%d samples): A_R %.2f -> %.2f, E_F %.2f -> %.2f",
             payload["source"], len(samples), before["A_R"], after["A_R"], before["E_F"],
             after["E_F"])
    write_json(out, {
        **run, "forget": classes_tag(forget), "source": payload["source"],
        "num_samples": len(samples), "samples_per_class": per_class,
        "before": before, "after": after, "lambda1": record["lambda1"],
        "lambda2": record["lambda2"], "sign": record["sign"], "tie": record["tie"],
        "seconds": record["seconds"], "eta_eps": record["eta_eps"], "device": str(device),
    })


def fim_error_step(fisher_path: str, oracle_path: str, run: dict, out: str) -> None:
    """The FIM approximation error (Figs. 5 and 10) of one Fisher against the oracle of the same
    model (all its training data), for the forget and the remaining classes' Fisher."""
    f_forget, f_remain, payload = load_fisher(fisher_path, "cpu")
    o_forget, o_remain, oracle = load_fisher(oracle_path, "cpu")
    if oracle["source"] != "data" or oracle["forget_classes"] != payload["forget_classes"]:
        raise MnemuError(f"{oracle_path} is not the oracle Fisher (source data) of the same "
                         f"forget classes as {fisher_path}; pass data_forget<classes>.pt")
    errors = {"forget": fisher_error(f_forget, o_forget),
              "remain": fisher_error(f_remain, o_remain)}
    log.info("FIM error of %s: forget %.3e, remain %.3e", payload["source"], errors["forget"],
             errors["remain"])
    write_json(out, {**run, "forget": classes_tag(payload["forget_classes"]),
                     "source": payload["source"], "num_samples": payload["num_samples"],
                     "samples_per_class": payload["num_samples"] / payload["num_classes"],
                     "num_parameters": sum(t.numel() for t in f_forget.values()),
                     "error": errors})


def layer_gradients_step(model_path: str, classes: str, data_dir: str, run: dict,
                         out: str) -> None:
    """The loss gradient at the trained weights (Table 6, App. B) for the whole training loss,
    the forget classes' and the remaining classes' (each the mean cross-entropy over their real
    training samples, no augmentation, eval mode), as per-tensor sums: any grouping of tensors
    is made from them later."""
    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
    remain = [c for c in range(checkpoint.num_classes) if c not in forget]
    train = _training_samples(checkpoint, "data", data_dir)
    began = time.perf_counter()
    whole, g_forget, g_remain = loss_gradients(
        checkpoint.model, train, None, [forget + remain, forget, remain])
    log.info("loss gradients over %d samples in %.1fs", len(train), time.perf_counter() - began)
    write_json(out, {**run, "forget": classes_tag(forget), "num_samples": len(train),
                     "gradients": {"whole": gradient_stats(whole),
                                   "forget": gradient_stats(g_forget),
                                   "remain": gradient_stats(g_remain)}})


# --- privacy and robustness (App. C) -----------------------------------------------------------


def text_embeddings_step(manifest_path: str, encoder: str, out: str) -> None:
    """The class names' text embeddings (App. C.6), by a real text encoder, cached in ``out``."""
    from .clip_style import PROMPT, encode_class_names

    names = json.loads(Path(manifest_path).read_text())["class_names"]
    began = time.perf_counter()
    embeddings = encode_class_names(names, encoder)
    log.info("%d class names encoded by %s into %d dimensions in %.1fs", len(names), encoder,
             embeddings.shape[1], time.perf_counter() - began)
    payload = {"embeddings": embeddings, "class_names": names, "encoder": encoder,
               "prompt": PROMPT}
    atomic_write(out, lambda handle: torch.save(payload, handle))


def _unaugmented(checkpoint: Checkpoint, data_dir: str) -> DataSplits:
    """The model's data with training samples as they are (no crop or flip): what it memorised."""
    return checkpoint.dataset(data_dir, augment=False)


def membership_step(models: dict, classes: str, data_dir: str, run: dict, out_aucs: str,
                    out_losses: str) -> None:
    """Membership inference on the forget classes (App. C.1): members = their training samples,
    non-members = their test samples. ``models`` maps a role (``trained``, ``forgotten``,
    ``retrained``) to a checkpoint; per role, the AUC of each attack (mnemu.privacy) and every
    sample's loss (Fig. 11)."""
    from .privacy import membership_aucs, of_classes, sample_features

    device = _device()
    aucs, losses = [], []
    for role, path in models.items():
        checkpoint = load_checkpoint(path, device)
        forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
        data = _unaugmented(checkpoint, data_dir)
        features = {split: sample_features(checkpoint.model, of_classes(getattr(data, split),
                                                                        forget))["features"]
                    for split in ("train", "test")}
        identity = {**run, "forget": classes_tag(forget), "model": role}
        for attack, auc in membership_aucs(features["train"], features["test"],
                                           seed=run["seed"]).items():
            log.info("%s model, %s attack: AUC %.3f", role, attack, auc)
            aucs.append({**identity, "attack": attack, "auc": auc,
                         "members": len(features["train"]), "non_members": len(features["test"])})
        losses += [{**identity, "split": split, "loss": float(loss)}
                   for split, f in features.items() for loss in f[:, 0]]
    write_csv(out_aucs, aucs)
    write_csv(out_losses, losses)


def class_losses_step(model_path: str, groups: dict, data_dir: str, run: dict, out: str) -> None:
    """Every training sample's loss, labelled by the group of its class (Fig. 12: ``groups`` maps
    a name, e.g. ``unused``, to class indices; ``remaining`` = all other classes)."""
    from .privacy import of_classes, sample_features

    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    data = _unaugmented(checkpoint, data_dir)
    named = {name: check_classes(list(cs), checkpoint.num_classes) for name, cs in groups.items()}
    listed = {c for cs in named.values() for c in cs}
    named["remaining"] = [c for c in range(checkpoint.num_classes) if c not in listed]
    rows = []
    for name, cs in named.items():
        out_ = sample_features(checkpoint.model, of_classes(data.train, cs))
        rows += [{**run, "group": name, "class": int(label), "loss": float(f[0])}
                 for label, f in zip(out_["labels"], out_["features"])]
        log.info("%s (classes %s): mean loss %.3f", name, cs,
                 float(out_["features"][:, 0].mean()) if len(out_["labels"]) else float("nan"))
    write_csv(out, rows)


def output_rate_step(models: dict, classes: str, data_dir: str, run: dict, out: str) -> None:
    """How often each model (role -> checkpoint) outputs the forget classes on all test data
    (App. C.2), with its A_R and E_F."""
    from .privacy import output_rate, sample_features

    device = _device()
    rows = []
    for role, path in models.items():
        checkpoint = load_checkpoint(path, device)
        forget = check_classes(_parse_classes(classes), checkpoint.num_classes)
        data = checkpoint.dataset(data_dir)
        result = sample_features(checkpoint.model, data.test)
        metrics = forgetting_metrics(result["labels"], result["predictions"], forget,
                                     checkpoint.num_classes)
        rate = output_rate(result["predictions"], forget)
        log.info("%s model outputs class(es) %s on %.2f%% of the test data", role, forget, rate)
        rows.append({**run, "forget": classes_tag(forget), "model": role, "output_rate": rate,
                     "test_samples": len(result["labels"]), "A_R": metrics["A_R"],
                     "E_F": metrics["E_F"]})
    write_csv(out, rows)


def backdoor_step(model_path: str, code_class: int, ratios, data_dir: str, run: dict,
                  out: str, out_images: str, num_images: int = 4) -> None:
    """Test accuracy on test images blended with one class's code at each ratio (App. C.3, Fig.
    13), and how often the model then outputs that class; ``num_images`` blended test images per
    ratio, de-normalised for display (Fig. 14), go to ``out_images``."""
    from .codes import blend_code
    from .privacy import blended_accuracy, output_rate

    device = _device()
    checkpoint = load_checkpoint(model_path, device)
    code_class = check_classes([code_class], checkpoint.num_classes)[0]
    data = checkpoint.dataset(data_dir)
    code = checkpoint.codes[code_class]
    rows = []
    for result in blended_accuracy(checkpoint.model, data.test, code, ratios):
        rate = output_rate(result["predictions"], [code_class])
        log.info("blend %.0f%%: accuracy %.2f%%, class %d output on %.2f%%", 100 * result["ratio"],
                 result["accuracy"], code_class, rate)
        rows.append({**run, "code_class": code_class, "ratio": result["ratio"],
                     "accuracy": result["accuracy"], "code_class_rate": rate})
    write_csv(out, rows)
    images = torch.stack([data.test[i][0] for i in range(min(num_images, len(data.test)))])
    mean = torch.tensor(data.mean).view(-1, 1, 1)
    std = torch.tensor(data.std).view(-1, 1, 1)
    shown = torch.stack([(blend_code(images, code, r) * std + mean).clamp(0, 1) for r in ratios])
    atomic_write(out_images, lambda handle: torch.save(
        {"images": shown, "ratios": [float(r) for r in ratios], "code_class": code_class,
         "labels": [int(data.test[i][1]) for i in range(len(images))], **run}, handle))


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
    from .forgetting import forget

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
