"""Beside Fig. 11: membership-inference AUCs on the forget class (train vs test samples), per
model (trained, forgotten by us, retrained without the class) and attack."""

from ..files import read_csv
from ._appendix import cell, write_rows
from ._tables import paper_value, read_paper

TITLE = ("Membership inference on the forget class (App. C.1): AUC of telling its training "
         "samples from its test samples (0.5 = chance), mean ± std over seeds")
MODELS = ("trained", "forgotten", "retrained")
ATTACKS = {"loss_threshold": "loss threshold (the paper's)",
           "logistic": "logistic regression on loss, confidence, entropy (5-fold CV)"}


def draw(inputs, outputs, benchmarks) -> None:
    runs = read_csv(inputs["summaries"][0])
    paper = read_paper(inputs, "fig11_auc")
    records = []
    for model in MODELS:
        for attack, label in ATTACKS.items():
            mine = [r for r in runs if r["model"] == model and r["attack"] == attack]
            records.append({"model": model, "attack": label, "benchmark": runs[0]["benchmark"],
                            **cell([r["auc"] for r in mine]), "digits": 3,
                            "paper": paper_value(paper, model, attack) or ""})
    write_rows(records, outputs, TITLE, ["model", "attack"],
               notes=["Members: the forget class's training samples (no augmentation); "
                      "non-members: its test samples. The logistic attack balances the two "
                      "groups by subsampling."])
