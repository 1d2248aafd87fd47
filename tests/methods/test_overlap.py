"""bigramlab.methods.overlap against naive references.

The chance distribution is checked against brute force: every placement of
one mask's kept entries within each matrix is enumerated (the other mask stays
put; randomising both gives the same distribution), and the per-matrix
distributions are combined by a double loop over outcomes.
"""

import itertools
import math
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods.overlap import chance_overlap, overlap_stats


def naive_matrix_distribution(n: int, ka: int, kb: int) -> Counter:
    """Overlap counts over all C(n, kb) placements of b against a fixed a."""
    a = set(range(ka))
    return Counter(len(a & set(pos)) for pos in itertools.combinations(range(n), kb))


def naive_chance(shapes_counts) -> dict[int, float]:
    """{overlap: probability} for independent matrices, by brute force."""
    dist = {0: 1.0}
    for n, ka, kb in shapes_counts:
        counts = naive_matrix_distribution(n, ka, kb)
        total = sum(counts.values())
        new = {}
        for x, px in dist.items():
            for y, cy in counts.items():
                new[x + y] = new.get(x + y, 0.0) + px * cy / total
        dist = new
    return dist


@st.composite
def mask_pairs(draw, max_matrices=3, max_entries=9):
    a, b = {}, {}
    for i in range(draw(st.integers(1, max_matrices))):
        n = draw(st.integers(1, max_entries))
        a[f"m{i}"] = torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
        b[f"m{i}"] = torch.tensor(draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    return a, b


@settings(max_examples=60, deadline=None)
@given(mask_pairs())
def test_chance_distribution_equals_brute_force(pair):
    a, b = pair
    want = naive_chance([(m.numel(), int(m.sum()), int(b[k].sum())) for k, m in a.items()])
    got = chance_overlap(a, b)
    got_pmf = dict(zip(got.support.tolist(), got.pmf.tolist()))
    for k in set(want) | set(got_pmf):
        assert got_pmf.get(k, 0.0) == pytest.approx(want.get(k, 0.0), abs=1e-12)
    mean = sum(k * p for k, p in want.items())
    sd = math.sqrt(sum((k - mean) ** 2 * p for k, p in want.items()))
    assert got.mean == pytest.approx(mean, abs=1e-12)
    assert got.sd == pytest.approx(sd, abs=1e-9)
    for k in range(-1, max(want) + 2):
        assert got.p_at_least(k) == pytest.approx(sum(p for x, p in want.items() if x >= k),
                                                  abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(mask_pairs())
def test_overlap_stats_against_set_arithmetic(pair):
    a, b = pair
    kept_a = {(k, i) for k, m in a.items() for i in torch.nonzero(m).flatten().tolist()}
    kept_b = {(k, i) for k, m in b.items() for i in torch.nonzero(m).flatten().tolist()}
    entries = sum(m.numel() for m in a.values())
    s = overlap_stats(a, b)
    assert (s["kept_a"], s["kept_b"], s["both"]) == (len(kept_a), len(kept_b), len(kept_a & kept_b))
    assert (s["only_a"], s["only_b"]) == (len(kept_a - kept_b), len(kept_b - kept_a))
    assert s["entries"] == entries
    assert s["share_of_all"] == len(kept_a & kept_b) / entries
    assert s["jaccard"] == (len(kept_a & kept_b) / len(kept_a | kept_b) if kept_a | kept_b else 0)
    assert s["share_of_a"] == (len(kept_a & kept_b) / len(kept_a) if kept_a else 0)
    chance = sum(int(m.sum()) * int(b[k].sum()) / m.numel() for k, m in a.items())
    assert s["chance"] == pytest.approx(chance)


def test_large_masks_match_a_shuffle_estimate():
    """The reference estimates chance with shuffles; on masks too big to enumerate the
    exact mean, sd and tail agree with 4,000 shuffles within their sampling error."""
    g = torch.Generator().manual_seed(0)
    a = {"x": torch.rand(64, 64, generator=g) < 0.3, "y": torch.rand(32, 48, generator=g) < 0.05}
    b = {"x": torch.rand(64, 64, generator=g) < 0.2, "y": torch.rand(32, 48, generator=g) < 0.5}
    chance = chance_overlap(a, b)
    sims = []
    for _ in range(4000):
        total = 0
        for k in a:
            perm = torch.randperm(b[k].numel(), generator=g)
            total += int((a[k].flatten() & b[k].flatten()[perm]).sum())
        sims.append(total)
    sims = torch.tensor(sims, dtype=torch.float64)
    assert chance.mean == pytest.approx(float(sims.mean()), abs=4 * chance.sd / math.sqrt(4000))
    assert chance.sd == pytest.approx(float(sims.std()), rel=0.05)
    k = int(chance.mean + 2 * chance.sd)
    assert chance.p_at_least(k) == pytest.approx(float((sims >= k).double().mean()), abs=0.01)
    assert abs(chance.pmf.sum() - 1) < 1e-12


def test_identical_masks_are_far_above_chance():
    g = torch.Generator().manual_seed(1)
    a = {"x": torch.rand(200, 100, generator=g) < 0.05}
    s = overlap_stats(a, a)
    assert s["both"] == s["kept_a"] and s["jaccard"] == 1.0
    assert s["ratio"] == pytest.approx(20, rel=0.1)
    assert s["p_value"] < 1e-12


def test_masks_of_different_models_are_rejected_by_name():
    a = {"x": torch.ones(2, 2, dtype=torch.bool)}
    with pytest.raises(ValueError, match="'x' is in only one of them"):
        overlap_stats(a, {"y": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match=r"x: shapes differ, \(2, 2\) vs \(4,\)"):
        overlap_stats(a, {"x": torch.ones(4, dtype=torch.bool)})
