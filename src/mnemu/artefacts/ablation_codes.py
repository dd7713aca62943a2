"""Beyond the paper: codes drawn U[0,1) (the authors' code) against N(0,1) (the paper's text)."""

from ._tables import group_table, lambda_notes, write_table

TITLE = "Ablation: codes drawn U[0,1) (the authors' code) or N(0,1) (the paper's text)"
METRICS = [("before.accuracy", "accuracy before"), ("after.A_R", "A_R"), ("after.E_F", "E_F")]


def draw(inputs, outputs, benchmarks) -> None:
    summary = inputs["summaries"][0]
    records = group_table(summary, benchmarks, {}, "codes", METRICS)
    write_table(records, outputs, TITLE, benchmarks, "codes", lambda_notes(summary))
