"""The workflow's job context and the steps that need no torch.

The Snakemake scripts run each step in a process of its own, and importing torch costs about 4 s
of CPU a process on a 2-core machine: the summaries, tables, figures and the report (a sixth of
the small configuration's jobs) import nothing of it. The steps that train, compute Fisher
information, choose lambda, forget or evaluate are in :mod:`mnemu.pipeline`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from .errors import MnemuError
from .files import exit_process, read_csv, write_csv

log = logging.getLogger("mnemu")


@contextlib.contextmanager
def job(log_path: str | None, threads: int = 1, *, exit_when_done: bool = False) -> Iterator[None]:
    """Run a workflow step with its log going to ``log_path`` and ``threads`` CPU threads.

    A :class:`MnemuError` is logged as one line, anything else with its traceback, and re-raised:
    the job fails with the reason in its log, and nothing half-written is left behind (outputs
    are written atomically).

    ``exit_when_done`` (the workflow's scripts, whose step is their last statement): once the
    step has succeeded and its log is closed, the process ends at once
    (:func:`mnemu.files.exit_process`). Its outputs are written and closed by then
    (:func:`mnemu.files.atomic_write`); what is skipped is Python's teardown, which takes
    0.5-0.6 s after a step that loaded torch (a forget step's job: 0.49-0.63 s against 0.04),
    about a fifth of a short job's time. A failed step exits as usual, with its traceback.
    """
    torch = sys.modules.get("torch")  # the light steps here never load it; the others have
    if torch is not None:
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
    if exit_when_done:
        exit_process(0)


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

