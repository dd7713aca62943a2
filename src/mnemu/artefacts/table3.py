"""Table 3: E_F after forgetting class(es) C_F, each method a row (the
baselines of mnemu.baselines, retraining, ours), each data set a column."""

from ._tables import METHODS, lambda_notes, method_table, read_paper, write_table

TITLE = "Table 3: E_F after forgetting class(es) C_F (mean ± std over seeds)"
ROWS = [("Before forgetting", "ours", "before.E_F"),
        *[(name, method, "after.E_F") for name, method in METHODS]]


def draw(inputs, outputs, benchmarks) -> None:
    summaries = inputs["summaries"]  # the forget step's runs (first), the baselines' runs
    records = method_table(summaries, benchmarks, read_paper(inputs, "table3"), ROWS)
    write_table(records, outputs, TITLE, benchmarks, notes=lambda_notes(summaries[0]))
