"""Table 5: A_R and E_F after forgetting, with models trained at each t_mix."""

from ._tables import draw_group_table

TITLE = "Table 5: forgetting at each t_mix (mean ± std over seeds)"


def draw(inputs, outputs, benchmarks) -> None:
    draw_group_table(inputs, outputs, benchmarks, "table5", TITLE, "t_mix")
