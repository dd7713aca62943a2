"""Table 8: A_R and E_F after forgetting each of the other classes, one at a time."""

from ._tables import draw_group_table

TITLE = "Table 8: forgetting other classes, one at a time (mean ± std over seeds)"


def draw(inputs, outputs, benchmarks) -> None:
    draw_group_table(inputs, outputs, benchmarks, "table8", TITLE, "forget")
