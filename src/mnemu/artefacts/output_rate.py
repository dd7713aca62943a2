"""App. C.2: how often the model that forgot C_F (ours) and the model retrained without C_F
output C_F on all test data."""

from ..files import read_csv
from ._appendix import cell, write_rows
from ._tables import paper_value, read_paper

TITLE = ("App. C.2: rate (%) at which a model outputs the forget class(es) on all test data, "
         "mean ± std over seeds")


def draw(inputs, outputs, benchmarks) -> None:
    runs = read_csv(inputs["summaries"][0])
    paper = read_paper(inputs, "output_rate")
    records = []
    for bench in benchmarks:
        for model in ("forgotten", "retrained"):
            mine = [r for r in runs if r["benchmark"] == bench["id"] and r["model"] == model]
            if mine:
                column = bench.get("paper_column", "")
                records.append({"benchmark": bench["label"], "paper_column": column,
                                "model": model, **cell([r["output_rate"] for r in mine]),
                                "paper": paper_value(paper, column, model) or ""})
    write_rows(records, outputs, TITLE, ["benchmark", "paper_column", "model"],
               notes=["forgotten: our method (Alg. 2); retrained: trained without the forget "
                      "class(es) from scratch."])
