"""Table 2: A_R after forgetting class(es) C_F, each method a row (the
baselines of mnemu.baselines, retraining, ours), each data set a column."""

from ._tables import METHODS, lambda_notes, method_table, read_paper, write_table

TITLE = "Table 2: A_R after forgetting class(es) C_F (mean ± std over seeds)"
ROWS = [("Before forgetting", "ours", "before.A_R"),
        *[(name, method, "after.A_R") for name, method in METHODS]]


def draw(inputs, outputs, benchmarks) -> None:
    summaries = inputs["summaries"]  # the forget step's runs (first), the baselines' runs
    records = method_table(summaries, benchmarks, read_paper(inputs, "table2"), ROWS)
    write_table(records, outputs, TITLE, benchmarks, notes=lambda_notes(summaries[0]))
