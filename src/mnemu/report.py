"""The paper's tables and figures, drawn from the workflow's summary CSVs.

Expensive work never happens here: a summary is a tidy CSV of per-seed results, and each table or
figure is computed from one summary, so restyling reruns nothing upstream. Needs pandas and
matplotlib (``pip install mnemu[workflow]``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from .files import atomic_write, atomic_write_text, read_csv, write_csv


# --- summaries ---------------------------------------------------------------------------------


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


def summarise(files: Sequence[str], meta: Sequence[dict], out: str) -> None:
    """One tidy CSV from per-run JSON records and CSV tables, each row tagged with its ``meta``."""
    if len(files) != len(meta):
        raise ValueError("files and meta differ in length")
    rows = []
    for path, tags in zip(files, meta):
        if str(path).endswith(".json"):
            rows.append({**tags, **_flatten(json.loads(Path(path).read_text()))})
        else:
            rows.extend({**tags, **row} for row in read_csv(path))
    columns = list(dict.fromkeys(key for row in rows for key in row))
    write_csv(out, [{c: row.get(c, "") for c in columns} for row in rows])


# --- tables ------------------------------------------------------------------------------------

#: What each table shows: the summary rows it groups by, the row label, and the metrics per
#: benchmark column (summary column, shown name).
TABLES = {
    "table2": {
        "title": "Table 2: A_R after forgetting class(es) C_F (mean ± std over seeds)",
        "rows": [("Before forgetting", "before.A_R"), ("Ours", "after.A_R")],
        "paper": "table2",
    },
    "table3": {
        "title": "Table 3: E_F after forgetting class(es) C_F (mean ± std over seeds)",
        "rows": [("Before forgetting", "before.E_F"), ("Ours", "after.E_F")],
        "paper": "table3",
    },
    "table5": {
        "title": "Table 5: forgetting at each t_mix (mean ± std over seeds)",
        "group": "t_mix",
        "metrics": [("after.A_R", "A_R"), ("after.E_F", "E_F")],
        "paper": "table5",
    },
    "table8": {
        "title": "Table 8: forgetting other classes, one at a time (mean ± std over seeds)",
        "group": "forget",
        "metrics": [("after.A_R", "A_R"), ("after.E_F", "E_F")],
        "paper": "table8",
    },
    "ablation_codes": {
        "title": "Ablation: codes drawn U[0,1) (the authors' code) or N(0,1) (the paper's text)",
        "group": "codes",
        "metrics": [("before.accuracy", "accuracy before"), ("after.A_R", "A_R"),
                    ("after.E_F", "E_F")],
    },
}


def _stats(values) -> dict:
    import statistics

    values = [float(v) for v in values]
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def _cell(stats: dict | None) -> str:
    return "—" if stats is None else f"{stats['mean']:.1f} ± {stats['std']:.1f}"


def _paper_value(paper: dict, *keys) -> str | None:
    """The paper's number at ``paper[k1][k2]...`` (keys compared as text: 0.1, 1, "MNIST")."""
    node = paper
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = next((v for k, v in node.items() if str(k) == str(key)), None)
    if node is None or isinstance(node, dict):
        return None
    return f"{node[0]:g} ± {node[1]:g}" if isinstance(node, list) else f"{node:g}"


def _group_key(value: str):
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def make_table(kind: str, summary: str, benchmarks: Sequence[dict], paper_results: dict,
               out_csv: str, out_md: str, notes: Sequence[str] = ()) -> None:
    """Write table ``kind`` (see :data:`TABLES`) as a tidy CSV and as Markdown.

    ``benchmarks`` are the config entries (id, label, paper_column) in column order. Paper values
    are shown beside ours where a benchmark names its paper column.
    """
    spec = TABLES[kind]
    rows = read_csv(summary)
    paper = paper_results.get(spec.get("paper", ""), {})
    records = []
    if "rows" in spec:  # method rows x benchmark columns, one metric
        for name, column in spec["rows"]:
            for bench in benchmarks:
                values = [r[column] for r in rows if r["benchmark"] == bench["id"]]
                stats = _stats(values) if values else None
                ref = (_paper_value(paper, name, bench.get("paper_column"))
                       if bench.get("paper_column") else None)
                records.append({"row": name, "benchmark": bench["id"], "metric": column,
                                **(stats or {"mean": "", "std": "", "n": 0}), "paper": ref or ""})
    else:  # group rows x (benchmark, metric) columns
        groups = sorted({r[spec["group"]] for r in rows}, key=_group_key)
        for group in groups:
            for bench in benchmarks:
                for column, label in spec["metrics"]:
                    values = [r[column] for r in rows
                              if r["benchmark"] == bench["id"] and r[spec["group"]] == group]
                    stats = _stats(values) if values else None
                    metric = column.split(".")[-1]
                    ref = (_paper_value(paper, group, bench["paper_column"], metric)
                           if bench.get("paper_column") else None)
                    records.append({"row": group, "benchmark": bench["id"], "metric": label,
                                    **(stats or {"mean": "", "std": "", "n": 0}),
                                    "paper": ref or ""})
    write_csv(out_csv, records)
    used = sorted({(r["benchmark"], r["lambda1"], r["lambda2"]) for r in rows if r.get("lambda1")})
    notes = list(notes) + [f"lambda1 = {l1}, lambda2 = {l2} for {b}." for b, l1, l2 in used]
    atomic_write_text(out_md, _markdown(spec, records, benchmarks, notes))


def _markdown(spec: dict, records: list[dict], benchmarks: Sequence[dict], notes) -> str:
    labels = {b["id"]: b["label"] + (f" [paper: {b['paper_column']}]" if b.get("paper_column")
                                     else "") for b in benchmarks}
    metrics = list(dict.fromkeys(r["metric"] for r in records))
    single = "rows" in spec
    header = ["" if single else spec["group"]]
    for bench in benchmarks:
        header += [labels[bench["id"]]] if single else [f"{labels[bench['id']]} {m}" for m in metrics]
    lines = [f"### {spec['title']}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for row in dict.fromkeys(r["row"] for r in records):
        cells = [str(row)]
        for bench in benchmarks:
            for metric in ([None] if single else metrics):
                match = [r for r in records if r["row"] == row and r["benchmark"] == bench["id"]
                         and (single or r["metric"] == metric)]
                if not match or match[0]["n"] == 0:
                    cells.append("—")
                    continue
                r = match[0]
                cell = _cell(r)
                cells.append(cell + (f" (paper {r['paper']})" if r["paper"] else ""))
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({r["n"] for r in records if r["n"]})
    lines += ["", f"Seeds per cell: {', '.join(map(str, seeds)) or '—'}. "
              "Values in percent; paper values in parentheses where the column has one."]
    lines += [f"{note}" for note in notes]
    return "\n".join(lines) + "\n"


# --- figures -----------------------------------------------------------------------------------


def _save(fig, out_pdf: str, out_png: str) -> None:
    atomic_write(out_pdf, lambda handle: fig.savefig(handle, format="pdf", bbox_inches="tight"))
    atomic_write(out_png, lambda handle: fig.savefig(handle, format="png", dpi=150,
                                                     bbox_inches="tight"))


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _mean_std(rows, x: str, y: str):
    xs = sorted({float(r[x]) for r in rows})
    stats = [_stats([r[y] for r in rows if float(r[x]) == value]) for value in xs]
    return xs, [s["mean"] for s in stats], [s["std"] for s in stats]


def figure_accuracy_vs_tmix(summary: str, benchmarks: Sequence[dict], out_pdf: str,
                            out_png: str) -> None:
    """Fig. 2: test accuracy of models trained with codes, against t_mix."""
    plt = _pyplot()
    rows = read_csv(summary)
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    for bench in benchmarks:
        mine = [r for r in rows if r["benchmark"] == bench["id"]]
        if mine:
            xs, means, stds = _mean_std(mine, "t_mix", "accuracy")
            ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=bench["label"])
    ax.set_xlabel("$t_{mix}$ (probability of replacing a sample by its code)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Test accuracy of models trained with mnemonic codes", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _save(fig, out_pdf, out_png)
    plt.close(fig)


def figure_lambda_sweep(summary: str, bench: dict, out_pdf: str, out_png: str) -> None:
    """Figs. 6-9: A_R and E_F while sweeping lambda1 (lambda2 fixed) and lambda2 (lambda1 fixed)
    at the lambdas the benchmark uses."""
    plt = _pyplot()
    rows = read_csv(summary)
    chosen = [r for r in rows if r.get("file") == "lambda"][0]
    grid = [r for r in rows if r.get("file") != "lambda"]
    l1, l2 = float(chosen["lambda1"]), float(chosen["lambda2"])
    how = "selected by max A_R + E_F" if chosen["selected"] == "True" else "as in the config"
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
    for ax, sweep, fixed, value in ((axes[0], "lambda1", "lambda2", l2),
                                    (axes[1], "lambda2", "lambda1", l1)):
        line = [r for r in grid if abs(float(r[fixed]) - value) <= 1e-9 * max(1.0, value)]
        for metric, style in (("A_R", "o-"), ("E_F", "s--")):
            xs, means, stds = _mean_std(line, sweep, metric)
            ax.errorbar(xs, means, yerr=stds, fmt=style, capsize=3, label=metric)
        ax.axvline(l1 if sweep == "lambda1" else l2, color="grey", lw=0.8, ls=":")
        ax.set_xscale("log")
        ax.set_xlabel(f"$\\lambda_{sweep[-1]}$ ($\\lambda_{fixed[-1]}$ = {value:g})")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"Hyper-parameter search on {bench['label']} (lambdas {how})", fontsize=9)
    _save(fig, out_pdf, out_png)
    plt.close(fig)
