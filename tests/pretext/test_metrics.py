"""Held-out pretext metrics: retrieval, localisation and reconstruction, on hand-worked tensors."""

import pytest
import torch

from correlearn.losses.mae import masked_mse, norm_pix
from correlearn.pretext.metrics import (
    centre_prior,
    mean_patch_prediction,
    peak_in_box,
    retrieval_chance,
    retrieval_top1,
    thresholded_iou,
    two_view_retrieval,
)


def _distinct(n=5, d=8, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


def test_retrieval_identical_pairs_score_one_and_shifted_pairs_zero():
    q = _distinct()
    assert retrieval_top1(q, q.clone()) == 1.0
    # keys[i] = q[i - 1]: every query's nearest key is its neighbour's, never its own.
    assert retrieval_top1(q, torch.roll(q, 1, dims=0)) == 0.0


def test_retrieval_constant_embedding_is_exactly_chance():
    # All ties: argmax is index 0 for every query, so only query 0 is right.
    assert retrieval_top1(torch.ones(4, 3), torch.ones(4, 3)) == 0.25
    assert retrieval_chance(4) == 0.25


def test_retrieval_hand_worked_two_of_three():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.9]])
    k = torch.tensor([[1.0, 0.1], [0.1, 1.0], [-1.0, 1.0]])
    # cos(q2, k0) = 1.09 / (1.345 * 1.005) ~ 0.81 > cos(q2, k1) ~ 0.74 > cos(q2, k2) < 0:
    # q2 retrieves k0; q0 -> k0 and q1 -> k1 are right.
    assert retrieval_top1(q, k, center=False) == pytest.approx(2 / 3)


def test_retrieval_centring_removes_a_hub_key():
    # Every item shares a large component u (the last axis), as projection heads' outputs do;
    # key 0 leans much further into it. Raw cosines: cos(q_i, k_0) = 60/(sqrt(10) sqrt(401))
    # ~ 0.947 beats each partner's 4/(sqrt(10) sqrt(2)) ~ 0.894, so k_0 is every query's
    # nearest key and only q_0 is right. Centred, u leaves the queries (all share it) and only
    # lengthens the hub key: every partner comes first.
    q = torch.cat([torch.eye(4), torch.full((4, 1), 3.0)], dim=1)
    k = torch.cat([torch.eye(4), torch.tensor([[20.0], [1.0], [1.0], [1.0]])], dim=1)
    assert retrieval_top1(q, k, center=False) == 0.25
    assert retrieval_top1(q, k) == 1.0


def test_retrieval_groups_leave_same_video_items_out():
    q = _distinct(3)
    # One group: each query's gallery is its partner alone, even for shuffled keys.
    assert retrieval_top1(q, torch.roll(q, 1, dims=0), torch.tensor([0, 0, 0])) == 1.0
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    k = torch.tensor([[0.6, 0.8], [1.0, 0.01], [-1.0, 1.0]])
    # Without groups: q0 -> k1 (cos ~1), q1 -> k0 (0.8), q2 -> k0 (0.99): none right.
    assert retrieval_top1(q, k, center=False) == 0.0
    # Groups {0, 1} and {2}: q0's gallery is {k0, k2} -> k0 (0.6 > -0.71), right; q1's is
    # {k1, k2} -> k2 (0.71 > 0.01), wrong; q2's is every key -> k0, wrong.
    groups = torch.tensor([0, 0, 1])
    assert retrieval_top1(q, k, groups, center=False) == pytest.approx(1 / 3)
    # Galleries of 2, 2 and 3 keys: mean(1/2, 1/2, 1/3) = 4/9.
    assert retrieval_chance(3, groups) == pytest.approx(4 / 9)


def test_retrieval_shape_mismatch_raises():
    with pytest.raises(ValueError):
        retrieval_top1(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError):
        retrieval_top1(torch.zeros(3), torch.zeros(3))


def _identity(x):
    return x.flatten(1)


def test_two_view_retrieval_identical_and_deranged_views():
    x1 = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(1))
    assert two_view_retrieval(_identity, _identity, [(x1, x1.clone())]) == 1.0
    deranged = x1[torch.tensor([1, 2, 3, 0])]
    assert two_view_retrieval(_identity, _identity, [(x1, deranged)]) == 0.0


def test_two_view_retrieval_pools_chunks_into_one_gallery():
    g = torch.Generator().manual_seed(2)
    a, b = torch.randn(2, 3, 2, 2, generator=g), torch.randn(2, 3, 2, 2, generator=g)
    # Items [a0, a1, b0, b1] have second views [b0, b1, a0, a1]: pooled, every query finds its
    # own first view in the other chunk, never its partner (per chunk it would be a coin toss).
    assert two_view_retrieval(_identity, _identity, [(a, b), (b, a)]) == 0.0
    # Constant embeddings, two chunks of 2: chance among 4 items (1/4), not among 2 (1/2).
    c = torch.ones(2, 3, 2, 2)
    assert two_view_retrieval(_identity, _identity, [(c, c), (c, c)]) == 0.25


def _box_map():
    m = torch.zeros(1, 4, 4)
    m[0, 1:3, 1:3] = 1.0
    return m


def test_peak_in_box_inside_and_outside():
    maps = _box_map().expand(2, 4, 4)
    probs = torch.zeros(2, 4, 4)
    probs[0, 2, 2] = 0.9  # inside the box
    probs[1, 0, 3] = 0.9  # top-right corner, outside
    probs[1, 1, 1] = 0.8  # inside, but not the peak
    assert peak_in_box(probs, maps).tolist() == [1.0, 0.0]


def test_thresholded_iou_hand_worked():
    maps = _box_map()  # 4 px
    probs = torch.zeros(1, 4, 4)
    probs[0, 1, 1:3] = 0.9  # 2 px, both inside the box
    probs[0, 3, 3] = 0.5  # at the threshold: not predicted (y_hat > 0.5)
    assert thresholded_iou(probs, maps).tolist() == [0.5]
    outside = torch.zeros(1, 4, 4)
    outside[0, 0, 0] = 1.0
    assert thresholded_iou(outside, maps).tolist() == [0.0]
    # Empty prediction and empty ground truth: empty union counts as 1.
    assert thresholded_iou(torch.full((1, 4, 4), 0.1), torch.zeros(1, 4, 4)).tolist() == [1.0]


def _square(n, y0, x0, side, size=7):
    m = torch.zeros(n, size, size)
    m[:, y0 : y0 + side, x0 : x0 + side] = 1.0
    return m


def test_centre_prior_peaks_at_centre_with_the_mean_area():
    maps = torch.cat([_square(1, 0, 0, 3), _square(1, 4, 4, 3)])  # mean area 9
    prior = centre_prior(maps)
    assert prior.shape == (2, 7, 7)
    assert prior.flatten(1).argmax(1).tolist() == [3 * 7 + 3] * 2
    assert (prior > 0.5).sum((1, 2)).tolist() == [9, 9]
    assert bool((prior[:, 2:5, 2:5] > 0.5).all())  # the centred 3x3 square
    big = centre_prior(_square(2, 0, 0, 5))  # mean area 25 -> the centred 5x5 square
    assert (big > 0.5).sum((1, 2)).tolist() == [25, 25]
    assert bool((big[:, 1:6, 1:6] > 0.5).all())


def test_perfect_predictor_beats_centre_prior_on_off_centre_boxes():
    maps = torch.cat([_square(1, 0, 0, 2), _square(1, 5, 5, 2)])
    assert peak_in_box(maps, maps).tolist() == [1.0, 1.0]
    assert thresholded_iou(maps, maps).tolist() == [1.0, 1.0]
    prior = centre_prior(maps)
    assert peak_in_box(prior, maps).tolist() == [0.0, 0.0]
    assert thresholded_iou(prior, maps).tolist() == [0.0, 0.0]
    # A centred box is found by the prior.
    centred = _square(1, 2, 2, 3)
    assert peak_in_box(centre_prior(centred), centred).tolist() == [1.0]
    assert thresholded_iou(centre_prior(centred), centred).tolist() == [1.0]


def test_mean_patch_prediction():
    t = torch.tensor([[[1.0, 2.0, 6.0], [0.0, 0.0, 3.0]]])
    assert mean_patch_prediction(t).tolist() == [[[3.0, 3.0, 3.0], [1.0, 1.0, 1.0]]]
    # Under norm_pix each patch has mean 0 and unbiased variance 1: predicting 0 costs the
    # biased variance, (P - 1) / P.
    target = norm_pix(torch.randn(2, 10, 48, generator=torch.Generator().manual_seed(3)))
    pred = mean_patch_prediction(target)
    assert pred.abs().max() < 1e-5
    err = float(masked_mse(pred, target, torch.ones(2, 10)))
    assert err == pytest.approx(47 / 48, rel=1e-4)
