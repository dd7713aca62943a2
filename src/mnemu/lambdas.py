"""Choosing (lambda1, lambda2): the paper's rule (App. A: maximise A_R + E_F over a grid scored on
held-out samples) and ``auto``, a per-request rule that reads nothing but the codes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .errors import MnemuError


def _point(row: Mapping, run: int) -> tuple[tuple[float, float], float]:
    """``((lambda1, lambda2), A_R + E_F)`` of one grid row (numbers, or strings read from CSV)."""
    try:
        key = (float(row["lambda1"]), float(row["lambda2"]))
        score = float(row["A_R"]) + float(row["E_F"])
    except (KeyError, TypeError, ValueError):
        raise MnemuError(f"a row of grid run {run} lacks a number for lambda1, lambda2, A_R or "
                         f"E_F; give every row those four columns") from None
    if math.isnan(score):
        raise MnemuError(f"A_R + E_F is not a number at lambda1 {key[0]:g}, lambda2 {key[1]:g} "
                         f"of grid run {run}; rerun that grid point")
    return key, score


def select_lambdas(rows_by_run: Sequence[Sequence[Mapping]]) -> dict:
    """The grid point with the highest mean A_R + E_F over runs (seeds).

    ``rows_by_run``: one grid per run, each a sequence of rows with ``lambda1``, ``lambda2``,
    ``A_R`` and ``E_F`` (percent). Every run must cover the same points, once each.

    Where several points tie at the best mean (a plateau: typically lambda1 stops mattering once
    lambda2 caps every alpha, so neighbouring points give the same model), the point in the
    middle of the plateau is chosen: the tied point nearest the plateau's centroid in
    (log10 lambda1, log10 lambda2), and of two equally near the stronger one (larger lambda1,
    then larger lambda2). The plateau's edge is where the selection class only just scores its
    best; other classes and other models need a little more (on the small MLP the gentlest tied
    point left classes 1 and 8 remembered, one decade further forgot them).

    Returns ``{"lambda1", "lambda2", "mean_score", "points"}``; ``points`` lists every point's
    ``{"lambda1", "lambda2", "mean_score"}`` in the first run's row order.
    """
    if not rows_by_run or any(len(rows) == 0 for rows in rows_by_run):
        raise MnemuError("no lambda grid rows to choose from; run the lambda grid first")
    scores: dict[tuple[float, float], list[float]] = {}
    for run, rows in enumerate(rows_by_run):
        seen = set()
        for row in rows:
            key, score = _point(row, run)
            if key in seen:
                raise MnemuError(f"grid run {run} has lambda1 {key[0]:g}, lambda2 {key[1]:g} "
                                 f"twice; keep one row per grid point")
            seen.add(key)
            if run > 0 and key not in scores:
                raise MnemuError(f"the lambda grids of the runs differ: run {run} has lambda1 "
                                 f"{key[0]:g}, lambda2 {key[1]:g}, run 0 has not; rerun the "
                                 f"grids over the same points")
            scores.setdefault(key, []).append(score)
        if len(seen) != len(scores):
            missing = next(k for k in scores if k not in seen)
            raise MnemuError(f"the lambda grids of the runs differ: run {run} lacks lambda1 "
                             f"{missing[0]:g}, lambda2 {missing[1]:g}; rerun the grids over the "
                             f"same points")
    means = {key: sum(values) / len(values) for key, values in scores.items()}
    best = max(means.values())
    lambda1, lambda2 = plateau_middle([key for key, mean in means.items() if mean == best])
    return {"lambda1": lambda1, "lambda2": lambda2, "mean_score": best,
            "points": [{"lambda1": k[0], "lambda2": k[1], "mean_score": m}
                       for k, m in means.items()]}


def plateau_middle(points: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The point of ``points`` (``(lambda1, lambda2)`` pairs, all positive) nearest their centroid
    in log10 space; of equally near points, the largest lambda1, then the largest lambda2."""
    logs = [(math.log10(l1), math.log10(l2)) for l1, l2 in points]
    centre = (sum(x for x, _ in logs) / len(logs), sum(y for _, y in logs) / len(logs))

    def distance(i: int) -> float:  # rounded: 1e-3 and 1e-1 around 1e-2 are equally near
        return round((logs[i][0] - centre[0]) ** 2 + (logs[i][1] - centre[1]) ** 2, 9)

    best = min(range(len(points)), key=lambda i: (distance(i), -points[i][0], -points[i][1]))
    return points[best]
