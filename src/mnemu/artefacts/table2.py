"""Table 2: A_R after forgetting class(es) C_F, each method a row, each data set a column."""

from ._tables import lambda_notes, method_table, read_paper, write_table

TITLE = "Table 2: A_R after forgetting class(es) C_F (mean ± std over seeds)"
ROWS = [("Before forgetting", "before.A_R"), ("Ours", "after.A_R")]


def draw(inputs, outputs, benchmarks) -> None:
    summary = inputs["summaries"][0]
    records = method_table(summary, benchmarks, read_paper(inputs, "table2"), ROWS)
    write_table(records, outputs, TITLE, benchmarks, notes=lambda_notes(summary))
