"""Fig. 11: losses of the forget class's training (members) and test samples (non-members),
before (a) and after (b) forgetting, and (c, beyond the paper) for the model retrained
without the class; the first seed, the attacks' AUCs in the titles."""

from ..files import read_csv
from ._appendix import loss_histograms
from ._plots import pyplot, save

PANELS = (("trained", "(a) before forgetting"), ("forgotten", "(b) after forgetting (ours)"),
          ("retrained", "(c) retrained without the class"))


def draw(inputs, outputs, benchmarks) -> None:
    losses_path, aucs_path = inputs["summaries"]
    rows, aucs = read_csv(losses_path), read_csv(aucs_path)
    seed = min(int(r["seed"]) for r in rows)
    fig, axes = pyplot().subplots(1, len(PANELS), figsize=(12, 3.2))
    for ax, (role, title) in zip(axes, PANELS):
        mine = [r for r in rows if r["model"] == role and int(r["seed"]) == seed]
        groups = {"train (member)": [float(r["loss"]) for r in mine if r["split"] == "train"],
                  "test (non-member)": [float(r["loss"]) for r in mine if r["split"] == "test"]}
        auc = {r["attack"]: float(r["auc"]) for r in aucs
               if r["model"] == role and int(r["seed"]) == seed}
        loss_histograms(ax, groups, f"{title}\nAUC loss threshold {auc.get('loss_threshold', 0):.2f},"
                                    f" logistic {auc.get('logistic', 0):.2f} (seed {seed})")
    save(fig, outputs)
