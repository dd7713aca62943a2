"""Choosing (lambda1, lambda2) from grids of test scores (paper, App. A): maximise A_R + E_F."""

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
    ``A_R`` and ``E_F`` (percent). Every run must cover the same points, once each. A tie goes
    to the smallest lambda1, then the smallest lambda2 (the gentlest perturbation).

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
    (lambda1, lambda2), best = max(means.items(),
                                   key=lambda kv: (kv[1], -kv[0][0], -kv[0][1]))
    return {"lambda1": lambda1, "lambda2": lambda2, "mean_score": best,
            "points": [{"lambda1": k[0], "lambda2": k[1], "mean_score": m}
                       for k, m in means.items()]}
