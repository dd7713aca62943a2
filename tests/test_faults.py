"""What clusters do to a run, on real `snakemake` runs of a tiny configuration: jobs killed with
SIGTERM (preemption, time limit) and SIGKILL, Snakemake itself killed at each long rule, a project
copied to a new folder (new mtimes), and damaged checkpoints and Fisher files. Every interrupted
run must end with the results of an uninterrupted one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
import yaml

from mnemu.errors import MnemuError
from mnemu.pipeline import fisher_step, lambda_grid_step
from test_workflow import (ROOT, SNAKEMAKE, copy_workflow, job_counts, snakemake, tiny_config,
                           write_config)

MODEL = "results/tiny/fm/tmix0.1_uniform/seed0"
TARGET = f"{MODEL}/forget0/metrics.json"
#: The long rules (each runs once for TARGET) and the log that shows a job of it has begun.
LOGS = {rule: f"results/tiny/logs/{rule}/fm_tmix0.1_uniform_seed0{tail}.log"
        for rule, tail in [("train", ""), ("fisher", "_codes_forget0"),
                           ("lambda_grid", "_forget0"), ("forget", "_forget0")]}


def fault_config() -> dict:
    """One benchmark (Fashion-MNIST subset, MLP), one seed, lambda chosen from a 2x2 grid; paths
    relative to the project, so that results move with it. Training runs long enough (10 epochs
    of 6,000 images) to be killed mid-way."""
    config = tiny_config(Path("unused"))
    config.update(outputs={"results": "results/tiny", "figures": "figures/tiny"},
                  data_dir="data", seeds=[0], lambda1_grid=[1e-4, 1e-3], lambda2_grid=[1.0, 10.0],
                  lambda_sweep_figures=[{"figure": "fig6", "benchmark": "fm"}])
    bench = config["benchmarks"][0]
    bench.update({"lambda": "select"})
    bench["data_options"]["max_train_per_class"] = 600
    bench["train"]["epochs"] = 10
    config["benchmarks"] = [bench]
    config.update(gradient_benchmark="fm", fim_error_benchmarks=["fm"])
    return config


def project(folder: Path) -> Path:
    """A copy of the workflow with its own profiles and the fault configuration in it."""
    work = copy_workflow(folder)
    write_config(work / "tiny.yaml", fault_config())
    return work


def start(work: Path, *args) -> subprocess.Popen:
    """Snakemake on the fault configuration, in its own process group (to kill it whole)."""
    return subprocess.Popen([*SNAKEMAKE, "--configfile", "tiny.yaml", "--cores", "1", *args,
                             TARGET], cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)


def wait_for(condition, process, what: str, seconds: float = 300):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        if process.poll() is not None:
            raise AssertionError(f"snakemake ended before {what}:\n{process.stdout.read()[-3000:]}")
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def job_process(work: Path, script: str) -> int | None:
    """The Python process running ``scripts/<script>`` for a job of the workflow in ``work``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (argv and b"python" in Path(argv[0].decode()).name.encode()
                and any(a.decode().startswith(str(work)) and a.endswith(f".{script}".encode())
                        for a in argv[1:])):
            return int(entry.name)
    return None


def finish(process: subprocess.Popen) -> str:
    out = process.communicate(timeout=600)[0]
    assert process.returncode == 0, out[-3000:]
    return out


def weights(path: Path) -> dict:
    return torch.load(path, weights_only=True)["state_dict"]


def assert_same_results(work: Path, reference: Path) -> None:
    """Same trained and forgotten weights, same grid, same lambdas and metrics."""
    for name in ("model.pt", "forget0/model.pt"):
        ours, theirs = weights(work / MODEL / name), weights(reference / MODEL / name)
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), name
    assert (work / MODEL / "grid_forget0.csv").read_text() == \
        (reference / MODEL / "grid_forget0.csv").read_text()
    ours, theirs = (json.loads((w / TARGET).read_text()) for w in (work, reference))
    for key in ("before", "after", "lambda1", "lambda2", "sign", "code_scores"):
        assert ours[key] == theirs[key], key


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run."""
    work = project(tmp_path_factory.mktemp("faults") / "reference")
    finish(start(work))
    return work


# --- jobs killed, resumed by Snakemake's retry -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_training_job_killed_is_retried_from_its_saved_state(tmp_path, reference, sig):
    """SIGTERM is what SLURM sends on preemption or at the time limit (SIGKILL follows): the job
    fails, Snakemake's retry (the slurm profile's `retries: 1`) continues from the saved state."""
    work = project(tmp_path / "project")
    run = start(work, "--retries", "1")
    state = work / MODEL / "model.pt.state"
    wait_for(state.exists, run, "the first epoch's state")
    os.kill(wait_for(lambda: job_process(work, "train.py"), run, "the training process"), sig)
    out = finish(run)
    assert "Error in rule train" in out  # the kill was seen as a failure, then retried
    log = (work / LOGS["train"]).read_text()  # the retry's log
    if sig == signal.SIGTERM:  # saved at the step the signal came
        assert re.search(r"resuming epoch \d+ after batch \d+", log), log
    else:  # back to the last state saved (after an epoch, or every 500 steps)
        assert "resuming " in log, log
    assert not state.exists()
    assert_same_results(work, reference)


# --- Snakemake killed at each long rule -------------------------------------------------------------


@pytest.mark.slow
def test_a_run_killed_at_each_long_rule_then_rerun_equals_an_uninterrupted_run(tmp_path,
                                                                              reference):
    """SIGKILL to Snakemake and its job (a lost node, an out-of-memory kill) while each long rule
    runs: what is left is never taken for complete, and after `--unlock` the same command
    finishes the run."""
    work = project(tmp_path / "project")
    killed = []
    for rule in LOGS:
        run = start(work)
        wait_for((work / LOGS[rule]).exists, run, f"a {rule} job")
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        # the killed job is scheduled again (its output absent or marked incomplete)
        dry = snakemake("--configfile", "tiny.yaml", "--dry-run", TARGET, cwd=work).stdout
        assert rule in job_counts(dry), (rule, dry[-2000:])
        # a killed Snakemake leaves its lock: it must be lifted once by hand
        snakemake("--configfile", "tiny.yaml", "--unlock", cwd=work)
        killed.append(rule)
        (work / LOGS[rule]).unlink()  # so that the next wait sees the next job start
    finish(start(work))
    assert killed == list(LOGS)
    assert_same_results(work, reference)


# --- reruns --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_finished_run_moved_to_a_new_folder_reruns_nothing_after_touch(tmp_path, reference):
    """After a finished run the same command does nothing. In a fresh copy of the project (a
    clone: sources with new mtimes, no .snakemake/) with results/ copied in any order of mtimes,
    Snakemake would retrain (inputs newer than outputs; scripts newer than outputs): even with
    mtime left out of --rerun-triggers. The documented `snakemake --touch` once (same arguments)
    marks the copied results as up to date without changing them; then nothing reruns."""
    assert "Nothing to be done" in snakemake("--configfile", "tiny.yaml", "--dry-run", TARGET,
                                             cwd=reference).stdout
    moved = copy_workflow(tmp_path / "clone")
    for path in moved.rglob("*"):
        os.utime(path)  # a clone's files are new
    shutil.copy(reference / "tiny.yaml", moved)
    shutil.copytree(reference / "results", moved / "results", copy_function=shutil.copy)
    # a bad order: deeper files (made later, from shallower ones) older than their inputs
    files = sorted(p for p in (moved / "results").rglob("*") if p.is_file())
    now = time.time()
    for age, path in enumerate(sorted(files, key=lambda p: -len(p.parts))):
        os.utime(path, (now - 1000 + age, now - 1000 + age))
    out = snakemake("--configfile", "tiny.yaml", "--dry-run", TARGET, cwd=moved).stdout
    assert "train" in job_counts(out)  # what --touch prevents
    model = (moved / MODEL / "model.pt").read_bytes()
    snakemake("--configfile", "tiny.yaml", "--cores", "1", "--touch", TARGET, cwd=moved)
    out = snakemake("--configfile", "tiny.yaml", "--dry-run", TARGET, cwd=moved).stdout
    assert "Nothing to be done" in out, out[-2000:]
    assert (moved / MODEL / "model.pt").read_bytes() == model


# --- damaged files -----------------------------------------------------------------------------------


@pytest.fixture
def damaged(tmp_path, lib_tiny_checkpoint):
    """A model, its code Fisher, and truncated copies of both."""
    model, fisher = tmp_path / "model.pt", tmp_path / "fisher.pt"
    shutil.copy(lib_tiny_checkpoint, model)
    fisher_step(str(model), "codes", "0", str(tmp_path), "hooks", str(fisher))
    files = {}
    for path in (model, fisher):
        bad = path.with_name(f"bad_{path.name}")
        bad.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        files[path.stem] = (path, bad)
    return files


def test_a_truncated_model_names_the_file_its_rule_and_the_fix(tmp_path, damaged):
    _, bad = damaged["model"]
    with pytest.raises(MnemuError) as err:
        fisher_step(str(bad), "codes", "0", str(tmp_path), "hooks", str(tmp_path / "f.pt"))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{bad} cannot be read (")
    assert "It was written by rule train: delete it and run snakemake again" in message
    assert "--rerun-incomplete" in message
    assert not (tmp_path / "f.pt").exists()


@pytest.mark.parametrize("damage", ["truncated", "foreign"])
def test_a_damaged_fisher_file_names_the_file_its_rule_and_the_fix(tmp_path, damaged, damage):
    model, bad = damaged["model"][0], damaged["fisher"][1]
    if damage == "foreign":  # a readable torch file that is no Fisher record
        torch.save({"weights": torch.zeros(3)}, bad)
    with pytest.raises(MnemuError) as err:
        lambda_grid_step(str(model), str(bad), [1e-3], [10.0], {}, str(tmp_path),
                         str(tmp_path / "grid.csv"))
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{bad} cannot be read (")
    assert ("not a Fisher record" in message) == (damage == "foreign")
    assert "It was written by rule fisher: delete it and run snakemake again" in message
    assert not (tmp_path / "grid.csv").exists()
