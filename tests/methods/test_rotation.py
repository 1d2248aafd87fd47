"""Ridge maps from streamed statistics, and the rotation of a map.

References written here: a direct float64 least-squares fit of the ridge
problem on the held activations (the augmented system [X 1; sqrt(alpha) I 0],
solved by ``torch.linalg.lstsq``), sklearn's ``Ridge(alpha=1,
fit_intercept=True)`` (the paper's fit), ``numpy.cov``, and maps whose
eigen-angles are known by construction.
"""

import math
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from bigramlab.methods import rotation
from bigramlab.methods.rotation import (TARGETS, LinearMaps, ResidualStats, eigen_angles,
                                        median_rotation, residual_stats, rotations)
from bigramlab.worlds.models import make_model
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.methods.residual import hidden_states


def lstsq_ridge(x, y, alpha=1.0):
    """(A, b) minimising |y - x A^T - b|^2 + alpha |A|^2, b unpenalised, by least squares
    on the augmented system in float64 (no normal equations)."""
    x, y = x.double(), y.double()
    n, d = x.shape
    top = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], 1)
    bottom = torch.cat([math.sqrt(alpha) * torch.eye(d, dtype=torch.float64),
                        torch.zeros(d, 1, dtype=torch.float64)], 1)
    rhs = torch.cat([y, torch.zeros(d, y.shape[1], dtype=torch.float64)])
    theta = torch.linalg.lstsq(torch.cat([top, bottom]), rhs, driver="gelsd").solution
    return theta[:d].T, theta[d]


def synthetic(n_states, n, d, seed, offset=0.0):
    """States with a common offset and unequal scales, and an input embedding."""
    g = torch.Generator().manual_seed(seed)
    states = [torch.randn(n, d, generator=g) * torch.rand(d, generator=g) * 3]
    for _ in range(n_states - 1):
        states.append(states[-1] + torch.tanh(states[-1] @ torch.randn(d, d, generator=g) / d)
                      + 0.3 * torch.randn(n, d, generator=g))
    inputs = states[0] + 0.5 * torch.randn(n, d, generator=g)
    return torch.stack(states) + offset, inputs + offset


def streamed(states, inputs, cuts):
    stats = ResidualStats(states.shape[0], states.shape[-1])
    bounds = [0, *cuts, states.shape[1]]
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            stats.update(states[:, a:b], inputs[a:b])
    return stats


def targets_of(states, inputs):
    return {"input": inputs, "output": states[-1], "penultimate": states[-2]}


@settings(max_examples=25, deadline=None)
@given(n_states=st.integers(2, 5), d=st.integers(1, 7), n=st.integers(12, 80),
       seed=st.integers(0, 10**6), block=st.sampled_from([1, 2, 3, 192]), data=st.data())
def test_streamed_fit_equals_direct_least_squares(n_states, d, n, seed, block, data):
    """Any split into batches, any block size of the half Gram products."""
    cuts = sorted(data.draw(st.lists(st.integers(1, n - 1), max_size=4)))
    states, inputs = synthetic(n_states, n, d, seed)
    with mock.patch.object(rotation, "_BLOCK", block):
        maps = streamed(states, inputs, cuts).maps(alpha=1.0)
    for name, y in targets_of(states, inputs).items():
        for layer in range(n_states):
            a, b = lstsq_ridge(states[layer], y)
            torch.testing.assert_close(maps[name].coef[layer], a, rtol=1e-8, atol=1e-9)
            torch.testing.assert_close(maps[name].intercept[layer], b, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("alpha", [1.0, 0.1, 25.0])
def test_streamed_fit_equals_sklearn_ridge(alpha):
    sklearn = pytest.importorskip("sklearn.linear_model")  # a test dependency (requirements.txt)
    states, inputs = synthetic(4, 300, 9, seed=3)
    maps = streamed(states, inputs, [50, 51, 200]).maps(alpha=alpha)
    for name, y in targets_of(states, inputs).items():
        for layer in range(4):
            ridge = sklearn.Ridge(alpha=alpha, fit_intercept=True).fit(
                states[layer].double().numpy(), y.double().numpy())
            np.testing.assert_allclose(maps[name].coef[layer].numpy(), ridge.coef_, rtol=1e-9,
                                       atol=1e-11)
            np.testing.assert_allclose(maps[name].intercept[layer].numpy(), ridge.intercept_,
                                       rtol=1e-9, atol=1e-10)


def test_widths_of_several_blocks():
    """At the default block size, a width of two full blocks and a remainder."""
    d = 2 * rotation._BLOCK + 5
    states, inputs = synthetic(3, 450, d, seed=5)
    stats = streamed(states, inputs, [200])
    np.testing.assert_allclose(stats.covariance()[1].numpy(),
                               np.cov(states[1].double().numpy().T), rtol=1e-9, atol=1e-11)
    maps = stats.maps()
    for name, y in targets_of(states, inputs).items():
        a, b = lstsq_ridge(states[2], y)
        torch.testing.assert_close(maps[name].coef[2], a, rtol=1e-7, atol=1e-9)
        torch.testing.assert_close(maps[name].intercept[2], b, rtol=1e-7, atol=1e-8)


def test_a_large_common_offset_costs_no_precision():
    """Residual streams carry large constant components; the shifted accumulation
    keeps the fit as precise as on centred data."""
    states, inputs = synthetic(3, 400, 5, seed=1)
    centred = streamed(states, inputs, [100, 300]).maps()
    far = streamed((states.double() + 1e5), inputs.double() + 1e5, [100, 300]).maps()
    for name in TARGETS:
        torch.testing.assert_close(far[name].coef, centred[name].coef, rtol=1e-7, atol=1e-9)


def test_covariance_equals_numpy_cov():
    states, inputs = synthetic(3, 200, 6, seed=2)
    cov = streamed(states, inputs, [7, 150]).covariance()
    for layer in range(3):
        np.testing.assert_allclose(cov[layer].numpy(), np.cov(states[layer].double().numpy().T),
                                   rtol=1e-10, atol=1e-12)


def test_memory_does_not_grow_with_positions():
    states, inputs = synthetic(3, 400, 8, seed=0)

    def held(stats):
        return sum(v.numel() for v in vars(stats).values() if isinstance(v, torch.Tensor))
    one = streamed(states[:, :100], inputs[:100], [])
    four = streamed(states, inputs, [100, 200, 300])
    assert four.n == 4 * one.n and held(four) == held(one)


def test_linear_maps_apply_in_float64():
    g = torch.Generator().manual_seed(0)
    maps = LinearMaps(torch.randn(2, 3, 4, generator=g, dtype=torch.float64),
                      torch.randn(2, 3, generator=g, dtype=torch.float64))
    x = torch.randn(5, 4, generator=g)
    got = maps(x, 1)
    assert got.dtype == torch.float32
    want = torch.stack([maps.coef[1] @ row.double() + maps.intercept[1] for row in x])
    torch.testing.assert_close(got, want.float())


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_residual_stats_of_a_model(arch):
    """One pass over a model equals the statistics of its held states; the input target
    is the bare token embedding (GPT-2: without the position embedding)."""
    torch.manual_seed(0)
    model = make_model(arch, TinyWorld(n_layer=2, d_model=8, n_head=2, d_mlp=16), 30, 12).eval()
    ids = torch.randint(0, 30, (5, 12), generator=torch.Generator().manual_seed(1))
    stats = residual_stats(model, ids, batch_size=2)
    held = hidden_states(model, ids).reshape(3, -1, 8)
    table = model.gpt_neox.embed_in if arch == "gpt_neox" else model.transformer.wte
    with torch.no_grad():
        bare = table(ids).reshape(-1, 8)
    maps = stats.maps()
    assert stats.n == 60
    for name, y in targets_of(held, bare).items():
        for layer in range(3):
            a, b = lstsq_ridge(held[layer], y)
            torch.testing.assert_close(maps[name].coef[layer], a, rtol=1e-7, atol=1e-8)
            torch.testing.assert_close(maps[name].intercept[layer], b, rtol=1e-7, atol=1e-8)


def test_bad_input_is_named():
    stats = ResidualStats(3, 4)
    with pytest.raises(ValueError, match="states have shape"):
        stats.update(torch.zeros(2, 5, 4), torch.zeros(5, 4))
    with pytest.raises(ValueError, match="inputs have shape"):
        stats.update(torch.zeros(3, 5, 4), torch.zeros(6, 4))
    with pytest.raises(ValueError, match="at least 2"):
        stats.maps()
    stats.update(torch.randn(3, 5, 4), torch.randn(5, 4))
    with pytest.raises(ValueError, match="alpha must be positive"):
        stats.maps(alpha=0.0)
    with pytest.raises(ValueError, match="at least 2 states"):
        ResidualStats(1, 4)


# ------------------------------------------------------------------- rotation


def block_rotation(d, degrees):
    """d x d with 2 x 2 rotation blocks by ``degrees`` (and a 1 when d is odd)."""
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    out = torch.eye(d, dtype=torch.float64)
    for i in range(0, d - 1, 2):
        out[i:i + 2, i:i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    return out


def random_basis(d, seed):
    g = torch.Generator().manual_seed(seed)
    eye = torch.eye(d, dtype=torch.float64)
    return torch.randn(d, d, generator=g, dtype=torch.float64) + 3 * eye


@settings(max_examples=30, deadline=None)
@given(half=st.integers(1, 12), degrees=st.floats(1.0, 179.0), scale=st.floats(0.1, 10.0),
       seed=st.integers(0, 10**6))
def test_block_rotation_in_any_basis(half, degrees, scale, seed):
    """A scaled rotation by theta in a random basis: every eigen-angle is theta."""
    d = 2 * half
    p = random_basis(d, seed)
    a = p @ (scale * block_rotation(d, degrees)) @ torch.linalg.inv(p)
    angles = eigen_angles(a)
    torch.testing.assert_close(angles, torch.full((d,), degrees, dtype=torch.float64),
                               rtol=0, atol=1e-6)
    assert float(median_rotation(a)) == pytest.approx(degrees, abs=1e-6)


@pytest.mark.parametrize("d", [2, 5, 768])
def test_sixty_degrees_minus_identity_and_identity(d):
    # odd d: one eigenvalue 1 (0 degrees) beside the pairs at 60, so the median is still 60
    assert float(median_rotation(block_rotation(d, 60))) == pytest.approx(60.0, abs=1e-9)
    assert float(median_rotation(-torch.eye(d))) == 180.0
    assert float(median_rotation(torch.eye(d))) == 0.0


def test_median_of_an_even_count_is_numpys():
    """Two 0s and two 180s: numpy's median (the mean of the middle two) is 90; the lower
    middle value (torch.median) would say 0."""
    a = torch.diag(torch.tensor([1.0, 2.0, -1.0, -3.0], dtype=torch.float64))
    assert float(median_rotation(a)) == 90.0
    g = torch.Generator().manual_seed(0)
    for d in (4, 7, 10):
        m = torch.randn(3, d, d, generator=g, dtype=torch.float64)
        want = [np.median(np.abs(np.angle(np.linalg.eigvals(x.numpy()), deg=True))) for x in m]
        np.testing.assert_allclose(median_rotation(m).numpy(), want, atol=1e-9)


def test_reflection_and_complex_eigenvalues():
    # a reflection: eigenvalues 1 and -1 -> angles 0 and 180
    refl = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    assert sorted(eigen_angles(refl).tolist()) == pytest.approx([0.0, 180.0])
    # [[1, -1], [1, 1]]: eigenvalues 1 +- i, angle 45 degrees, counted twice
    assert eigen_angles(torch.tensor([[1.0, -1.0], [1.0, 1.0]])).tolist() == pytest.approx(
        [45.0, 45.0])


def test_rotations_per_target():
    maps = {"input": LinearMaps(torch.stack([torch.eye(4), block_rotation(4, 30).float()]).double(),
                                torch.zeros(2, 4, dtype=torch.float64))}
    got = rotations(maps)
    assert got["input"].tolist() == pytest.approx([0.0, 30.0])


def test_non_square_maps_are_rejected():
    with pytest.raises(ValueError, match="square"):
        median_rotation(torch.zeros(3, 4))
