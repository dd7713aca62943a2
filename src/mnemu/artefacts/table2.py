"""Table 2: A_R after forgetting class(es) C_F, each method a row (the
baselines of mnemu.baselines, retraining, ours), each data set a column."""

from ._tables import draw_method_table

TITLE = "Table 2: A_R after forgetting class(es) C_F (mean ± std over seeds)"


def draw(inputs, outputs, benchmarks) -> None:
    draw_method_table(inputs, outputs, benchmarks, "table2", TITLE, "A_R")
