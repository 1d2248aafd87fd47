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


def _real_median(vals: torch.Tensor) -> float:
    """The median angle, in degrees, of real eigenvalues: 0 or 180 each."""
    return float(torch.quantile(torch.where(vals.double() < 0, 180.0, 0.0), 0.5))


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
            if got == 0.0 and want != 0.0:
                probe = -torch.eye(3, dtype=torch.float64)   # every angle is 180 degrees
                if _float(call(fn, probe.clone()), "your rotation of -I (3 x 3)") == 0.0:
                    raise Wrong(f"{what}: expected {want:.6f} degrees, got 0, and 0 for -I too, "
                                "whose eigenvalues all lie at 180 degrees: compute the angles "
                                "of the eigenvalues, do not return a placeholder")
            if abs(got - float(torch.quantile(angles.double(), 0.5))) > 1e-6 and \
                    abs(got - float(angles.double().mean())) < 1e-6:
                raise Wrong(f"{what}: take the median of the angles, not the mean")
            signed_median = float(torch.quantile((eig.angle() * 180 / math.pi).double(), 0.5))
            if abs(got - _real_median(eig.real)) < 1e-6 or \
                    abs(got - _real_median(torch.linalg.eigvalsh(a))) < 1e-6:
                # a 120-degree turn beside 1: real parts give 180, signed angles 0
                probe = torch.block_diag(_turn(120), torch.ones(1, 1, dtype=torch.float64))
                if abs(got - signed_median) > 1e-6 or abs(_float(
                        call(fn, probe.clone()), "your rotation of a 120-degree turn beside 1")
                        - 180.0) < 1e-6:
                    raise Wrong(f"{what}: the eigenvalues of a non-symmetric matrix are "
                                "complex: keep their imaginary parts (torch.linalg.eigvals, "
                                "not eigvalsh or .real)")
            atan = torch.atan(eig.imag.double() / eig.real.double()).abs() * 180 / math.pi
            if abs(got - float(torch.quantile(atan, 0.5))) < 1e-6:
                raise Wrong(f"{what}: atan(imag / real) loses the quadrant (150 degrees comes "
                            "out as 30); use the eigenvalue's angle, torch.angle (atan2)")
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
            mx, my = x.mean(0), y.mean(0)
            xc = x - mx
            ols = torch.linalg.solve(xc.T @ xc, xc.T @ (y - my)).T
            if torch.allclose(got_a, ols, rtol=1e-6, atol=1e-8):
                raise Wrong(f"alpha = {alpha}: A is the unpenalised least-squares fit; add "
                            "alpha * I to X^T X (centred) before solving")
            eye = torch.eye(d, dtype=torch.float64)
            scaled = torch.linalg.solve(xc.T @ xc / n + alpha * eye, xc.T @ (y - my) / n).T
            if torch.allclose(got_a, scaled, rtol=1e-6, atol=1e-8):
                raise Wrong(f"alpha = {alpha}: you penalised the MEAN squared error (X^T X / n "
                            "+ alpha I): the loss is the summed error |Y - X A^T - b|^2 + "
                            "alpha |A|^2, so add alpha * I to X^T X itself")
            plus = torch.linalg.solve(xc.T @ xc + alpha, xc.T @ (y - my)).T
            if torch.allclose(got_a, plus, rtol=1e-6, atol=1e-8):
                raise Wrong("add alpha on the diagonal only (alpha * I), not to every entry of "
                            "X^T X")
            if torch.allclose(got_a, want_a, rtol=1e-6, atol=1e-8):
                if torch.allclose(got_b, my, rtol=1e-6, atol=1e-8):
                    raise Wrong("b = mean(y) - A mean(x): the intercept is mean(y) only when x "
                                "has mean 0")
                if torch.allclose(got_b, my - mx @ want_a, rtol=1e-6, atol=1e-8):
                    raise Wrong("b = mean(y) - A mean(x); with A (d_out, d_in) that is "
                                "mean(x) @ A.T, not mean(x) @ A")
            raise Wrong(f"A or b differs from the ridge solution (n = {n}, d = {d}, "
                        f"alpha = {alpha})")
    return run("Exercise 6.2 (ridge with an intercept)", body)


# ---------------------------------------------------------------------------
# Exercise 6.3: recall@k


def _recall_mistakes(logits, labels, k):
    """(value, message) of the mistakes 6.3's students make, for one case and k."""
    ranks = token_ranks(logits, labels)
    share = float((ranks < k).double().mean())
    label_logit = logits.gather(1, labels[:, None])
    worse = (logits >= label_logit).sum(1) - 1
    smaller = (logits < label_logit).sum(1)
    top = logits.topk(k, dim=1).indices
    return [
        (float((ranks <= k).double().mean()), f"recall@{k}: off by one: rank 0 is the top "
         f"token, so the top k are ranks 0..k-1 (rank < k)"),
        (float((worse < k).double().mean()), f"recall@{k}: a tie goes the label's way: count "
         "only the tokens with a strictly larger logit"),
        (float((ranks < 1).double().mean()), f"recall@{k}: you measured top-1 accuracy; the "
         f"label only has to be among the top {k}"),
        (share * len(labels), f"recall@{k}: you returned the number of hits; recall is a "
         f"share: divide by the number of rows ({len(labels)})"),
        (100 * share, f"recall@{k}: a share between 0 and 1, not a percentage"),
        (share * len(labels) / logits.shape[1], f"recall@{k}: divide by the number of rows "
         "(labels), not by the vocabulary size"),
        (float((smaller < k).double().mean()), f"recall@{k}: you ranked from the SMALLEST "
         "logit; rank 0 is the largest logit (count the tokens with a larger logit)"),
        (float((top == labels[:, None]).any(1).double().mean()), f"recall@{k}: topk breaks "
         "ties by position; a tie goes the label's way: count only the tokens with a "
         "strictly larger logit"),
    ]


def check_recall_at_k(fn: Callable) -> CheckResult:
    """Exercise 6.3: ``fn(logits, labels, k)`` -> share of rows whose label ranks among
    the top k (rank = number of tokens with a strictly larger logit). A mistake is named
    only when it explains every case and k."""

    def body():
        g = rng(63)
        cases = [(torch.randn(40, 12, generator=g), torch.randint(0, 12, (40,), generator=g)),
                 (torch.randint(0, 3, (60, 8), generator=g).float(),  # many ties
                  torch.randint(0, 8, (60,), generator=g))]
        rows = []  # (got, want, the mistakes' values and messages)
        for logits, labels in cases:
            ranks = token_ranks(logits, labels)
            for k in (1, 3, 5):
                want = float(recall_at_k(ranks, (k,))[0])
                got = _float(call(fn, logits.clone(), labels.clone(), k), f"recall@{k}")
                rows.append((got, want, k, _recall_mistakes(logits, labels, k)))
        if all(abs(got - want) < 1e-9 for got, want, *_ in rows):
            return
        for i, (_, message) in enumerate(rows[0][3]):
            if all(abs(got - mistakes[i][0]) < 1e-9 for got, _, _, mistakes in rows):
                first = next(r for r in rows if abs(r[0] - r[1]) >= 1e-9)
                raise Wrong(first[3][i][1])
        got, want, k, _ = next(r for r in rows if abs(r[0] - r[1]) >= 1e-9)
        raise Wrong(f"recall@{k}: expected {want:.4f}, got {got:.4f}")
    return run("Exercise 6.3 (recall@k)", body)
