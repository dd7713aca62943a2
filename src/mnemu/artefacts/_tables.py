"""How the paper's tables are laid out: mean ± std per cell, the paper's number beside ours.

A table is computed from one tidy summary CSV (one row per run). Two layouts: method rows x data
set columns (Tables 2 and 3), and group rows (a t_mix, a forget class, ...) x (data set, metric)
columns (Tables 5 and 8).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

import yaml

from ..files import atomic_write_text, read_csv, write_csv


def stats(values) -> dict:
    """Mean, sample standard deviation (0 for one value) and count."""
    values = [float(v) for v in values]
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def mean_std_text(record: Mapping, spec: str = ".1f") -> str:
    """``mean ± std`` of a :func:`stats` cell; the mean alone for one seed (no spread to show)."""
    text = f"{record['mean']:{spec}}"
    return text + f" ± {record['std']:{spec}}" if record["n"] > 1 else text


def paper_value(paper: Mapping, *keys) -> str | None:
    """The paper's number at ``paper[k1][k2]...`` (keys compared as text: 0.1, 1, "MNIST")."""
    node = paper
    for key in keys:
        if not isinstance(node, Mapping):
            return None
        node = next((v for k, v in node.items() if str(k) == str(key)), None)
    if node is None or isinstance(node, Mapping):
        return None
    return f"{node[0]:g} ± {node[1]:g}" if isinstance(node, list) else f"{node:g}"


def read_paper(inputs: Mapping, key: str) -> dict:
    with open(inputs["paper"]) as handle:
        return (yaml.safe_load(handle) or {}).get(key, {})


def _record(row, bench, metric, values, paper_ref):
    cell = stats(values) if values else {"mean": "", "std": "", "n": 0}
    return {"row": row, "benchmark": bench["id"], "metric": metric, **cell,
            "paper": paper_ref or ""}


#: The methods of Tables 2 and 3 and Fig. 3, in the paper's order: (shown name, ``method`` of the
#: baselines summary; "ours" = the forget step's runs, whose rows have no method).
METHODS = (("FastMU", "fastmu"), ("LwSF", "lwsf"), ("SFDN", "sfdn"), ("SSD", "ssd"),
           ("ERM-KTP", "erm_ktp"), ("Retrain", "retrain"), ("Ours", "ours"),
           ("Ours (auto)", "ours_auto"))
#: Rows that are references, not competitors: never in bold.
REFERENCE_ROWS = ("Before forgetting", "Retrain")


def method_runs(summaries: Sequence[str]) -> list[dict]:
    """The rows of the summaries, each with its ``method`` (our forget step's runs have none:
    "ours_auto" where lambda: auto chose the lambdas, "ours" otherwise)."""
    return [{**r, "method": r.get("method") or ("ours_auto" if r.get("lambda_rule") == "auto"
                                                 else "ours")}
            for path in summaries for r in read_csv(path)]


def method_table(summaries: Sequence[str], benchmarks: Sequence[dict], paper: Mapping,
                 rows: Sequence[tuple[str, str, str]]) -> list[dict]:
    """One record per (method row, benchmark): ``rows`` are (row name, method, summary column).
    A method absent from the summaries has no row; runs marked ``unsupported`` give an empty
    cell with the reason; ``best`` marks each column's highest mean (to the shown decimal)
    among the rows that are not references."""
    runs = method_runs(summaries)
    present = {r["method"] for r in runs} | {"ours"}
    records = []
    for name, method, column in rows:
        if method not in present:
            continue
        for bench in benchmarks:
            mine = [r for r in runs if r["method"] == method and r["benchmark"] == bench["id"]]
            values = [r[column] for r in mine if not r.get("unsupported")]
            ref = paper_value(paper, name, bench["paper_column"]) if bench.get("paper_column") \
                else None
            record = _record(name, bench, column, values, ref)
            reasons = sorted({r["unsupported"] for r in mine if r.get("unsupported")})
            record["unsupported"] = "; ".join(reasons) if not values else ""
            records.append(record)
    for record in records:
        record["best"] = False
    for bench in benchmarks:
        competing = [r for r in records if r["benchmark"] == bench["id"] and r["n"]
                     and r["row"] not in REFERENCE_ROWS]
        best = max((round(r["mean"], 1) for r in competing), default=None)
        for record in competing:
            record["best"] = round(record["mean"], 1) == best
    return records


def group_table(summary: str, benchmarks: Sequence[dict], paper: Mapping, group: str,
                metrics: Sequence[tuple[str, str]]) -> list[dict]:
    """One record per (value of ``group``, benchmark, metric): ``metrics`` are (summary column,
    shown name); the paper's number is looked up as paper[group value][column][metric]."""
    runs = read_csv(summary)
    records = []
    for value in sorted({r[group] for r in runs}, key=_group_key):
        for bench in benchmarks:
            for column, label in metrics:
                values = [r[column] for r in runs
                          if r["benchmark"] == bench["id"] and r[group] == value]
                ref = (paper_value(paper, value, bench["paper_column"], column.split(".")[-1])
                       if bench.get("paper_column") else None)
                records.append(_record(value, bench, label, values, ref))
    return records


def _group_key(value: str):
    try:
        return (0, float(value))
    except ValueError:
        return (1, value)


def lambda_notes(summary: str, row: str = "Ours") -> list[str]:
    """What chose lambda in ``summary``'s runs: the rule (and split) recorded by the forget step,
    and the lambdas used (a range where each request chose its own)."""
    runs = read_csv(summary)
    notes = []
    for bench in dict.fromkeys(r["benchmark"] for r in runs if r.get("lambda1")):
        mine = [r for r in runs if r["benchmark"] == bench and r.get("lambda1")]
        rules = sorted({r.get("lambda_rule") or "fixed or select on test" for r in mine})
        pairs = sorted({(float(r["lambda1"]), float(r["lambda2"])) for r in mine})
        if len(pairs) == 1:
            used = f"lambda1 = {pairs[0][0]:g}, lambda2 = {pairs[0][1]:g}"
        else:
            used = (f"lambda per forget request, lambda1 {pairs[0][0]:.3g} to {pairs[-1][0]:.3g} "
                    f"({len(pairs)} distinct)")
        notes.append(f"{row}: {used} for {bench} (rule: {', '.join(rules)}).")
    return notes


def benchmark_notes(benchmarks: Sequence[dict]) -> list[str]:
    """The config's ``note`` of each benchmark (e.g. that a stand-in is weak)."""
    return [f"{b['label']}: {b['note']}" for b in benchmarks if b.get("note")]


def write_table(records: list[dict], outputs: Mapping, title: str, benchmarks: Sequence[dict],
                group: str | None = None, notes: Sequence[str] = ()) -> None:
    """The records as CSV, and as Markdown with the paper's values in parentheses."""
    write_csv(outputs["csv"], records)
    atomic_write_text(outputs["md"], markdown(records, title, benchmarks, group, notes))


def markdown(records: list[dict], title: str, benchmarks: Sequence[dict], group: str | None,
             notes: Sequence[str]) -> str:
    labels = {b["id"]: b["label"] + (f" [paper: {b['paper_column']}]" if b.get("paper_column")
                                     else "") for b in benchmarks}
    label_of = {b["id"]: b["label"] for b in benchmarks}
    metrics = list(dict.fromkeys(r["metric"] for r in records))
    header = [group or ""]
    for bench in benchmarks:
        header += ([labels[bench["id"]]] if group is None
                   else [f"{labels[bench['id']]} {m}" for m in metrics])
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    cells_of = {(r["row"], r["benchmark"], r["metric"] if group else None): r for r in records}
    for row in dict.fromkeys(r["row"] for r in records):
        cells = [str(row)]
        for bench in benchmarks:
            for metric in (metrics if group else [None]):
                r = cells_of.get((row, bench["id"], metric))
                if r is None or r["n"] == 0:
                    cells.append("—")
                    continue
                cell = mean_std_text(r)
                cell = f"**{cell}**" if r.get("best") else cell
                cells.append(cell + (f" (paper {r['paper']})" if r["paper"] else ""))
        lines.append("| " + " | ".join(cells) + " |")
    seeds = sorted({r["n"] for r in records if r["n"]})
    lines += ["", f"Seeds per cell: {', '.join(map(str, seeds)) or '—'}. "
              "Values in percent; paper values in parentheses where the column has one."]
    if any(r.get("best") for r in records):
        lines.append("Bold: the highest mean of each column among the forgetting methods "
                     f"({' and '.join(REFERENCE_ROWS)} are references, never bold).")
    lines += [f"— {r['row']} on {label_of[r['benchmark']]}: {r['unsupported']}."
              for r in records if r.get("unsupported")]
    lines += list(notes)
    return "\n".join(lines) + "\n"


def draw_method_table(inputs: Mapping, outputs: Mapping, benchmarks: Sequence[dict], key: str,
                      title: str, metric: str) -> None:
    """Tables 2 and 3: before forgetting, then each method's ``after.<metric>`` (METHODS order).
    ``inputs["summaries"]``: our forget step's runs at the benchmark's lambdas, then ours with
    lambda: auto and the baselines' runs (which have no lambdas, so give no notes)."""
    summaries = inputs["summaries"]
    rows = [("Before forgetting", "ours", f"before.{metric}"),
            *[(name, method, f"after.{metric}") for name, method in METHODS]]
    records = method_table(summaries, benchmarks, read_paper(inputs, key), rows)
    notes = lambda_notes(summaries[0], "Ours") + [
        note for path in summaries[1:] for note in lambda_notes(path, "Ours (auto)")]
    write_table(records, outputs, title, benchmarks, notes=notes + benchmark_notes(benchmarks))


def draw_group_table(inputs: Mapping, outputs: Mapping, benchmarks: Sequence[dict], key: str,
                     title: str, group: str) -> None:
    """Tables 5 and 8: A_R and E_F per value of ``group``, by the paper's lambda rule
    (``inputs["summaries"][0]``) and, if given, with lambda: auto (the second summary)."""
    summaries = inputs["summaries"]
    paper = read_paper(inputs, key)
    records = group_table(summaries[0], benchmarks, paper, group,
                          [("after.A_R", "A_R"), ("after.E_F", "E_F")])
    notes = lambda_notes(summaries[0], "A_R, E_F")
    if len(summaries) > 1:
        records += group_table(summaries[1], benchmarks, paper, group,
                               [("after.A_R", "A_R (auto)"), ("after.E_F", "E_F (auto)")])
        notes += lambda_notes(summaries[1], "A_R (auto), E_F (auto)")
    write_table(records, outputs, title, benchmarks, group, notes + benchmark_notes(benchmarks))
