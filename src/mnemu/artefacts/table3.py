"""Table 3: E_F after forgetting class(es) C_F, each method a row, each data set a column."""

from ._tables import benchmark_notes, lambda_notes, method_table, read_paper, write_table

TITLE = "Table 3: E_F after forgetting class(es) C_F (mean ± std over seeds)"
ROWS = [("Before forgetting", "before.E_F"), ("Ours", "after.E_F")]
#: Row names: the paper's rule (the benchmark's lambda setting) and lambda: auto.
PAPER_RULE, AUTO = "Ours (paper rule)", "Ours (auto)"


def draw(inputs, outputs, benchmarks) -> None:
    """``inputs["summaries"]``: the runs at the benchmark's lambdas, then (optional) the runs
    with lambda: auto."""
    summaries = inputs["summaries"]
    paper = read_paper(inputs, "table3")
    records = method_table(summaries[0], benchmarks, paper, ROWS)
    notes = lambda_notes(summaries[0], PAPER_RULE if len(summaries) > 1 else "Ours")
    if len(summaries) > 1:
        for record in records:
            record["row"] = PAPER_RULE if record["row"] == "Ours" else record["row"]
        auto = method_table(summaries[1], benchmarks, paper, ROWS[1:])
        records += [{**record, "row": AUTO} for record in auto]
        notes += lambda_notes(summaries[1], AUTO)
    write_table(records, outputs, TITLE, benchmarks, notes=notes + benchmark_notes(benchmarks))
