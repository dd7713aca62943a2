"""Table 4: pretrained, fine-tuned (with codes) and forgotten models per architecture (Sec. 4.4)."""

from ..files import atomic_write_text, read_csv, write_csv
from ._tables import mean_std_text, paper_value, read_paper, stats

STAGES = (("pretrained", "Pretrained"), ("finetuned", "Fine-tuned"), ("forget", "After MU"))
METRICS = (("A_R", "A_R (%)"), ("E_F", "E_F (%)"), ("seconds", "Time (s)"))


def _stage(value: str) -> str:
    return "forget" if value.startswith("forget") else value


def draw(inputs, outputs, benchmarks, imagenet, stand_in: bool) -> None:
    """``stand_in``: not ImageNet (the small configuration). The table then shows the chain's
    shape only, and every row says so: the report must not judge Sec. 4.4's claims on it."""
    runs = read_csv(inputs["summaries"][0])
    paper = read_paper(inputs, "table4")
    records = []
    for arch in imagenet["architectures"]:
        for stage, _ in STAGES:
            mine = [r for r in runs if r["architecture"] == arch["id"] and _stage(r["stage"]) == stage]
            for metric, _ in METRICS:
                values = [r[metric] for r in mine if r.get(metric) not in (None, "")]
                cell = stats(values) if values else {"mean": "", "std": "", "n": 0}
                ref = paper_value(paper, arch.get("paper_row", ""), stage, metric)
                records.append({"architecture": arch["id"], "stage": stage, "metric": metric,
                                **cell, "paper": ref or "", "stand_in": stand_in})
    write_csv(outputs["csv"], records)
    atomic_write_text(outputs["md"], _markdown(records, imagenet, stand_in))


def _given(options: dict | None) -> dict:
    """The options set (a null in a config that overrides another unsets a key: not shown)."""
    return {k: v for k, v in (options or {}).items() if v is not None}


def _cell(record: dict, metric: str) -> str:
    if record["n"] == 0:
        return "—"
    digits = 2 if metric == "seconds" and record["mean"] < 100 else 1
    paper = f" (paper {record['paper']})" if record["paper"] else ""
    return mean_std_text(record, f".{digits}f") + paper


def _markdown(records: list[dict], imagenet: dict, stand_in: bool) -> str:
    cells = {(r["architecture"], r["stage"], r["metric"]): r for r in records}
    lines = ["### Table 4: forgetting class(es) "
             f"{', '.join(map(str, imagenet['forget_classes']))} of {imagenet['dataset']}", ""]
    if stand_in:
        lines += ["**This is a stand-in for the ImageNet run, not Table 4's result**: "
                  f"{imagenet['dataset']} ({_given(imagenet.get('data_options'))}), models "
                  f"{'randomly initialised' if not any(a.get('pretrained') for a in imagenet['architectures']) else 'pretrained'}"
                  ", a few fine-tuning steps, so that every job of the chain runs on a CPU. "
                  "Compare nothing but the shape of the table with the paper's.", ""]
    header = ["Architecture", ""] + [label for _, label in METRICS]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arch in imagenet["architectures"]:
        for stage, label in STAGES:
            row = [arch.get("label", arch["id"]), label]
            for metric, _ in METRICS:
                if stage == "pretrained" and metric == "seconds":
                    row.append("—")
                else:
                    row.append(_cell(cells[(arch["id"], stage, metric)], metric))
            lines.append("| " + " | ".join(row) + " |")
    steps = ", ".join(f"{a.get('label', a['id'])} {a['steps']}" for a in imagenet["architectures"])
    lines += ["", f"Fine-tuning steps: {steps}; batch {imagenet['train']['batch_size']}, lr "
              f"{imagenet['train']['lr']:g}, weight decay {imagenet['train']['weight_decay']:g}, "
              f"t_mix {imagenet['t_mix']:g}; lambda1 = {imagenet['lambda'][0]:g}, lambda2 = "
              f"{imagenet['lambda'][1]:g}. Time: fine-tuning (its last run, if resumed), and the "
              "whole Alg. 2 (code Fisher job + perturbation and sign choice). Paper values in "
              "parentheses (one RTX 3090)."]
    return "\n".join(lines) + "\n"
