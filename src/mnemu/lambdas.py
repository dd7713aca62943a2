"""Choosing (lambda1, lambda2): the paper's rule (App. A: maximise A_R + E_F over a grid scored on
held-out samples) and ``auto``, a per-request rule that reads nothing but the codes."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Mapping, Sequence

from .errors import MnemuError


def _point(row: Mapping, run: int, metrics: tuple[str, str]) -> tuple[tuple[float, float], float]:
    """``((lambda1, lambda2), A_R + E_F)`` of one grid row (numbers, or strings read from CSV)."""
    a_r, e_f = metrics
    try:
        key = (float(row["lambda1"]), float(row["lambda2"]))
        score = float(row[a_r]) + float(row[e_f])
    except (KeyError, TypeError, ValueError):
        raise MnemuError(f"a row of grid run {run} lacks a number for lambda1, lambda2, {a_r} or "
                         f"{e_f}; give every row those four columns") from None
    if math.isnan(score):
        raise MnemuError(f"{a_r} + {e_f} is not a number at lambda1 {key[0]:g}, lambda2 "
                         f"{key[1]:g} of grid run {run}; rerun that grid point")
    return key, score


def select_lambdas(rows_by_run: Sequence[Sequence[Mapping]],
                   metrics: tuple[str, str] = ("A_R", "E_F")) -> dict:
    """The grid point with the highest mean A_R + E_F over runs (seeds).

    ``rows_by_run``: one grid per run, each a sequence of rows with ``lambda1``, ``lambda2``,
    and the two ``metrics`` columns (percent; ``A_R`` and ``E_F`` by default, e.g.
    ``("val_A_R", "val_E_F")`` for a validation split): nothing else is read. Every run must
    cover the same points, once each.

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
            key, score = _point(row, run, metrics)
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


# --- lambda: auto -----------------------------------------------------------------------------

#: lambda2 / lambda1 along the auto path. On the trained models measured (issue 11) lambda2 binds
#: on every parameter tensor at this ratio, so each tensor's largest change is lambda2 and the
#: whole perturbation grows in proportion to one number, the path's strength s. (A pure-lambda1
#: path, ratio 1e12, let the codes look fine while test A_R fell by 88 points on the digits CNN.)
AUTO_RATIO = 1e3
#: The path: lambda1 = s, lambda2 = AUTO_RATIO * s, s from AUTO_LOWEST to AUTO_HIGHEST in
#: AUTO_STEPS_PER_DECADE geometric steps per decade: finer than the paper's grid, because on the
#: CNNs the window between rejecting the forget code and losing a remaining one is often less
#: than a quarter decade wide. Bisection keeps the tries at about log2(225) = 8.
AUTO_LOWEST, AUTO_HIGHEST, AUTO_STEPS_PER_DECADE = 1e-7, 1.0, 32
#: "Firmly rejected": the forget codes' margin has gone from +m (before) to below -FIRM * m. On the
#: MLP (development seeds) just rejecting the code (FIRM 0) left real samples of the class
#: recognised (test E_F 38 on one class); FIRM 1 gave E_F 100 on every class.
AUTO_FIRM = 1.0
#: "Too far": the remaining codes' smallest margin has fallen below KEEP x its value before; 0
#: means a remaining code is misclassified. Larger values (0.25, 0.5) stopped the CNNs before
#: the forget code was rejected at all.
AUTO_KEEP = 0.0
#: Steps taken past the first firm point while the remaining codes hold. On the MLP two steps
#: cost up to 2.6 points of A_R and gained nothing.
AUTO_EXTRA_STEPS = 0

#: The verdicts on one path point, in the order they occur as s grows.
VERDICTS = ("not yet", "not enough", "ok", "too far")


def auto_path(lowest: float = AUTO_LOWEST, highest: float = AUTO_HIGHEST,
              steps_per_decade: int = AUTO_STEPS_PER_DECADE) -> list[float]:
    """The strengths s of the auto path, ascending, geometric."""
    if not 0 < lowest < highest or steps_per_decade < 1:
        raise MnemuError(f"the auto path needs 0 < lowest < highest and at least one step per "
                         f"decade, got {lowest:g}, {highest:g}, {steps_per_decade}")
    steps = round(math.log10(highest / lowest) * steps_per_decade)
    return [lowest * 10 ** (i / steps_per_decade) for i in range(steps + 1)]


def auto_verdict(scores: Mapping, tie: bool, before: Mapping, *, firm: float = AUTO_FIRM,
                 keep: float = AUTO_KEEP) -> str:
    """What the codes say about one perturbation (``scores``: the chosen sign's code scores, as
    :meth:`Forgetter.score` gives them; ``before``: the unperturbed model's).

    "too far": the remaining codes' smallest margin fell below ``keep`` x its value before (a
    remaining code is about to be, or is, misclassified) or, for a model that misclassified some
    remaining codes already before (a smallest margin <= 0, as a briefly trained model may), their
    accuracy fell below its value before; "not yet": both signs tie on the codes
    (the perturbation has not yet told them apart) or a forget code is still recognised;
    "not enough": the forget codes are rejected, but by less than ``firm`` x the margin by which
    they were recognised before; "ok" otherwise.
    """
    if before["remain_margin"] > 0:
        if scores["remain_margin"] < keep * before["remain_margin"]:
            return "too far"
    elif scores["A_R"] < before["A_R"]:  # a code the model recognised is now misclassified
        return "too far"
    if tie or scores["forget_margin"] > 0:
        return "not yet"
    if scores["forget_margin"] > -firm * max(before["forget_margin"], 0.0):
        return "not enough"
    return "ok"


def auto_lambdas(forgetter, *, ratio: float = AUTO_RATIO, path: Sequence[float] | None = None,
                 firm: float = AUTO_FIRM, keep: float = AUTO_KEEP,
                 extra_steps: int = AUTO_EXTRA_STEPS, into=None):
    """Choose (lambda1, lambda2) for one forget request from the codes alone; apply it.

    ``forgetter`` is a :class:`mnemu.Forgetter` (its Fisher computed once); nothing but its codes
    is read: no training, validation or test data. Along the path lambda1 = s,
    lambda2 = ``ratio`` * s (``path``: the strengths s, ascending; default :func:`auto_path`),
    each tried point is perturbed, its sign chosen on the codes, and judged by
    :func:`auto_verdict`. Verdicts rise with s (not yet -> not enough -> ok -> too far), so
    the first point that is "ok" or "too far" is found by bisection (about log2 of the path's
    length tries); from a first "ok" point the rule goes ``extra_steps`` further (the codes are
    memorised more firmly than the real samples they stand for: just rejecting them leaves real
    samples of the class recognised), backing off by bisection to the last "ok" point if that
    is too far. If the first point past "not enough" is already too far, the rule stops at the
    last point before it (forgetting then is partial, and the record says so).

    Returns ``(model, record)`` as :meth:`Forgetter.apply` does, the record extended by
    ``lambda_rule: "auto"`` and ``auto``: the verdict at the chosen point, the reason in words,
    the scores before, and the path of tried points (s, lambdas, sign, tie, margins, verdict) in
    the order tried.
    """
    strengths = list(path) if path is not None else auto_path()
    if not strengths or any(b <= a for a, b in zip(strengths, strengths[1:])):
        raise MnemuError("the auto path must be a non-empty ascending list of strengths; "
                         "give increasing positive numbers")
    began = time.perf_counter()
    before = forgetter.score(forgetter.model)
    scratch = into if into is not None else copy.deepcopy(forgetter.model)  # one copy for all tries
    tried: dict[int, dict] = {}

    def verdict(i: int) -> str:
        if i not in tried:
            _, record = forgetter.apply(strengths[i], ratio * strengths[i], into=scratch)
            scores = record["code_scores"][record["sign"]]
            tried[i] = {"s": strengths[i], "lambda1": record["lambda1"],
                        "lambda2": record["lambda2"], "sign": record["sign"],
                        "tie": record["tie"], "forget_margin": scores["forget_margin"],
                        "remain_margin": scores["remain_margin"], "code_A_R": scores["A_R"],
                        "code_E_F": scores["E_F"],
                        "verdict": auto_verdict(scores, record["tie"], before, firm=firm,
                                                keep=keep),
                        "order": len(tried)}
        return tried[i]["verdict"]

    def first(lo: int, hi: int, past: tuple[str, ...]) -> int:
        """The first index in [lo, hi] whose verdict is in ``past`` (hi if none before it)."""
        while lo < hi:
            mid = (lo + hi) // 2
            if verdict(mid) in past:
                hi = mid
            else:
                lo = mid + 1
        return lo

    last = len(strengths) - 1
    start = first(0, last, ("ok", "too far"))
    outcome = verdict(start)
    if outcome == "ok":
        stop = min(start + extra_steps, last)
        if verdict(stop) == "too far":
            stop = first(start, stop, ("too far",)) - 1
        reason = (f"the forget codes are firmly rejected from s = {strengths[start]:.3g}; "
                  f"{stop - start} step(s) further, the remaining codes still hold")
    elif outcome == "too far":
        stop = max(start - 1, 0)
        reason = ("the remaining codes fail before the forget codes are firmly rejected: "
                  "stopped at the last point before they fail (forgetting may be partial)")
    else:
        stop = start
        reason = "the forget codes are not firmly rejected anywhere on the path: stopped at its end"
    if before["remain_margin"] <= 0:  # see auto_verdict
        reason += (f"; before forgetting the model recognised only {before['A_R']:.0f} % of its "
                   "remaining codes, so the codes cannot guard the classes of the others")
    verdict(stop)
    search_seconds = time.perf_counter() - began
    model, record = forgetter.apply(strengths[stop], ratio * strengths[stop], into=scratch)
    record["seconds"]["search"] = search_seconds  # the tries; "total" then counts them too
    record["seconds"]["total"] += search_seconds
    record["lambda_rule"] = "auto"
    record["auto"] = {
        "verdict": tried[stop]["verdict"], "reason": reason, "s": strengths[stop],
        "ratio": ratio, "firm": firm, "keep": keep, "extra_steps": extra_steps,
        "before": {k: before[k] for k in ("forget_margin", "remain_margin")},
        "tried": sorted(tried.values(), key=lambda t: t["order"]),
        "num_tried": len(tried),
    }
    return model, record
