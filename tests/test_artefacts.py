"""The artefact catalogue and its drawing modules, called directly on hand-made summaries."""

from __future__ import annotations

import csv
import importlib
import json
import statistics
from pathlib import Path

import pytest
import yaml

from mnemu.artefacts import ARTEFACTS, FORMATS, by_id, catalogue, draw, module_path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = [{"id": "a", "label": "A", "paper_column": "MNIST"},
              {"id": "b", "label": "B"}]


def write_rows(path: Path, rows: list[dict]) -> str:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return str(path)


def outputs(tmp_path, artefact):
    return {ext: str(tmp_path / f"{artefact.id}.{ext}") for ext in artefact.formats}


def test_catalogue_is_consistent():
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    artefacts = catalogue(config)
    ids = [a.id for a in artefacts]
    assert len(ids) == len(set(ids))
    assert {"fig2", "fig6", "fig7", "fig8", "fig9", "table2", "table3", "table5", "table8"} <= set(ids)
    for a in artefacts:
        assert a.kind in FORMATS and a.caption and a.paper
        assert module_path(a).is_file() and (ROOT / a.code).is_file()
        assert callable(importlib.import_module(f"mnemu.artefacts.{a.module}").draw)
    # One module per artefact, except the one kind of figure the config instantiates per benchmark.
    modules = [a.module for a in ARTEFACTS]
    assert len(modules) == len(set(modules))
    assert by_id(config)["fig7"].options == {"benchmark": "cifar10"}


def forget_runs():
    rows = []
    for bench, values in (("a", [(80.0, 10.0, 90.0, 100.0), (82.0, 20.0, 91.0, 99.0)]),
                          ("b", [(70.0, 5.0, 60.0, 100.0), (74.0, 7.0, 66.0, 98.0), (71.0, 6.0, 62.0, 97.0)])):
        for seed, (ar0, ef0, ar1, ef1) in enumerate(values):
            rows.append({"benchmark": bench, "t_mix": 0.1, "codes": "uniform", "seed": seed,
                         "forget": "0", "before.A_R": ar0, "before.E_F": ef0,
                         "after.A_R": ar1, "after.E_F": ef1, "lambda1": 0.001, "lambda2": 10.0})
    return rows


def test_table2_cells_are_mean_and_sample_std_with_the_papers_number(tmp_path):
    summary = write_rows(tmp_path / "forget_main.csv", forget_runs())
    paper = tmp_path / "paper.yaml"
    paper.write_text(yaml.safe_dump({"table2": {"Ours": {"MNIST": [95.9, 0.1]}}}))
    artefact = by_id({"benchmarks": BENCHMARKS})["table2"]
    out = outputs(tmp_path, artefact)
    draw(artefact, {"summaries": [summary], "paper": str(paper)}, out, BENCHMARKS)
    cells = {(r["row"], r["benchmark"]): r for r in csv.DictReader(open(out["csv"]))}
    ours_b = cells[("Ours", "b")]
    assert float(ours_b["mean"]) == pytest.approx(statistics.fmean([60, 66, 62]))
    assert float(ours_b["std"]) == pytest.approx(statistics.stdev([60, 66, 62]))  # sample std
    assert float(cells[("Before forgetting", "a")]["mean"]) == pytest.approx(81.0)
    assert cells[("Ours", "a")]["paper"] == "95.9 ± 0.1" and cells[("Ours", "b")]["paper"] == ""
    md = Path(out["md"]).read_text()
    assert "| Ours | **90.5 ± 0.7** (paper 95.9 ± 0.1) | **62.7 ± 3.1** |" in md  # alone: best
    assert "Seeds per cell: 2, 3." in md and "Ours: lambda1 = 0.001, lambda2 = 10 for a" in md


def test_table2_shows_the_paper_rule_and_auto_with_the_rule_in_the_notes(tmp_path):
    paper_runs = [{**r, "lambda_rule": "select on validation"} for r in forget_runs()]
    # auto: each request its own lambda; A_R after = before - 1 (a: 79, 81; b: 69, 73, 70)
    auto_runs = [{**r, "after.A_R": float(r["before.A_R"]) - 1, "lambda_rule": "auto",
                  "lambda1": 10.0 ** -(3 + i), "lambda2": 10.0 ** -i}
                 for i, r in enumerate(forget_runs())]
    summaries = [write_rows(tmp_path / "main.csv", paper_runs),
                 write_rows(tmp_path / "auto.csv", auto_runs)]
    paper = tmp_path / "paper.yaml"
    paper.write_text(yaml.safe_dump({"table2": {"Ours": {"MNIST": [95.9, 0.1]}}}))
    artefact = by_id({"benchmarks": BENCHMARKS})["table2"]
    out = outputs(tmp_path, artefact)
    benchmarks = [BENCHMARKS[0], {**BENCHMARKS[1], "note": "a weak stand-in."}]
    draw(artefact, {"summaries": summaries, "paper": str(paper)}, out, benchmarks)
    md = Path(out["md"]).read_text()
    assert "| Ours | **90.5 ± 0.7** (paper 95.9 ± 0.1) | 62.7 ± 3.1 |" in md
    assert "| Ours (auto) | 80.0 ± 1.4 | **70.7 ± 2.1** |" in md
    assert "Ours: lambda1 = 0.001, lambda2 = 10 for a (rule: select on validation)." in md
    assert "Ours (auto): lambda per forget request, lambda1 0.0001 to 0.001 (2 distinct) for a" in md
    assert "B: a weak stand-in." in md


def test_table8_groups_by_forget_class(tmp_path):
    rows = []
    for forget, values in (("1", [50.0, 60.0]), ("2", [70.0, 90.0])):
        for seed, after in enumerate(values):
            rows.append({"benchmark": "a", "seed": seed, "forget": forget, "after.A_R": after,
                         "after.E_F": 100.0 - seed})
    summary = write_rows(tmp_path / "other.csv", rows)
    paper = tmp_path / "paper.yaml"
    paper.write_text(yaml.safe_dump({"table8": {1: {"MNIST": {"A_R": 95.4, "E_F": 100}}}}))
    artefact = by_id({"benchmarks": BENCHMARKS})["table8"]
    out = outputs(tmp_path, artefact)
    draw(artefact, {"summaries": [summary], "paper": str(paper)}, out, BENCHMARKS[:1])
    cells = {(r["row"], r["metric"]): r for r in csv.DictReader(open(out["csv"]))}
    assert float(cells[("2", "A_R")]["mean"]) == pytest.approx(80.0)
    assert float(cells[("2", "A_R")]["std"]) == pytest.approx(statistics.stdev([70, 90]))
    assert cells[("1", "A_R")]["paper"] == "95.4" and cells[("2", "A_R")]["paper"] == ""


def test_a_missing_benchmark_is_a_dash_not_a_blank(tmp_path):
    summary = write_rows(tmp_path / "forget_main.csv", [r for r in forget_runs() if r["benchmark"] == "a"])
    paper = tmp_path / "paper.yaml"
    paper.write_text("{}\n")
    artefact = by_id({"benchmarks": BENCHMARKS})["table3"]
    out = outputs(tmp_path, artefact)
    draw(artefact, {"summaries": [summary], "paper": str(paper)}, out, BENCHMARKS)
    assert "| Ours | **99.5 ± 0.7** | — |" in Path(out["md"]).read_text()


def test_figures_are_drawn_as_pdf_and_png(tmp_path):
    train = write_rows(tmp_path / "acc.csv", [
        {"benchmark": "a", "t_mix": t, "seed": s, "accuracy": 90 - 10 * t + s}
        for t in (0.0, 0.5) for s in (0, 1)])
    config = {"benchmarks": BENCHMARKS, "lambda_sweep_figures": [{"figure": "fig6", "benchmark": "a"}]}
    fig2 = by_id(config)["fig2"]
    draw(fig2, {"summaries": [train]}, outputs(tmp_path, fig2), BENCHMARKS)
    grid = write_rows(tmp_path / "grid.csv", [
        {"benchmark": "a", "seed": s, "lambda1": l1, "lambda2": l2, "A_R": 80 - l1, "E_F": 50 + l2}
        for s in (0, 1) for l1 in (1e-3, 1e-2) for l2 in (1.0, 10.0)])
    lambdas = tmp_path / "lambda.json"
    lambdas.write_text(json.dumps({"benchmark": "a", "lambda1": 1e-3, "lambda2": 10.0,
                                   "selected": True}))
    fig6 = by_id(config)["fig6"]
    out = outputs(tmp_path, fig6)
    draw(fig6, {"summaries": [grid], "lambdas": str(lambdas)}, out, BENCHMARKS)
    for path in [*outputs(tmp_path, fig2).values(), *out.values()]:
        head = Path(path).read_bytes()[:5]
        assert head in (b"%PDF-", b"\x89PNG\r"), path


def baseline_runs():
    """SSD on both benchmarks; ERM-KTP refuses benchmark a (its MLP) and runs on b; retraining
    on a; no other method ran."""
    rows = []
    for seed in (0, 1):
        for bench, method, ar, ef, seconds in (("a", "ssd", 92.0 + seed, 100.0, 2.0 + seed),
                                               ("b", "ssd", 50.0, 90.0 + seed, 4.0),
                                               ("b", "erm_ktp", 64.0 + 2 * seed, 100.0, 30.0),
                                               ("a", "retrain", 99.0, 100.0, 100.0 + seed)):
            rows.append({"benchmark": bench, "seed": seed, "forget": "0", "method": method,
                         "unsupported": "", "before.A_R": 80.0, "after.A_R": ar,
                         "after.E_F": ef, "timer.seconds": seconds})
        rows.append({"benchmark": "a", "seed": seed, "forget": "0", "method": "erm_ktp",
                     "unsupported": "CNNs only", "before.A_R": "", "after.A_R": "",
                     "after.E_F": "", "timer.seconds": ""})
    return rows


def draw_table(tmp_path, table, paper=None):
    ours = write_rows(tmp_path / "forget_main.csv", forget_runs())
    baselines = write_rows(tmp_path / "baselines_main.csv", baseline_runs())
    paper_file = tmp_path / "paper.yaml"
    paper_file.write_text(yaml.safe_dump(paper or {}))
    artefact = by_id({"benchmarks": BENCHMARKS})[table]
    out = outputs(tmp_path, artefact)
    draw(artefact, {"summaries": [ours, baselines], "paper": str(paper_file)}, out, BENCHMARKS)
    cells = {(r["row"], r["benchmark"]): r for r in csv.DictReader(open(out["csv"]))}
    return cells, Path(out["md"]).read_text()


def test_method_rows_in_the_papers_order_with_the_best_in_bold(tmp_path):
    cells, md = draw_table(tmp_path, "table2", {"table2": {"SSD": {"MNIST": [96.9, 0.0]}}})
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ")][1:]
    # methods that did not run (FastMU, LwSF, SFDN) have no row
    assert rows == ["Before forgetting", "SSD", "ERM-KTP", "Retrain", "Ours"]
    # column a: SSD's 92.5 beats ours (90.5); retraining's 99.0 is a reference, never bold
    assert "| SSD | **92.5 ± 0.7** (paper 96.9 ± 0) | 50.0 ± 0.0 |" in md
    assert "| Retrain | 99.0 ± 0.0 | — |" in md
    # column b: ERM-KTP 65.0 beats ours 62.7 and SSD 50.0
    assert "| ERM-KTP | — | **65.0 ± 1.4** |" in md
    assert "| Ours | 90.5 ± 0.7 | 62.7 ± 3.1 |" in md
    assert cells[("SSD", "a")]["best"] == "True" and cells[("Ours", "a")]["best"] == "False"
    assert float(cells[("SSD", "a")]["mean"]) == pytest.approx(92.5)


def test_an_unsupported_method_is_a_dash_with_its_reason(tmp_path):
    cells, md = draw_table(tmp_path, "table3")
    assert cells[("ERM-KTP", "a")]["n"] == "0" and cells[("ERM-KTP", "a")]["unsupported"] == "CNNs only"
    assert "— ERM-KTP on A: CNNs only." in md
    # E_F on a: SSD 100.0 beats ours (99.5); on b ERM-KTP's 100.0 beats ours (98.3) and SSD
    assert "| SSD | **100.0 ± 0.0** | 90.5 ± 0.7 |" in md
    assert "| ERM-KTP | — | **100.0 ± 0.0** |" in md


def test_fig3_draws_every_benchmark_in_the_summaries(tmp_path, monkeypatch):
    ours = write_rows(tmp_path / "forget_main.csv",
                      [{**r, "timer.seconds": 0.01} for r in forget_runs()])
    rows = baseline_runs() + [{**baseline_runs()[0], "benchmark": "imagenet"}]
    baselines = write_rows(tmp_path / "baselines_main.csv", rows)
    artefact = by_id({"benchmarks": BENCHMARKS})["fig3"]
    out = outputs(tmp_path, artefact)
    drawn = {}
    from mnemu.artefacts import _plots
    real_save = _plots.save
    monkeypatch.setattr("mnemu.artefacts.fig3.save",
                        lambda fig, o: (drawn.update(fig=fig), real_save(fig, o)))
    draw(artefact, {"summaries": [ours, baselines]}, out, BENCHMARKS)
    ax = drawn["fig"].axes[0]
    assert ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "B", "imagenet"]
    from matplotlib.container import BarContainer

    heights = {c.get_label(): [p.get_height() for p in c.patches] for c in ax.containers
               if isinstance(c, BarContainer)}
    assert heights["SSD"] == pytest.approx([2.5, 4.0, 2.0])  # a: mean of 2 and 3
    assert heights["ERM-KTP"] == pytest.approx([30.0])  # unsupported on a: no bar
    assert heights["Ours"] == pytest.approx([0.01, 0.01])
    for path in out.values():
        assert Path(path).read_bytes()[:5] in (b"%PDF-", b"\x89PNG\r")
def test_table6_cells_are_mean_absolute_gradients_per_group(tmp_path):
    """Two seeds' per-tensor sums -> each group's sum |g| / count, mean ± std over the seeds."""
    rows = []
    for seed, scale in ((0, 1.0), (1, 3.0)):
        row = {"benchmark": "a", "seed": seed}
        for which in ("whole", "forget", "remain"):
            # conv1.weight: 4 parameters, |g| sum 4e-5; layer1.0.conv1.weight: 6 parameters, 3e-5
            for name, numel, abs_sum in (("conv1.weight", 4, 4e-5), ("layer1.0.conv1.weight", 6, 3e-5)):
                row[f"gradients.{which}.{name}.numel"] = numel
                row[f"gradients.{which}.{name}.abs_sum"] = abs_sum * scale
                row[f"gradients.{which}.{name}.square_sum"] = 0.0
        rows.append(row)
    summary = write_rows(tmp_path / "grads.csv", rows)
    paper = tmp_path / "paper.yaml"
    paper.write_text(yaml.safe_dump({"table6": {"whole": {"stem": 6.9e-6}}}))
    benchmarks = [{"id": "a", "label": "A", "paper_column": "CIFAR10"}]
    config = {"benchmarks": benchmarks, "gradient_benchmark": "a",
              "gradient_layer_groups": [{"name": "stem", "prefixes": ["conv1"]},
                                        {"name": "all", "prefixes": ["conv1", "layer1"]}]}
    artefact = by_id(config)["table6"]
    out = outputs(tmp_path, artefact)
    draw(artefact, {"summaries": [summary], "paper": str(paper)}, out, benchmarks)
    cells = {(r["row"], r["metric"]): r for r in csv.DictReader(open(out["csv"]))}
    stem = cells[("|∇L(w*)|", "stem")]
    assert float(stem["mean"]) == pytest.approx(statistics.fmean([1e-5, 3e-5]))
    assert float(stem["std"]) == pytest.approx(statistics.stdev([1e-5, 3e-5]))
    assert stem["paper"] == "6.9e-06"
    assert float(cells[("|∇L_CR(w*)|", "all")]["mean"]) == pytest.approx(
        statistics.fmean([7e-5 / 10, 21e-5 / 10]))
    assert "mean absolute value per parameter" in Path(out["md"]).read_text()


def test_analysis_figures_are_drawn(tmp_path):
    benchmarks = [{"id": "a", "label": "A"}]
    w_data = write_rows(tmp_path / "w.csv", [
        {"benchmark": "a", "seed": s, "source": src, "samples_per_class": n,
         "after.A_R": 50 + n / 100, "after.E_F": 90 + s}
        for s in (0, 1) for src, n in (("data1", 1), ("data10", 10), ("data", 600))])
    main = write_rows(tmp_path / "main.csv", forget_runs())
    errors = write_rows(tmp_path / "e.csv", [
        {"benchmark": "a", "seed": s, "t_mix": t, "source": src, "samples_per_class": n,
         "error.forget": 1e-6 / n + s * 1e-8, "error.remain": 2e-7 / n}
        for s in (0, 1) for t, src, n in ((0, "data1", 1), (0, "data10", 10), (0.1, "codes", 1),
                                          (0.3, "codes", 1))])
    arts = by_id({"benchmarks": benchmarks})
    for name, summaries in (("fig4", [w_data, main]), ("fig5", [errors]), ("fig10", [errors])):
        out = outputs(tmp_path, arts[name])
        draw(arts[name], {"summaries": summaries}, out, benchmarks)
        for path in out.values():
            assert Path(path).read_bytes()[:5] in (b"%PDF-", b"\x89PNG\r"), path
