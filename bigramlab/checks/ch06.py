"""Checks for the exercises of Chapter 6 (rotation and lenses).

The answers come from bigramlab itself: ``methods.rotation.median_rotation``,
``methods.rotation.ResidualStats`` (the ridge maps) and
``methods.lenses.token_ranks`` / ``recall_at_k``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..methods.lenses import recall_at_k, token_ranks
from ..methods.rotation import ResidualStats, eigen_angles, median_rotation
from ._core import CheckResult, Wrong, as_float as _float, as_tensor as _tensor, call, rng, run



# ---------------------------------------------------------------------------
# Exercise 6.1: the rotation of a map


def _turn(degrees: float) -> torch.Tensor:
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    return torch.tensor([[c, -s], [s, c]], dtype=torch.float64)


def _rotation_cases() -> list[tuple[str, torch.Tensor]]:
    g = rng(6)
    cases = [("a rotation by 60 degrees", _turn(60)), ("a rotation by 150 degrees", _turn(150)),
             ("-I (4 x 4)", -torch.eye(4, dtype=torch.float64)),
             ("diag(1, 2, -1, -3)", torch.diag(torch.tensor([1.0, 2.0, -1.0, -3.0],
                                                            dtype=torch.float64))),
             ("a 60-degree block beside 0.5 and -2",
              torch.block_diag(_turn(60), torch.diag(torch.tensor([0.5, -2.0],
                                                                  dtype=torch.float64))))]
    cases.append(("a 90-degree block beside 0.5, 2 and -1",   # conjugates count twice
                  torch.block_diag(_turn(90), torch.diag(torch.tensor([0.5, 2.0, -1.0],
                                                                      dtype=torch.float64)))))
    for d in (5, 6, 9):
        cases.append((f"a random {d} x {d} matrix", torch.randn(d, d, generator=g,
                                                                dtype=torch.float64)))
    return cases


def check_median_rotation(fn: Callable) -> CheckResult:
    """Exercise 6.1: ``fn(A)`` -> the median over all eigenvalues of |arg(lambda)|, degrees."""

    def body():
        for what, a in _rotation_cases():
            want = float(median_rotation(a))
            got = _float(call(fn, a.clone()), f"your rotation of {what}")
            if abs(got - want) < 1e-3:   # float32 eigenvalues are right to ~1e-4 degrees
                continue
            angles = eigen_angles(a)
            if abs(got - math.radians(want)) < 1e-6:
                raise Wrong("you returned radians; the paper's rotation is in degrees")
            if abs(got - float(angles.median())) < 1e-6:
                raise Wrong(f"{what}: with an even number of eigenvalues the median is the mean "
                            "of the two middle values (numpy.median); torch.median returns the "
                            "lower one")
            eig = torch.linalg.eigvals(a)
            upper = eig[eig.imag >= 0].angle().abs() * 180 / math.pi
            if abs(got - float(torch.quantile(upper, 0.5))) < 1e-6:
                raise Wrong(f"{what}: every eigenvalue counts, so each complex-conjugate pair "
                            "counts twice; do not drop the ones with negative imaginary part")
            signed = eig.angle() * 180 / math.pi
            if abs(got - float(torch.quantile(signed.double(), 0.5))) < 1e-6:
                raise Wrong(f"{what}: take the absolute value of each angle, |arg(lambda)|, "
                            "so that a conjugate pair gives the same angle twice")
            raise Wrong(f"{what}: expected {want:.6f} degrees, got {got:.6f}")
    return run("Exercise 6.1 (rotation of a map)", body)


# ---------------------------------------------------------------------------
# Exercise 6.2: ridge regression with an intercept


def _ridge_answer(x: torch.Tensor, y: torch.Tensor, alpha: float):
    """(A, b) from bigramlab's streamed fit: states (x, y) with y as the 'input' target."""

    stats = ResidualStats(2, x.shape[1])
    stats.update(torch.stack([x, y]), y)
    m = stats.maps(alpha)["input"]
    return m.coef[0], m.intercept[0]


def check_ridge_fit(fn: Callable) -> CheckResult:
    """Exercise 6.2: ``fn(X, Y, alpha)`` -> (A (d_out, d_in), b (d_out,)) minimising
    |Y - X A^T - b|^2 + alpha |A|^2 (the intercept not penalised)."""
    def body():
        g = rng(62)
        for n, d, alpha, offset in ((200, 3, 1.0, 5.0), (50, 4, 10.0, -2.0), (500, 2, 0.1, 0.0)):
            x = torch.randn(n, d, generator=g, dtype=torch.float64) + offset
            y = x @ torch.randn(d, d, generator=g, dtype=torch.float64) + 3.0 \
                + 0.1 * torch.randn(n, d, generator=g, dtype=torch.float64)
            want_a, want_b = _ridge_answer(x, y, alpha)
            got = call(fn, x.clone(), y.clone(), alpha)
            try:
                got_a, got_b = (_tensor(t, "ridge_fit") for t in got)
            except (TypeError, ValueError) as e:
                raise Wrong("return a pair (A, b): the coefficients and the intercept") from e
            if got_a.shape == want_a.T.shape and got_a.shape != want_a.shape:
                raise Wrong(f"A has shape {tuple(got_a.shape)}; return it as (d_out, d_in), "
                            "so that y = A x + b")
            if got_a.shape != want_a.shape or got_b.shape != want_b.shape:
                raise Wrong(f"expected A {tuple(want_a.shape)} and b {tuple(want_b.shape)}, got "
                            f"{tuple(got_a.shape)} and {tuple(got_b.shape)}")
            if torch.allclose(got_a, want_a, rtol=1e-6, atol=1e-8) and \
                    torch.allclose(got_b, want_b, rtol=1e-6, atol=1e-8):
                continue
            if torch.allclose(got_a, want_a.T, rtol=1e-6, atol=1e-8):
                raise Wrong("A is transposed: return it as (d_out, d_in), so that "
                            "y = A x + b for a column x")
            if torch.allclose(got_b, torch.zeros_like(got_b)):
                raise Wrong("b is zero: fit the intercept too (centre X and Y, or add a column "
                            "of ones that the penalty does not touch)")
            xa = torch.cat([x, torch.ones(n, 1, dtype=torch.float64)], 1)
            theta = torch.linalg.solve(xa.T @ xa + alpha * torch.eye(d + 1, dtype=torch.float64),
                                       xa.T @ y)
            if torch.allclose(got_a, theta[:d].T, rtol=1e-6, atol=1e-8):
                raise Wrong("your intercept is penalised too: only A pays alpha |A|^2; centre "
                            "the data first, then b = mean(y) - A mean(x)")
            raise Wrong(f"A or b differs from the ridge solution (n = {n}, d = {d}, "
                        f"alpha = {alpha})")
    return run("Exercise 6.2 (ridge with an intercept)", body)


# ---------------------------------------------------------------------------
# Exercise 6.3: recall@k


def check_recall_at_k(fn: Callable) -> CheckResult:
    """Exercise 6.3: ``fn(logits, labels, k)`` -> share of rows whose label ranks among
    the top k (rank = number of tokens with a strictly larger logit)."""

    def body():
        g = rng(63)
        cases = [(torch.randn(40, 12, generator=g), torch.randint(0, 12, (40,), generator=g)),
                 (torch.randint(0, 3, (60, 8), generator=g).float(),  # many ties
                  torch.randint(0, 8, (60,), generator=g))]
        for logits, labels in cases:
            ranks = token_ranks(logits, labels)
            for k in (1, 3, 5):
                want = float(recall_at_k(ranks, (k,))[0])
                got = _float(call(fn, logits.clone(), labels.clone(), k), f"recall@{k}")
                if abs(got - want) < 1e-9:
                    continue
                if abs(got - float((ranks <= k).double().mean())) < 1e-9:
                    raise Wrong(f"recall@{k}: off by one: rank 0 is the top token, so the top "
                                f"k are ranks 0..k-1 (rank < k)")
                worse = (logits >= logits.gather(1, labels[:, None])).sum(1) - 1
                if abs(got - float((worse < k).double().mean())) < 1e-9:
                    raise Wrong(f"recall@{k}: a tie goes the label's way: count only the tokens "
                                "with a strictly larger logit")
                if abs(got - float((ranks < 1).double().mean())) < 1e-9 and k > 1:
                    raise Wrong(f"recall@{k}: you measured top-1 accuracy; the label only has "
                                f"to be among the top {k}")
                raise Wrong(f"recall@{k}: expected {want:.4f}, got {got:.4f}")
    return run("Exercise 6.3 (recall@k)", body)
