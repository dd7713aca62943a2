"""Beyond the paper: A_R and E_F after forgetting k classes together (k = 1, 2, 3, 5)."""

from ._tables import group_table, lambda_notes, write_table

TITLE = "Forgetting several classes at once (classes 0..k-1; mean ± std over seeds)"
METRICS = [("after.A_R", "A_R"), ("after.E_F", "E_F")]


def draw(inputs, outputs, benchmarks) -> None:
    summary = inputs["summaries"][0]
    records = group_table(summary, benchmarks, {}, "forget", METRICS)
    for record in records:  # "0+1+2" -> 3 classes: the row says how many
        record["row"] = f"k = {len(str(record['row']).split('+'))} ({record['row']})"
    write_table(records, outputs, TITLE, benchmarks, "forget classes",
                ["Lambdas are each benchmark's, chosen for C_F = {0}."] + lambda_notes(summary))
