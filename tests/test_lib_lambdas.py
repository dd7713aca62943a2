"""Choosing (lambda1, lambda2) from grids: the highest mean A_R + E_F over runs, ties to the
middle of the plateau; hand-made grids whose answers are worked out in the comments."""

from __future__ import annotations

import pytest

from mnemu import MnemuError, select_lambdas


def row(lambda1, lambda2, a_r, e_f):
    return {"lambda1": lambda1, "lambda2": lambda2, "A_R": a_r, "E_F": e_f}


def test_the_best_point_is_the_argmax_of_a_r_plus_e_f_not_of_either_alone():
    # A_R + E_F: 190, 195, 149. E_F alone picks (1e-2, 10), A_R alone picks (1e-4, 10).
    rows = [row(1e-2, 10.0, 90.0, 100.0), row(1e-3, 10.0, 98.0, 97.0), row(1e-4, 10.0, 99.0, 50.0)]
    chosen = select_lambdas([rows])
    assert (chosen["lambda1"], chosen["lambda2"]) == (1e-3, 10.0)
    assert chosen["mean_score"] == 195.0


def test_the_mean_over_runs_decides_not_one_run():
    # run 0 prefers a (200 vs 190), run 1 prefers b (195 vs 150): means a 175, b 192.5
    run0 = [row(1e-3, 10.0, 100.0, 100.0), row(1e-2, 100.0, 95.0, 95.0)]
    run1 = [row(1e-3, 10.0, 90.0, 60.0), row(1e-2, 100.0, 97.0, 98.0)]
    chosen = select_lambdas([run0, run1])
    assert (chosen["lambda1"], chosen["lambda2"], chosen["mean_score"]) == (1e-2, 100.0, 192.5)
    assert chosen["points"] == [{"lambda1": 1e-3, "lambda2": 10.0, "mean_score": 175.0},
                                {"lambda1": 1e-2, "lambda2": 100.0, "mean_score": 192.5}]
    # the runs' row order does not matter
    assert select_lambdas([run0, run1[::-1]])["lambda1"] == 1e-2


def test_ties_go_to_the_middle_of_the_plateau_not_its_edge():
    # five points tie at mean 190 (in any row order), one is lower; in log10 space the tied points
    # are (-4, 3), (-3, 3), (-2, 3), (-1, 3), (-3, 1): centroid (-2.6, 2.6), nearest (-3, 3)
    # (distance^2 0.32; (-2, 3) is 0.52 away). The old rule took the edge, (1e-4, 1e3).
    run0 = [row(1e-2, 1e3, 95.0, 95.0), row(1e-3, 10.0, 100.0, 90.0), row(1e-4, 1e3, 90.0, 100.0),
            row(1e-1, 1e3, 95.0, 95.0), row(1e-3, 1e3, 95.0, 95.0), row(1e-5, 1e3, 80.0, 100.0)]
    run1 = [row(1e-2, 1e3, 95.0, 95.0), row(1e-3, 10.0, 90.0, 100.0), row(1e-4, 1e3, 95.0, 95.0),
            row(1e-1, 1e3, 90.0, 100.0), row(1e-3, 1e3, 100.0, 90.0), row(1e-5, 1e3, 80.0, 100.0)]
    chosen = select_lambdas([run0, run1])
    assert (chosen["lambda1"], chosen["lambda2"], chosen["mean_score"]) == (1e-3, 1e3, 190.0)
    assert select_lambdas([run0[::-1], run1])["lambda1"] == 1e-3


def test_a_plateau_of_three_takes_its_middle_and_of_two_its_stronger_point():
    three = [row(1e-3, 10.0, 100.0, 100.0), row(1e-2, 10.0, 100.0, 100.0),
             row(1e-1, 10.0, 100.0, 100.0), row(1.0, 10.0, 50.0, 100.0)]
    assert select_lambdas([three])["lambda1"] == 1e-2
    two = [row(1e-3, 10.0, 100.0, 100.0), row(1e-2, 10.0, 100.0, 100.0),
           row(1e-4, 10.0, 100.0, 10.0)]
    assert select_lambdas([two])["lambda1"] == 1e-2
    # same lambda1, lambda2 1e3 and 1e5 tie: the stronger lambda2
    pair = [row(1e-3, 1e3, 99.0, 100.0), row(1e-3, 1e5, 100.0, 99.0)]
    assert select_lambdas([pair])["lambda2"] == 1e5
    # one best point is chosen whatever its neighbours
    assert select_lambdas([[row(1e-3, 10.0, 100.0, 100.0), row(1e-2, 10.0, 99.0, 100.0)]]
                          )["lambda1"] == 1e-3


def test_rows_read_from_csv_as_strings_are_accepted():
    rows = [{"lambda1": "0.001", "lambda2": "10.0", "A_R": "97.5", "E_F": "100.0", "sign": "-"},
            {"lambda1": "1e-05", "lambda2": "10.0", "A_R": "98.0", "E_F": "20.0", "sign": "+"}]
    assert select_lambdas([rows]) == {
        "lambda1": 1e-3, "lambda2": 10.0, "mean_score": 197.5,
        "points": [{"lambda1": 1e-3, "lambda2": 10.0, "mean_score": 197.5},
                   {"lambda1": 1e-5, "lambda2": 10.0, "mean_score": 118.0}]}


@pytest.mark.parametrize("runs, message", [
    ([], "no lambda grid rows"),
    ([[row(1e-3, 10.0, 1.0, 1.0)], []], "no lambda grid rows"),
    ([[row(1e-3, 10.0, 1.0, 1.0), row(1e-2, 10.0, 1.0, 1.0)], [row(1e-3, 10.0, 1.0, 1.0)]],
     "run 1 lacks lambda1 0.01, lambda2 10"),
    ([[row(1e-3, 10.0, 1.0, 1.0)], [row(1e-3, 10.0, 1.0, 1.0), row(1e-2, 10.0, 1.0, 1.0)]],
     "run 1 has lambda1 0.01, lambda2 10, run 0 has not"),
    ([[row(1e-3, 10.0, 1.0, 1.0)], [row(1e-3, 100.0, 1.0, 1.0)]], "grids of the runs differ"),
    ([[row(1e-3, 10.0, 1.0, 1.0), row(1e-3, 10.0, 2.0, 2.0)]],
     "has lambda1 0.001, lambda2 10 twice"),
    ([[{"lambda1": 1e-3, "lambda2": 10.0, "A_R": 1.0}]], "lacks a number"),
    ([[row(1e-3, 10.0, float("nan"), 1.0)]], "not a number at lambda1 0.001"),
])
def test_bad_grids_are_refused(runs, message):
    with pytest.raises(MnemuError, match=message) as err:
        select_lambdas(runs)
    assert "\n" not in str(err.value)
