"""Table 5: A_R and E_F after forgetting, with models trained at each t_mix."""

from ._tables import group_table, lambda_notes, read_paper, write_table

TITLE = "Table 5: forgetting at each t_mix (mean ± std over seeds)"
METRICS = [("after.A_R", "A_R"), ("after.E_F", "E_F")]


def draw(inputs, outputs, benchmarks) -> None:
    summary = inputs["summaries"][0]
    records = group_table(summary, benchmarks, read_paper(inputs, "table5"), "t_mix", METRICS)
    write_table(records, outputs, TITLE, benchmarks, "t_mix", lambda_notes(summary))
