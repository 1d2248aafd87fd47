"""Covariance similarity: Frobenius cosines between layers, top components removed.

References written here: numpy's eigh to remove components, a double loop
for the cosines, and covariances with a planted outlier direction whose
removal is known exactly.
"""

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings, strategies as st

from bigramlab.methods.covariance import (covariance_similarity, frobenius_cosine,
                                          off_diagonal, remove_top_components)


def random_covs(n, d, seed, rank=None):
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n, d, rank or d, generator=g, dtype=torch.float64)
    return f @ f.transpose(1, 2)


def naive_remove(cov, k):
    vals, vecs = np.linalg.eigh(cov)
    if k:
        vals[-k:] = 0  # eigh is ascending: the top k are last
    return (vecs * vals) @ vecs.T


def naive_similarity(covs, k):
    cleaned = [naive_remove(c, k) for c in covs.numpy()]
    n = len(cleaned)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            a, b = cleaned[i], cleaned[j]
            out[i, j] = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    return out


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 6), d=st.integers(2, 9), k=st.integers(0, 1), seed=st.integers(0, 10**6))
def test_similarity_matches_a_double_loop(n, d, k, seed):
    covs = random_covs(n, d, seed)
    np.testing.assert_allclose(covariance_similarity(covs, k).numpy(), naive_similarity(covs, k),
                               rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 6), d=st.integers(2, 9), seed=st.integers(0, 10**6),
       scale=st.floats(1e-3, 1e3), which=st.integers(0, 5))
@example(n=4, d=2, seed=7, scale=3.0, which=0)
def test_diagonal_symmetry_range_and_scale_invariance(n, d, seed, scale, which):
    covs = random_covs(n, d, seed)
    sim = covariance_similarity(covs)
    torch.testing.assert_close(sim.diagonal(), torch.ones(n, dtype=torch.float64))
    assert torch.equal(sim, sim.T)
    assert bool((sim >= -1e-12).all() and (sim <= 1 + 1e-12).all())  # PSD matrices: cosines >= 0
    scaled = covs.clone()
    scaled[which % n] *= scale
    # The top component comes from eigh, whose eigenvector is exact only to about
    # eps / (eigenvalue gap): hypothesis found n=4, d=2, seed=7, scale=3 moving an
    # entry by 7.4e-11 (close top eigenvalues), so entries near 0 need an absolute bound.
    torch.testing.assert_close(covariance_similarity(scaled), sim, rtol=1e-9, atol=1e-9)


def test_identical_layers_are_all_ones():
    covs = random_covs(1, 6, seed=4).expand(5, 6, 6)
    torch.testing.assert_close(covariance_similarity(covs), torch.ones(5, 5, dtype=torch.float64))


@pytest.mark.parametrize("k", [1, 2])
def test_removing_components_removes_planted_outlier_directions(k):
    """Layers that differ, plus k huge shared directions orthogonal to everything else:
    with the outliers they look alike (near 1); removing k components gives exactly
    the similarity of the layers without them."""
    d, n = 8, 4
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    out_dirs, rest = q[:, :k], q[:, k:]
    inner = random_covs(n, d - k, seed=1)
    base = rest @ inner @ rest.T           # (n, d, d), zero along the outlier directions
    planted = base + (out_dirs * torch.tensor([1e4, 5e3][:k], dtype=torch.float64)) @ out_dirs.T
    assert float(off_diagonal(covariance_similarity(planted, k=0)).min()) > 0.99
    torch.testing.assert_close(covariance_similarity(planted, k=k),
                               torch.from_numpy(naive_similarity(base, 0)), rtol=1e-8, atol=1e-10)
    assert float(off_diagonal(covariance_similarity(base, 0)).max()) < 0.95  # they do differ
    torch.testing.assert_close(remove_top_components(planted, k), base, rtol=1e-8, atol=1e-8)


def test_remove_top_components_matches_numpy():
    covs = random_covs(3, 7, seed=2, rank=4)
    for k in (0, 1, 3, 7):
        want = np.stack([naive_remove(c, k) for c in covs.numpy()])
        np.testing.assert_allclose(remove_top_components(covs, k).numpy(), want, atol=1e-10)


def test_frobenius_cosine_and_off_diagonal():
    a = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert float(frobenius_cosine(a, b)) == pytest.approx(1 / 2 ** 0.5)
    sim = torch.tensor([[1.0, 2.0, 3.0], [4.0, 1.0, 5.0], [6.0, 7.0, 1.0]])
    assert sorted(off_diagonal(sim).tolist()) == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="components removed"):
        remove_top_components(torch.eye(3), 4)
    with pytest.raises(ValueError, match="square"):
        remove_top_components(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="states, d, d"):
        covariance_similarity(torch.eye(3))
