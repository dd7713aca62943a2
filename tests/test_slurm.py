"""The slurm/ profile on a real one-node SLURM (tests/local_slurm.py): a few jobs of a tiny
configuration go through the scheduler (GPU rules with --gpus) and give the results of a local
run. Skipped, with the reason, where SLURM cannot be set up (not root, no apt-get); CI sets
MNEMU_REQUIRE_SLURM=1 so that there it fails instead."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import torch

from local_slurm import CONFIG_FILES, MIN_JOB_AGE, STATUS_DELAY, LocalSlurm, Unavailable
from test_workflow import ROOT, copy_workflow, snakemake, tiny_config, write_config

MODEL = "results/fm/tmix0.1_uniform/seed0"
#: Rule -> its output under MODEL: the jobs that go to SLURM (data and lambda.json stay local).
SUBMITTED = {"train": "model.pt", "fisher": "fisher/codes_forget0.pt",
             "forget": "forget0/metrics.json"}


def slurm_config(tmp: Path) -> dict:
    """One benchmark (Fashion-MNIST subset, MLP), one seed; training asks for a GPU."""
    config = tiny_config(tmp)
    config.update(seeds=[0], lambda_sweep_figures=[{"figure": "fig6", "benchmark": "fm"}])
    config["benchmarks"] = config["benchmarks"][:1]
    config.update(gradient_benchmark="fm", fim_error_benchmarks=["fm"])
    config["resources"]["train"]["gpu"] = 1
    return config


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    cluster = LocalSlurm(tmp_path_factory.mktemp("slurm"))
    try:
        cluster.start()
    except Unavailable as why:
        cluster.stop()
        if os.environ.get("MNEMU_REQUIRE_SLURM"):
            pytest.fail(f"MNEMU_REQUIRE_SLURM is set but SLURM is unavailable: {why}")
        pytest.skip(f"no local SLURM: {why}")
    yield cluster
    cluster.stop()
    # Nothing left behind: no daemons, no configuration for later snakemake calls to probe.
    assert not any(path.exists() for path in CONFIG_FILES)
    for daemon in ("slurmctld", "slurmd"):
        assert subprocess.run(["pgrep", "-x", daemon]).returncode != 0, f"{daemon} still runs"


def jobs_of(run_uuid: str) -> list[dict]:
    """SLURM's records of the jobs a Snakemake run submitted (kept for MinJobAge seconds)."""
    out = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True,
                         check=True).stdout
    records = [dict(re.findall(r"(\w+)=(\S*)", line)) for line in out.splitlines()]
    return [r for r in records if r.get("JobName") == run_uuid]


@pytest.mark.slow
def test_jobs_run_through_slurm_and_match_a_local_run(cluster, tmp_path):
    runs = {}
    for where in ("slurm", "local"):
        tmp = tmp_path / where
        work = copy_workflow(tmp / "workflow-copy")
        shutil.copytree(ROOT / "slurm", work / "slurm")
        config = write_config(tmp / "tiny.yaml", slurm_config(tmp))
        targets = [str(tmp / MODEL / out) for out in SUBMITTED.values()]
        args = (["--profile", "slurm", "--slurm-status-command", "squeue",
                 "--slurm-init-seconds-before-status-checks", str(STATUS_DELAY),
                 "--slurm-no-account", "--slurm-keep-successful-logs", "--jobs", "4"] if where == "slurm" else ["--cores", "2"])
        began = time.perf_counter()
        result = snakemake("--configfile", str(config), *args, *targets, cwd=work, timeout=600)
        runs[where] = (tmp, work, result.stdout + result.stderr, time.perf_counter() - began)

    tmp, work, log, seconds = runs["slurm"]
    # Each of the three GPU-side rules was one SLURM job, with the profile's resources.
    uuid = re.search(r"SLURM run ID: ([0-9a-f-]+)", log).group(1)
    jobs = {job["Comment"].split("_wildcards")[0].removeprefix("rule_"): job
            for job in jobs_of(uuid)}
    assert set(jobs) == set(SUBMITTED), log[-3000:]
    assert MIN_JOB_AGE >= 3 * STATUS_DELAY
    for rule, job in jobs.items():
        assert job["JobState"] == "COMPLETED" and job["ExitCode"] == "0:0", job
        assert job["Partition"] == "debug"
        assert f"SLURM jobid {job['JobId']}" in log  # Snakemake's log names the job
        logs = list((work / ".snakemake/slurm_logs" / f"rule_{rule}").rglob(f"{job['JobId']}.log"))
        assert logs, f"no SLURM log of job {job['JobId']} ({rule})"
        assert job["TimeLimit"] == {"train": "2-00:00:00", "fisher": "01:00:00",
                                    "forget": "01:00:00"}[rule]  # from the profile
    assert jobs["train"]["TresPerJob"] == "gres:gpu:1"  # --gpus=1 from resources.train.gpu
    assert "TresPerJob" not in jobs["fisher"] or jobs["fisher"]["TresPerJob"] in ("", "(null)")
    # Data and lambda.json were made where Snakemake runs, not submitted.
    assert "rule prepare_data" in log and len(jobs) == 3

    local_tmp, _, _, local_seconds = runs["local"]
    for name in ("train.json", "forget0/metrics.json"):
        ours = json.loads((tmp / MODEL / name).read_text())
        theirs = json.loads((local_tmp / MODEL / name).read_text())
        for key in ("accuracy", "per_class_accuracy", "before", "after", "lambda1", "sign"):
            assert ours.get(key) == theirs.get(key), (name, key)
    for name in ("model.pt", "fisher/codes_forget0.pt"):
        ours = torch.load(tmp / MODEL / name, weights_only=True)
        theirs = torch.load(local_tmp / MODEL / name, weights_only=True)
        tensors = ours.get("state_dict") or ours["forget"]
        for key, value in tensors.items():
            other = (theirs.get("state_dict") or theirs["forget"])[key]
            assert torch.equal(value, other), (name, key)

    overhead = (seconds - local_seconds) / len(jobs)
    queued = [(int(_epoch(j["EndTime"]) - _epoch(j["SubmitTime"])), rule)
              for rule, j in jobs.items()]
    print(f"SLURM run {seconds:.1f}s, local run {local_seconds:.1f}s, {len(jobs)} SLURM jobs: "
          f"{overhead:.1f}s overhead per job; submit-to-end per job (s): {sorted(queued)}")


def _epoch(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%S"))
