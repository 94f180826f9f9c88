"""IPD sampling (paper §3.2): Eq. 6 probabilities, Eq. 7/8 utilities, the role of epsilon, sampling frequencies."""
from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from anon_model.ipd import (
    appearance_distance,
    exponential_mechanism,
    geometry_distance,
    sample_delegate,
    utility_appearance,
    utility_geometry,
)


def test_probabilities_equal_eq6_written_out():
    u = torch.tensor([0.0, 0.25, 1.0, 0.6])
    eps, du = 3.0, 1.0
    weights = [math.exp(eps * float(v) / (2 * du)) for v in u]
    expected = torch.tensor([w / sum(weights) for w in weights], dtype=torch.float64)
    p = exponential_mechanism(u, eps, sensitivity=du)
    torch.testing.assert_close(p, expected)
    assert float(p.sum()) == pytest.approx(1.0)


def test_sensitivity_scales_the_budget():
    u = torch.tensor([0.0, 0.5, 1.0])
    torch.testing.assert_close(exponential_mechanism(u, 4.0, sensitivity=2.0), exponential_mechanism(u, 2.0))


def test_epsilon_zero_is_uniform():
    p = exponential_mechanism(torch.tensor([0.0, 0.3, 1.0, 0.9, 0.1]), 0.0)
    torch.testing.assert_close(p, torch.full((5,), 0.2, dtype=torch.float64))


def test_large_epsilon_picks_the_best_candidate():
    u = torch.tensor([0.2, 1.0, 0.7])
    assert float(exponential_mechanism(u, 200.0)[1]) > 1 - 1e-9
    assert torch.equal(exponential_mechanism(u, math.inf), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(0)
    assert {sample_delegate(u, 200.0, generator=g)[0] for _ in range(50)} == {1}


def test_invalid_arguments_are_rejected():
    with pytest.raises(ValueError):
        exponential_mechanism(torch.tensor([0.1]), -1.0)
    with pytest.raises(ValueError):
        exponential_mechanism(torch.tensor([]), 1.0)
    with pytest.raises(ValueError):
        exponential_mechanism(torch.tensor([0.1, 0.2]), 1.0, sensitivity=0.0)


def test_sampling_frequencies_match_probabilities():
    u = torch.tensor([0.0, 0.4, 0.8, 1.0])
    g = torch.Generator().manual_seed(1234)
    n = 4000
    draws = [sample_delegate(u, 2.0, generator=g)[0] for _ in range(n)]
    counts = torch.bincount(torch.tensor(draws), minlength=4).double()
    expected = exponential_mechanism(u, 2.0) * n
    _, pvalue = stats.chisquare(counts.numpy(), expected.numpy())
    assert pvalue > 0.01, (counts, expected)


def test_sampling_is_reproducible_with_a_seed():
    u = torch.rand(10, generator=torch.Generator().manual_seed(0))
    draw = lambda seed: [sample_delegate(u, 1.0, generator=torch.Generator().manual_seed(seed))[0] for _ in range(3)]
    assert draw(7) == draw(7)


def test_utility_appearance_eq7():
    d = torch.tensor([0.5, 0.9, 0.7, 1.3])
    u = utility_appearance(d)
    torch.testing.assert_close(u, (1.3 - d) / (1.3 - 0.5))
    assert int(u.argmax()) == 0 and int(u.argmin()) == 3  # nearest neighbour is the most useful appearance


def test_utility_geometry_eq8():
    d = torch.tensor([0.5, 0.9, 0.7, 1.3])
    u = utility_geometry(d)
    torch.testing.assert_close(u, (d - 0.5) / (1.3 - 0.5))
    assert int(u.argmax()) == 3  # the most distinct structure is preferred


def test_utilities_of_identical_distances_are_uniform():
    for fn in (utility_appearance, utility_geometry):
        torch.testing.assert_close(fn(torch.tensor([0.4, 0.4, 0.4])), torch.ones(3))
        torch.testing.assert_close(fn(torch.tensor([0.4])), torch.ones(1))


def test_appearance_distance_is_l2():
    x = torch.tensor([1.0, 0.0])
    c = torch.tensor([[1.0, 0.0], [4.0, 4.0], [1.0, -2.0]])
    torch.testing.assert_close(appearance_distance(x, c), torch.tensor([0.0, 5.0, 2.0]))


def test_geometry_distance_ignores_similarity_transforms():
    g = torch.Generator().manual_seed(0)
    s = torch.rand(68, 2, generator=g) * 100
    other = torch.rand(68, 2, generator=g) * 100
    angle = torch.tensor(0.4)
    rot = torch.stack([torch.stack([angle.cos(), -angle.sin()]), torch.stack([angle.sin(), angle.cos()])])
    moved = 2.5 * s @ rot.T + torch.tensor([30.0, -12.0])
    d = geometry_distance(s, torch.stack([moved, other]))
    assert float(d[0]) < 1e-4
    assert float(d[1]) > 0.1
    mirrored = s * torch.tensor([-1.0, 1.0])  # a reflection is not a similarity: must stay distinct
    assert float(geometry_distance(s, mirrored[None])[0]) > 0.1
