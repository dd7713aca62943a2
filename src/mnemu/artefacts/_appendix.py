"""What App. C's artefacts share: simple row tables (CSV + Markdown, the paper's number beside
ours) and loss histograms."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..files import atomic_write_text, write_csv
from ._tables import mean_std_text, stats


def cell(values) -> dict:
    """mean / std / n of ``values`` (blank when there are none)."""
    return stats(values) if values else {"mean": "", "std": "", "n": 0}


def write_rows(records: Sequence[dict], outputs: Mapping, title: str, columns: Sequence[str],
               notes: Sequence[str] = ()) -> None:
    """``records`` to the CSV as they are, and to Markdown with ``columns`` first, then
    ``ours`` (mean ± std over n seeds) and ``paper``."""
    write_csv(outputs["csv"], list(records))
    lines = [f"**{title}**", "", "| " + " | ".join([*columns, "ours", "paper"]) + " |",
             "|" + "---|" * (len(columns) + 2)]
    for r in records:
        spec = f".{r.get('digits', 2)}f"
        ours = "—" if r["mean"] == "" else f"{mean_std_text(r, spec)} (n={r['n']})"
        lines.append("| " + " | ".join([*(str(r[c]) for c in columns), ours,
                                        str(r.get("paper") or "—")]) + " |")
    lines += ["", *notes]
    atomic_write_text(outputs["md"], "\n".join(lines) + "\n")


def write_skipped(outputs: Mapping, title: str, reason: str) -> None:
    """A table that is not built in this configuration: the reason in its place."""
    write_csv(outputs["csv"], [{"skipped": reason}])
    atomic_write_text(outputs["md"], f"**{title}**\n\nNot built: {reason}\n")


def loss_histograms(ax, groups: Mapping[str, Sequence[float]], title: str) -> None:
    """One step histogram per group on shared log-spaced bins (losses span decades)."""
    values = [v for vs in groups.values() for v in vs]
    low = max(min(values), 1e-6)
    high = max(max(values), low * 10)
    bins = [low * (high / low) ** (i / 40) for i in range(41)]
    for name, vs in groups.items():
        if vs:
            ax.hist([max(v, low) for v in vs], bins=bins, histtype="step", density=True,
                    linewidth=1.2, label=f"{name} (n={len(vs)})")
    ax.set_xscale("log")
    ax.set_xlabel("loss (cross-entropy, nats, log scale)")
    ax.set_ylabel("density")
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=6)
    ax.grid(alpha=0.3)


def finite(rows, key):
    return [float(r[key]) for r in rows if r[key] != "" and math.isfinite(float(r[key]))]
