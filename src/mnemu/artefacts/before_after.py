"""Tables 7 and 9: A_R and E_F before and after forgetting C_F on one appendix model."""

from ..files import read_csv
from ._appendix import cell, write_rows, write_skipped
from ._tables import paper_value, read_paper


def draw(inputs, outputs, benchmarks, title: str, paper_key: str, skipped: str | None = None,
         note: str = "") -> None:
    if skipped:
        write_skipped(outputs, title, skipped)
        return
    runs = read_csv(inputs["summaries"][0])
    paper = read_paper(inputs, paper_key)
    records = []
    for when in ("before", "after"):
        for metric in ("A_R", "E_F"):
            records.append({"benchmark": runs[0]["benchmark"], "when": f"{when} forgetting",
                            "metric": metric, **cell([r[f"{when}.{metric}"] for r in runs]),
                            "paper": paper_value(paper, when, metric) or ""})
    write_rows(records, outputs, title, ["benchmark", "when", "metric"],
               notes=[note] if note else [])
