"""Table 8: A_R and E_F after forgetting each of the other classes, one at a time."""

from ._tables import group_table, lambda_notes, read_paper, write_table

TITLE = "Table 8: forgetting other classes, one at a time (mean ± std over seeds)"
METRICS = [("after.A_R", "A_R"), ("after.E_F", "E_F")]


def draw(inputs, outputs, benchmarks) -> None:
    summary = inputs["summaries"][0]
    records = group_table(summary, benchmarks, read_paper(inputs, "table8"), "forget", METRICS)
    write_table(records, outputs, TITLE, benchmarks, "forget", lambda_notes(summary))
