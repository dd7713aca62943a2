"""Table 2: A_R after forgetting class(es) C_F, each method a row (the
baselines of mnemu.baselines, retraining, ours), each data set a column."""

from ._tables import METHODS, benchmark_notes, lambda_notes, method_table, read_paper, write_table

TITLE = "Table 2: A_R after forgetting class(es) C_F (mean ± std over seeds)"
ROWS = [("Before forgetting", "ours", "before.A_R"),
        *[(name, method, "after.A_R") for name, method in METHODS]]


def draw(inputs, outputs, benchmarks) -> None:
    """``inputs["summaries"]``: our forget step's runs at the benchmark's lambdas, ours with
    lambda: auto, the baselines' runs."""
    summaries = inputs["summaries"]
    records = method_table(summaries, benchmarks, read_paper(inputs, "table2"), ROWS)
    # the baselines' runs have no lambdas: only ours give notes
    notes = lambda_notes(summaries[0], "Ours") + [
        note for path in summaries[1:] for note in lambda_notes(path, "Ours (auto)")]
    write_table(records, outputs, TITLE, benchmarks, notes=notes + benchmark_notes(benchmarks))
