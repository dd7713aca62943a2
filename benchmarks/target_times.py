"""Time per paper artefact, from the per-job benchmark files of a finished run.

For each target it asks Snakemake (dry run, everything forced) which jobs the target needs, and adds
up the wall seconds each of those jobs took in the run (their ``benchmark:`` files). That is the
time to build the target alone on one core; jobs shared between targets count for each.

    python benchmarks/target_times.py --configfile config/small.yaml
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from pathlib import Path

import yaml

TARGETS = ["fig2.pdf", "fig6.pdf", "fig7.pdf", "fig8.pdf", "fig9.pdf", "table2.csv", "table3.csv",
           "table5.csv", "table8.csv", "ablation_codes.csv"]


def job_seconds(tsv: Path) -> float:
    with open(tsv) as handle:
        return float(next(csv.DictReader(handle, delimiter="\t"))["s"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", default="config/small.yaml")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.configfile).read_text())
    figures = config["outputs"]["figures"]
    print(f"{'target':28s} {'jobs':>5s} {'serial s':>9s}")
    for target in TARGETS:
        path = f"{figures}/{target}"
        out = subprocess.run(
            [sys.executable, "-m", "snakemake", "--configfile", args.configfile, "--dry-run",
             "--forceall", path], capture_output=True, text=True, check=True).stdout
        benchmarks = re.findall(r"^\s+benchmark: (\S+)$", out, flags=re.M)
        missing = [b for b in benchmarks if not Path(b).exists()]
        total = sum(job_seconds(Path(b)) for b in benchmarks if Path(b).exists())
        note = f"  ({len(missing)} jobs not run yet)" if missing else ""
        print(f"{path:28s} {len(benchmarks):5d} {total:9.0f}{note}")


if __name__ == "__main__":
    main()
