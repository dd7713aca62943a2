"""Table 8: A_R and E_F after forgetting each of the other classes, one at a time."""

from ._tables import benchmark_notes, group_table, lambda_notes, read_paper, write_table

TITLE = "Table 8: forgetting other classes, one at a time (mean ± std over seeds)"
METRICS = [("after.A_R", "A_R"), ("after.E_F", "E_F")]
#: The same metrics with lambda: auto (columns beside the paper rule's).
AUTO_METRICS = [("after.A_R", "A_R (auto)"), ("after.E_F", "E_F (auto)")]


def draw(inputs, outputs, benchmarks) -> None:
    """``inputs["summaries"]``: the runs at the benchmark's lambdas, then (optional) the runs
    with lambda: auto."""
    summaries = inputs["summaries"]
    paper = read_paper(inputs, "table8")
    records = group_table(summaries[0], benchmarks, paper, "forget", METRICS)
    notes = lambda_notes(summaries[0], "A_R, E_F")
    if len(summaries) > 1:
        records += group_table(summaries[1], benchmarks, paper, "forget", AUTO_METRICS)
        notes += lambda_notes(summaries[1], "A_R (auto), E_F (auto)")
    write_table(records, outputs, TITLE, benchmarks, "forget", notes + benchmark_notes(benchmarks))
