"""Table 6 (App. B): the loss gradient's magnitude at the trained weights, per layer group, for the
whole training loss, the forget classes' loss and the remaining classes' loss."""

from __future__ import annotations

from ..analysis import group_magnitudes
from ..files import atomic_write_text, read_csv, write_csv
from ._tables import mean_std_text, read_paper, stats

TITLE = "Table 6: loss gradient magnitude in each layer group (mean ± std over seeds)"
#: Rows: (gradient in the run record, the paper's row name, shown name).
ROWS = (("whole", "whole", "|∇L(w*)|"), ("forget", "forget", "|∇L_CF(w*)|"),
        ("remain", "remain", "|∇L_CR(w*)|"))
#: The paper measured ResNet-18 on CIFAR10 only.
PAPER_COLUMN = "CIFAR10"
NOTES = (
    "Magnitude = mean absolute value per parameter, sum |g_i| / (number of parameters) over the "
    "group's tensors (the paper's ~1e-5 values fit this norm, not an L2 norm over millions of "
    "parameters). Each loss is the mean cross-entropy over the real training samples of all "
    "classes, of the forget classes, or of the remaining classes, at the trained weights, model in "
    "eval mode (BatchNorm's running statistics), no augmentation, no weight decay, no codes.")


def _stats_of(run: dict, which: str) -> dict:
    """Per-tensor sums of one gradient, back from the summary's flattened columns."""
    head = f"gradients.{which}."
    tensors: dict[str, dict] = {}
    for column, value in run.items():
        if column.startswith(head) and value != "":
            name, key = column[len(head):].rsplit(".", 1)
            tensors.setdefault(name, {})[key] = float(value)
    return tensors


def draw(inputs, outputs, benchmarks, groups) -> None:
    runs = read_csv(inputs["summaries"][0])
    paper = read_paper(inputs, "table6")
    columns = {g["name"]: g["prefixes"] for g in groups}
    records = []
    for bench in benchmarks:
        mine = [r for r in runs if r["benchmark"] == bench["id"]]
        if not mine:
            continue
        for which, paper_row, shown in ROWS:
            per_run = [group_magnitudes(_stats_of(r, which), columns) for r in mine]
            for group in columns:
                cell = stats([m[group] for m in per_run])
                ref = ((paper.get(paper_row) or {}).get(group)
                       if bench.get("paper_column") == PAPER_COLUMN else None)
                records.append({"row": shown, "benchmark": bench["id"], "metric": group, **cell,
                                "paper": f"{ref:.1e}" if ref is not None else ""})
    write_csv(outputs["csv"], records)
    atomic_write_text(outputs["md"], _markdown(records, benchmarks, columns))


def _markdown(records, benchmarks, columns) -> str:
    lines = [f"### {TITLE}", ""]
    labels = {b["id"]: b for b in benchmarks}
    for bench_id in dict.fromkeys(r["benchmark"] for r in records):
        bench = labels[bench_id]
        paper = f" [paper: {bench['paper_column']}]" if bench.get("paper_column") else ""
        lines += [f"{bench['label']}{paper}", "", "| loss gradient | " + " | ".join(columns) + " |",
                  "|" + "---|" * (len(columns) + 1)]
        for _, _, shown in ROWS:
            cells = [shown]
            for group in columns:
                r = next(r for r in records if r["benchmark"] == bench_id and r["row"] == shown
                         and r["metric"] == group)
                cell = mean_std_text(r, ".1e")
                cells.append(cell + (f" (paper {r['paper']})" if r["paper"] else ""))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    seeds = sorted({r["n"] for r in records})
    groups = "; ".join(f"{name} = {', '.join(prefixes)}" for name, prefixes in columns.items())
    lines += [f"Seeds per cell: {', '.join(map(str, seeds)) or '—'}. Layer groups (parameter-name "
              f"prefixes): {groups}. Paper values (ResNet-18 on CIFAR10) in parentheses.", NOTES]
    return "\n".join(lines) + "\n"
