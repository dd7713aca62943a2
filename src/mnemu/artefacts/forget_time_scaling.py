"""Beyond the paper: whole Alg. 2 wall time and peak memory against the number of classes."""

from ..files import read_csv, write_csv
from ._plots import pyplot, save


def linear_fit(xs, ys) -> tuple[float, float]:
    """Least-squares ``y = intercept + slope * x``; returns (slope, intercept)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return slope, my - slope * mx


def draw(inputs, outputs, benchmarks, scaling) -> None:
    rows = read_csv(inputs["summaries"][0])
    archs = list(dict.fromkeys(r["architecture"] for r in rows))
    fig, (ax_t, ax_m) = pyplot().subplots(1, 2, figsize=(9, 3.4))
    table = []
    for arch in archs:
        mine = sorted((r for r in rows if r["architecture"] == arch), key=lambda r: int(r["classes"]))
        xs = [int(r["classes"]) for r in mine]
        ys = [float(r["seconds"]) for r in mine]
        slope, intercept = linear_fit(xs, ys)
        for r in mine:
            table.append({**r, "fit_slope_ms_per_class": 1e3 * slope,
                          "fit_intercept_seconds": intercept})
        line = ax_t.plot(xs, ys, "o", label=f"{arch}: {1e3 * slope:.3g} ms/class")[0]
        fitted = [intercept + slope * x for x in xs]
        ax_t.plot(xs, fitted, "--", color=line.get_color(), alpha=0.7)
        ax_m.plot(xs, [float(r["peak_memory_mb"]) for r in mine], "o-", color=line.get_color(),
                  label=arch)
    device = rows[0]["device"] if rows else "?"
    memory = rows[0]["memory"] if rows else ""
    ax_t.set_xlabel("number of classes C (one code each)")
    ax_t.set_ylabel("whole Alg. 2 (s)")
    ax_t.set_title(f"Forget time on {device}, {scaling['input_size']}x{scaling['input_size']} "
                   "(dashed: linear fit)", fontsize=8)
    ax_m.set_xlabel("number of classes C")
    ax_m.set_ylabel("peak memory (MB)")
    ax_m.set_title("GPU memory allocated" if memory == "gpu_allocated"
                   else "process resident high-water mark (CPU)", fontsize=8)
    for ax in (ax_t, ax_m):
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if scaling["input_size"] < 224 or max(scaling["classes"]) < 10000:
        fig.suptitle("Reduced points for a CPU time budget (the paper configuration: C up to "
                     "10,000 at 224x224)", fontsize=8)
    write_csv(outputs["csv"], table)
    save(fig, outputs)
