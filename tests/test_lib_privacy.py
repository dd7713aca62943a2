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
