"""The reproduction report: every figure and table of the paper, ours beside the paper's numbers,
a verdict for each, the paper's claims in a short list, and where the numbers came from.

:func:`build_report` reads what a workflow configuration built (the artefacts of
:func:`mnemu.artefacts.catalogue`, the summaries they were drawn from, ``config/paper_results.yaml``
and the ``benchmark:`` files of every job) and writes a self-contained HTML page (figures embedded
as PNG) and a JSON with the same verdicts and provenance. Items of :data:`PAPER_ITEMS` that no
artefact reproduces are listed as missing, never left out.

Two ways of judging (stated on the page):

* the paper's configuration: each number against the paper's, within :data:`TOLERANCES`;
* stand-in data (any data set other than the paper's, e.g. ``config/small.yaml``): absolute
  numbers cannot match, so only the paper's claims are judged (E_F = 100 after forgetting, A_R
  close to before, ours faster than the baselines, ...).
"""

from __future__ import annotations

import base64
import glob
import hashlib
import importlib.metadata
import json
import math
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from .artefacts import Artefact, catalogue
from .files import atomic_write_text, read_csv, write_json

#: The paper's experimental figures and tables, in its order (Fig. 1 is a diagram, Table 1 a
#: literature comparison: nothing to reproduce).
PAPER_ITEMS = (
    ("Fig. 2", "Test accuracy of models trained with mnemonic codes against t_mix"),
    ("Fig. 3", "Forget time of ours and the baselines"),
    ("Fig. 4", "Forgetting capability of ours-w-data against the amount of data (MNIST, CIFAR10)"),
    ("Fig. 5", "FIM approximation error of ours-w-data and of the codes (MNIST, CIFAR10)"),
    ("Fig. 6", "Hyperparameter search on MNIST"),
    ("Fig. 7", "Hyperparameter search on CIFAR10"),
    ("Fig. 8", "Hyperparameter search on CUB"),
    ("Fig. 9", "Hyperparameter search on STN"),
    ("Fig. 10", "FIM approximation error at each t_mix"),
    ("Fig. 11", "Loss distributions of C_F's train and test data before and after forgetting"),
    ("Fig. 12", "Loss distributions of unused, forgotten and remaining classes"),
    ("Fig. 13", "Test accuracy of images mixed with class 0's code (backdoor)"),
    ("Fig. 14", "Images mixed with a code at various densities"),
    ("Table 2", "A_R of the baselines and ours"),
    ("Table 3", "E_F of the baselines and ours"),
    ("Table 4", "ImageNet: A_R, E_F and time per architecture and stage"),
    ("Table 5", "Forgetting at each t_mix"),
    ("Table 6", "Loss gradient magnitude per layer"),
    ("Table 7", "Faces (LFW): before and after forgetting"),
    ("Table 8", "Forgetting each of the other classes"),
    ("Table 9", "CLIP-style loss: before and after forgetting"),
)

#: How far ours may be from the paper's number and still match it: points of a percentage, or a
#: factor either way (times depend on the hardware; gradient magnitudes on the run).
TOLERANCES = (
    ("E_F", "points", 1.0),
    ("A_R", "points", 2.0),
    ("acc", "points", 2.0),
    ("second", "factor", 3.0),
    ("time", "factor", 3.0),
    ("grad", "factor", 10.0),
    ("auc", "points", 0.05),
)
DEFAULT_TOLERANCE = ("points", 2.0)

#: The claims' thresholds (the paper's words made numbers).
E_F_FORGOTTEN = 99.0  # "E_F = 100": within 1 point
A_R_KEPT = 2.0  # "maintaining high A_R": at most 2 points below before forgetting
ACCURACY_COST = 1.0  # Sec. 3.2: "less than 1 %" at t_mix <= 0.3
FASTER = 10.0  # "significantly faster": at least an order of magnitude
WITHIN_A_MINUTE = 60.0  # Sec. 4.4

VERDICTS = {  # verdict -> (colour, words)
    "reproduced": ("#1a7f37", "reproduced"),
    "partly": ("#9a6700", "partly reproduced"),
    "not": ("#cf222e", "not reproduced"),
    "unjudged": ("#57606a", "built; no number to judge automatically: compare by eye"),
    "missing": ("#6e7781", "MISSING: not built"),
}

#: The data set each paper column was measured on (anything else is a stand-in).
PAPER_DATASETS = {"MNIST": "mnist", "CIFAR10": "cifar10", "CUB": "cub", "STN": "stanford_cars"}
BASELINE_ROWS = ("fastmu", "lwsf", "sfdn", "ssd", "erm-ktp", "erm_ktp", "retrain", "zeroshotmu")
_BEFORE = re.compile(r"before|pretrain|fine-?tun", re.I)
_STAT_COLUMNS = {"mean", "std", "n", "paper", "best", "unsupported", "metric"}


@dataclass(frozen=True)
class Claim:
    """A sentence of the paper, judged on the artefacts of ``item``."""

    text: str
    item: str
    where: str


CLAIMS = (
    Claim("Ours reaches E_F = 100 % on every data set", "Table 3", "Sec. 4.2"),
    Claim("Ours keeps A_R close to its value before forgetting", "Table 2", "Sec. 4.2"),
    Claim("Ours forgets significantly faster than every baseline", "Fig. 3", "Sec. 4.2"),
    Claim("Training with codes costs under 1 point of test accuracy at t_mix ≤ 0.3", "Fig. 2",
          "Sec. 3.2"),
    Claim("Forgetting works at every t_mix tried (E_F = 100)", "Table 5", "App. A"),
    Claim("Forgetting works for every other class too (E_F = 100)", "Table 8", "App. C.5"),
    Claim("Scales to ImageNet: forgets within a minute, E_F up, A_R kept", "Table 4", "Sec. 4.4"),
)


@dataclass
class Check:
    """One judged statement: what, ours, the paper's (or the threshold), and whether it holds."""

    what: str
    ours: float | None
    paper: float | None
    difference: str
    tolerance: str
    ok: bool


@dataclass
class Shown:
    """One artefact as the page shows it."""

    id: str
    kind: str
    caption: str
    files: dict
    built: bool
    png: str | None = None  # base64
    table: list[dict] = field(default_factory=list)
    against_paper: list[Check] = field(default_factory=list)
    claims: list[Check] = field(default_factory=list)


# --- parsing --------------------------------------------------------------------------------------


def paper_items(paper: str) -> list[str]:
    """The items an artefact's ``paper`` field names: "Fig. 2" -> ["Fig. 2"], "Figs. 6-9" ->
    Figs. 6..9, "Fig. 11a" -> ["Fig. 11"], "Tables 7/9" -> Tables 7 and 9; "beyond ..." -> []."""
    if paper.lower().startswith("beyond"):
        return []
    found = []
    for kind, body in re.findall(r"\b(Fig|Table)s?\.?\s*((?:\d+[a-z]?(?:\s*(?:[-–,/&]|and)\s*)?)+)",
                                 paper):
        numbers = {int(n) for n in re.findall(r"\d+", body)}
        for first, last in re.findall(r"(\d+)[a-z]?\s*[-–]\s*(\d+)", body):
            numbers.update(range(int(first), int(last) + 1))
        found += [f"{'Fig.' if kind == 'Fig' else 'Table'} {n}" for n in sorted(numbers)]
    return list(dict.fromkeys(found))


def _number(text) -> float | None:
    """The first number of a cell ("95.9 ± 0.1" -> 95.9); None for an empty or non-numeric one."""
    match = re.search(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", str(text or ""))
    return float(match.group()) if match else None


def tolerance_of(metric: str) -> tuple[str, float]:
    for key, kind, amount in TOLERANCES:
        if key.lower() in metric.lower():
            return kind, amount
    return DEFAULT_TOLERANCE


def compare(what: str, metric: str, ours: float, paper: float) -> Check:
    """Ours against the paper's number, within the metric's tolerance."""
    kind, amount = tolerance_of(metric)
    if kind == "factor":
        ratio = ours / paper if paper else math.inf
        ok = paper > 0 and ours > 0 and 1 / amount <= ratio <= amount
        return Check(what, ours, paper, f"×{ratio:.3g}", f"within ×{amount:g}", ok)
    diff = ours - paper
    return Check(what, ours, paper, f"{diff:+.2f}", f"±{amount:g} points", abs(diff) <= amount)


def verdict_of(checks: Sequence[Check]) -> str:
    """All hold: reproduced; at least half: partly; fewer: not; none to judge: unjudged."""
    if not checks:
        return "unjudged"
    held = sum(c.ok for c in checks)
    if held == len(checks):
        return "reproduced"
    return "partly" if 2 * held >= len(checks) else "not"


def combine(verdicts: Sequence[str]) -> str:
    judged = [v for v in verdicts if v not in ("unjudged", "missing")]
    if not judged:
        return "missing" if verdicts and all(v == "missing" for v in verdicts) else "unjudged"
    if all(v == "reproduced" for v in judged):
        return "reproduced"
    return "not" if all(v == "not" for v in judged) else "partly"


# --- judging tables ------------------------------------------------------------------------------


def _key(record: Mapping) -> dict:
    return {k: v for k, v in record.items() if k not in _STAT_COLUMNS}


def _role(record: Mapping) -> str:
    """before (a reference before forgetting), baseline (another method) or ours."""
    text = " ".join(str(v) for v in _key(record).values())
    if _BEFORE.search(text):
        return "before"
    row = str(record.get("row", "")).lower()
    return "baseline" if row in BASELINE_ROWS else "ours"


def _group(record: Mapping) -> str:
    for column in ("benchmark", "architecture", "dataset"):
        if record.get(column):
            return str(record[column])
    return ""


def _label(record: Mapping) -> str:
    return " / ".join(str(v) for v in _key(record).values() if v not in ("", None)) + \
        f" {record.get('metric', '')}".rstrip()


def _judged(records: Sequence[Mapping]) -> list[Mapping]:
    """The rows a verdict may read: not those a table marks as a stand-in for another run (Table
    4 on small data with randomly initialised models says nothing about ImageNet)."""
    return [r for r in records if str(r.get("stand_in", "")).lower() != "true"]


def table_against_paper(records: Sequence[Mapping]) -> list[Check]:
    """Each cell with both a mean of ours and a paper's number, compared within tolerance."""
    checks = []
    for record in _judged(records):
        ours, paper = _number(record.get("mean")), _number(record.get("paper"))
        if ours is not None and paper is not None:
            checks.append(compare(_label(record), str(record.get("metric", "")), ours, paper))
    return checks


def table_claims(records: Sequence[Mapping]) -> list[Check]:
    """The paper's claims on a table of ours: E_F of ours' rows >= 99; A_R of ours' rows at most
    2 points below the last 'before' row of its group; ours' forget time within a minute."""
    checks, before_a_r = [], {}
    for record in _judged(records):
        mean, metric, role = _number(record.get("mean")), str(record.get("metric", "")), \
            _role(record)
        if mean is None:
            continue
        if role == "before" and "A_R" in metric:
            before_a_r[_group(record)] = mean
        if role != "ours":
            continue
        if "E_F" in metric:
            checks.append(Check(f"{_label(record)}: E_F = 100", mean, 100.0,
                                f"{mean - 100:+.2f}", f"≥ {E_F_FORGOTTEN:g}", mean >= E_F_FORGOTTEN))
        elif "A_R" in metric and _group(record) in before_a_r:
            before = before_a_r[_group(record)]
            checks.append(Check(f"{_label(record)}: A_R kept (before {before:.1f})", mean, before,
                                f"{mean - before:+.2f}", f"≥ −{A_R_KEPT:g} points",
                                mean >= before - A_R_KEPT))
        elif "second" in metric:
            checks.append(Check(f"{_label(record)}: within a minute", mean, WITHIN_A_MINUTE,
                                f"{mean:.3g} s", f"≤ {WITHIN_A_MINUTE:g} s",
                                mean <= WITHIN_A_MINUTE))
    return checks


# --- judging figures (from the summaries they are drawn from) -----------------------------------


def fig2_claims(summaries: Mapping[str, str]) -> list[Check]:
    """Sec. 3.2: per data set, accuracy at each t_mix <= 0.3 at most 1 point below t_mix = 0."""
    path = summaries.get("accuracy_vs_tmix")
    if not path or not Path(path).is_file():
        return []
    runs = read_csv(path)
    checks = []
    for bench in dict.fromkeys(r["benchmark"] for r in runs):
        by_tmix: dict[float, list[float]] = {}
        for r in runs:
            if r["benchmark"] == bench and _number(r.get("accuracy")) is not None:
                by_tmix.setdefault(float(r["t_mix"]), []).append(float(r["accuracy"]))
        if 0.0 not in by_tmix:
            continue
        base = sum(by_tmix[0.0]) / len(by_tmix[0.0])
        for t_mix in sorted(t for t in by_tmix if 0 < t <= 0.3):
            mean = sum(by_tmix[t_mix]) / len(by_tmix[t_mix])
            checks.append(Check(f"{bench}: accuracy at t_mix {t_mix:g} vs 0", mean, base,
                                f"{mean - base:+.2f}", f"≥ −{ACCURACY_COST:g} point",
                                mean >= base - ACCURACY_COST))
    return checks


def _seconds(row: Mapping) -> float | None:
    for column in ("timer.seconds", "seconds.forget", "seconds.total"):
        if _number(row.get(column)) is not None:
            return float(row[column])
    return None


def fig3_claims(summaries: Mapping[str, str]) -> list[Check]:
    """Sec. 4.2: per data set, every baseline's mean forget time at least 10x ours."""
    runs = [{**r, "method": r.get("method") or "ours"} for name in summaries
            if Path(summaries[name]).is_file() for r in read_csv(summaries[name])]
    times: dict[tuple[str, str], list[float]] = {}
    for r in runs:
        seconds = _seconds(r)
        if seconds is not None and not r.get("unsupported"):
            times.setdefault((r["method"], r["benchmark"]), []).append(seconds)
    checks = []
    for (method, bench), values in sorted(times.items()):
        ours = times.get(("ours", bench))
        if method == "ours" or not ours:
            continue
        mine, theirs = sum(ours) / len(ours), sum(values) / len(values)
        ratio = theirs / mine if mine > 0 else math.inf
        checks.append(Check(f"{bench}: {method} / ours forget time", mine, theirs,
                            f"×{ratio:.3g} faster", f"≥ ×{FASTER:g}", ratio >= FASTER))
    return checks


FIGURE_CLAIMS = {"Fig. 2": fig2_claims, "Fig. 3": fig3_claims}


# --- provenance ----------------------------------------------------------------------------------

PACKAGES = ("torch", "torchvision", "timm", "numpy", "scikit-learn", "matplotlib", "snakemake",
            "jinja2", "pyyaml")


def config_hash(config: Mapping) -> str:
    """sha256 of the configuration as canonical JSON (first 16 hex digits)."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def git_state(where: str | Path = ".") -> dict:
    def git(*args):
        return subprocess.run(["git", "-C", str(where), *args], capture_output=True, text=True,
                              timeout=30)
    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return {"commit": None, "dirty": None, "note": "not a git checkout"}
        status = git("status", "--porcelain", "--untracked-files=no")
        return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError) as err:
        return {"commit": None, "dirty": None, "note": f"git unavailable ({err})"}


def versions() -> dict:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def device() -> str:
    """The GPU's name if one is visible, else the CPU model (of the machine writing the report)."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def job_costs(benchmark_dir: str | Path) -> list[dict]:
    """Every ``benchmark:`` TSV under ``benchmark_dir``: rule (its folder), job (the file's path
    below it), wall time (s) and peak resident memory (max_rss, MB), last repeat."""
    root, jobs = Path(benchmark_dir), []
    for path in sorted(glob.glob(str(root / "**" / "*.tsv"), recursive=True)):
        rows = read_csv_tsv(path)
        if not rows:
            continue
        relative = Path(path).relative_to(root)
        row = rows[-1]
        jobs.append({"rule": relative.parts[0] if len(relative.parts) > 1 else relative.stem,
                     "job": str(relative.with_suffix("")), "seconds": _number(row.get("s")),
                     "max_rss_mb": _number(row.get("max_rss"))})
    return jobs


def read_csv_tsv(path: str | Path) -> list[dict]:
    lines = [line.split("\t") for line in Path(path).read_text().splitlines() if line.strip()]
    return [dict(zip(lines[0], values)) for values in lines[1:]] if lines else []


def rule_costs(jobs: Sequence[dict]) -> list[dict]:
    """Per rule: jobs, total and longest wall time (s), highest peak memory (MB)."""
    rules: dict[str, dict] = {}
    for job in jobs:
        entry = rules.setdefault(job["rule"], {"rule": job["rule"], "jobs": 0, "total_s": 0.0,
                                               "max_s": 0.0, "max_rss_mb": 0.0})
        entry["jobs"] += 1
        entry["total_s"] += job["seconds"] or 0.0
        entry["max_s"] = max(entry["max_s"], job["seconds"] or 0.0)
        entry["max_rss_mb"] = max(entry["max_rss_mb"], job["max_rss_mb"] or 0.0)
    return sorted(rules.values(), key=lambda e: -e["total_s"])


def stand_ins(config: Mapping) -> list[str]:
    """The benchmarks measured on other data than their paper column's ([] = the paper's data)."""
    return [f"{b.get('label', b['id'])} ({b['dataset']}) for {b.get('paper_column') or '—'}"
            for b in config["benchmarks"]
            if PAPER_DATASETS.get(b.get("paper_column")) != b["dataset"]]


# --- the report ----------------------------------------------------------------------------------


def _files(artefact: Artefact, figures: Path) -> dict:
    return {ext: str(figures / f"{artefact.id}.{ext}") for ext in artefact.formats}


def show(artefact: Artefact, figures: Path, summaries: Path) -> Shown:
    files = _files(artefact, figures)
    built = all(Path(p).is_file() for p in files.values())
    shown = Shown(artefact.id, artefact.kind, artefact.caption, files, built)
    if not built:
        return shown
    if "png" in files:
        shown.png = base64.b64encode(Path(files["png"]).read_bytes()).decode()
    if "csv" in files:
        shown.table = read_csv(files["csv"])
        shown.against_paper = table_against_paper(shown.table)
        shown.claims = table_claims(shown.table)
    inputs = {name: str(summaries / f"{name}.csv") for name in artefact.summaries}
    for item in paper_items(artefact.paper):
        if item in FIGURE_CLAIMS:
            shown.claims += FIGURE_CLAIMS[item](inputs)
    return shown


def item_verdict(shown: Sequence[Shown], judge_absolute: bool) -> str:
    if not shown:
        return "missing"
    verdicts = []
    for s in shown:
        if not s.built:
            verdicts.append("missing")
        elif judge_absolute and s.against_paper:
            verdicts.append(verdict_of(s.against_paper))
        else:
            verdicts.append(verdict_of(s.claims))
    return combine(verdicts)


def anchor(item: str) -> str:
    return "item-" + re.sub(r"[^a-z0-9]+", "-", item.lower()).strip("-")


def build_report(config: Mapping, html_path: str | Path, json_path: str | Path, *,
                 paper_results: str | Path = "config/paper_results.yaml",
                 repository: str | Path = ".") -> dict:
    """Write the report of what ``config`` built to ``html_path`` and its data to ``json_path``;
    return the data. Reads ``<figures>/<id>.<ext>``, ``<results>/summaries/*.csv`` and
    ``<results>/benchmarks/**/*.tsv`` (whatever exists when it runs)."""
    figures = Path(config["outputs"]["figures"])
    results = Path(config["outputs"]["results"])
    substitutes = stand_ins(config)
    judge_absolute = not substitutes
    artefacts = catalogue(config)
    shown = {a.id: show(a, figures, results / "summaries") for a in artefacts}
    items = []
    for item, title in PAPER_ITEMS:
        mine = [shown[a.id] for a in artefacts if item in paper_items(a.paper)]
        items.append({"item": item, "title": title, "anchor": anchor(item),
                      "verdict": item_verdict(mine, judge_absolute),
                      "artefacts": [s.id for s in mine]})
    beyond = [s.id for a, s in zip(artefacts, shown.values()) if not paper_items(a.paper)]
    claims = []
    for claim in CLAIMS:
        mine = [shown[a.id] for a in artefacts if claim.item in paper_items(a.paper)]
        verdict = item_verdict(mine, False)  # claims are judged on ours alone, in every setting
        claims.append({**asdict(claim), "verdict": verdict, "anchor": anchor(claim.item)})
    jobs = job_costs(results / "benchmarks")
    runs_devices = sorted({r["device"] for name in ("accuracy_vs_tmix",)
                           if (results / "summaries" / f"{name}.csv").is_file()
                           for r in read_csv(results / "summaries" / f"{name}.csv")
                           if r.get("device")})
    paper = yaml.safe_load(Path(paper_results).read_text()) if Path(paper_results).is_file() else {}
    provenance = {
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "git": git_state(repository),
        "config_hash": config_hash(config),
        "packages": versions(),
        "device": device(),
        "training_devices": runs_devices,
        "seeds": list(config.get("seeds", [])),
        "rules": rule_costs(jobs),
        "jobs": jobs,
    }
    data = {
        "stand_ins": substitutes,
        "judged_against": "the paper's numbers" if judge_absolute else "the paper's claims",
        "tolerances": [{"metric": k, "kind": kind, "amount": a} for k, kind, a in TOLERANCES],
        "claims": claims,
        "items": items,
        "beyond_the_paper": beyond,
        "artefacts": {k: {**asdict(v), "png": bool(v.png)} for k, v in shown.items()},
        "benchmarks": [{k: b.get(k) for k in ("id", "label", "paper_column", "dataset", "model",
                                               "t_mix", "lambda")} | {"epochs": b.get(
                                                   "train", {}).get("epochs")}
                       for b in config["benchmarks"]],
        "paper_text_values": paper.get("figures", {}),
        "provenance": provenance,
    }
    page = render(data, shown)
    atomic_write_text(html_path, page)
    write_json(json_path, data)
    return data


def render(data: Mapping, shown: Mapping[str, Shown]) -> str:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _format_number
    return env.get_template("report.html.j2").render(
        data=data, shown=shown, verdicts=VERDICTS)


def _format_number(value) -> str:
    if value is None or value == "":
        return "—"
    value = float(value)
    return f"{value:.3g}" if value and (abs(value) < 0.01 or abs(value) >= 1e5) else f"{value:.2f}"


# --- a browser's view of the page ---------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str | None:
    """The headless browser on the PATH (Debian: ``apt-get install chromium``), or None."""
    import shutil

    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def open_in_browser(page: str | Path, screenshot: str | Path | None = None,
                    width: int = 1200, height: int = 2400) -> dict:
    """Load ``page`` in headless Chromium; return what it shows: the items (``data-item``), the
    verdicts (``data-verdict``), the number of images and of broken ones (the page's own load
    check). With ``screenshot``, also write a PNG of the top ``width`` x ``height`` pixels."""
    from .errors import MnemuError

    chrome = browser()
    if chrome is None:
        raise MnemuError("no headless browser found; install Debian's chromium "
                         "(apt-get install chromium) or put google-chrome on the PATH")
    url = Path(page).resolve().as_uri()
    common = [chrome, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
              "--virtual-time-budget=5000"]
    dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120)
    if dom.returncode != 0:
        raise MnemuError(f"{chrome} could not load {page}: {dom.stderr.strip()[-300:]}")
    if screenshot is not None:
        Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
        shot = subprocess.run([*common, f"--screenshot={Path(screenshot).resolve()}",
                               f"--window-size={width},{height}", url],
                              capture_output=True, text=True, timeout=120)
        if shot.returncode != 0 or not Path(screenshot).is_file():
            raise MnemuError(f"{chrome} wrote no screenshot of {page}: {shot.stderr[-300:]}")
    body = re.search(r"<body([^>]*)>", dom.stdout)
    attributes = dict(re.findall(r'data-([\w-]+)="([^"]*)"', body.group(1))) if body else {}
    return {"items": re.findall(r'data-item="([^"]+)"', dom.stdout),
            "verdicts": re.findall(r'data-verdict="([^"]+)"', dom.stdout),
            "images": int(attributes.get("images", -1)),
            "broken_images": int(attributes.get("broken-images", -1))}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mnemu.reporting screenshot PAGE PNG``: the README's screenshot of a report."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mnemu.reporting")
    parser.add_argument("command", choices=["screenshot"])
    parser.add_argument("page")
    parser.add_argument("png")
    args = parser.parse_args(argv)
    seen = open_in_browser(args.page, args.png)
    print(f"{args.png}: {len(seen['items'])} items, {seen['images']} images, "
          f"{seen['broken_images']} broken")


if __name__ == "__main__":
    main()
