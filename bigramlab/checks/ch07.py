"""Checks for the exercises of Chapter 7 (covariance similarity).

The answers come from bigramlab itself: ``methods.covariance.frobenius_cosine``,
``methods.covariance.remove_top_components`` and
``methods.rotation.ResidualStats.covariance``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..methods.covariance import frobenius_cosine, remove_top_components
from ..methods.rotation import ResidualStats
from ._core import CheckResult, Wrong, as_float as _float, as_tensor as _tensor, call, rng, run



def _covs(seed: int, n: int = 3, d: int = 5) -> torch.Tensor:
    """Covariance matrices (PSD, distinct eigenvalues) with a shared large direction."""
    g = rng(seed)
    f = torch.randn(n, d, d, generator=g, dtype=torch.float64)
    u = torch.randn(d, 1, generator=g, dtype=torch.float64)
    return f @ f.transpose(1, 2) + 5 * u @ u.T + 2.0


# ---------------------------------------------------------------------------
# Exercise 7.1: the Frobenius cosine


def check_frobenius_cosine(fn: Callable) -> CheckResult:
    """Exercise 7.1: ``fn(A, B)`` -> <A, B>_F / (|A|_F |B|_F)."""

    def body():
        c = _covs(71, n=4)
        pairs = [(c[0], c[1]), (c[2], 3.0 * c[2]), (c[1], c[3]),
                 (torch.tensor([[1.0, 2.0], [0.0, 1.0]], dtype=torch.float64),
                  torch.tensor([[1.0, 0.0], [2.0, 1.0]], dtype=torch.float64)),
                 (c[0], -c[1])]   # a negative cosine: its sign is part of the answer
        for i, (a, b) in enumerate(pairs):
            want = float(frobenius_cosine(a, b))
            got = _float(call(fn, a.clone(), b.clone()), "frobenius_cosine")
            if abs(got - want) < 1e-6:   # float32 arithmetic is right to ~1e-7
                continue
            if want < 0 and abs(got + want) < 1e-6:
                raise Wrong(f"pair {i}: expected {want:.6f}, got {got:.6f}: the cosine keeps "
                            "its sign (do not take abs): opposite matrices give -1")
            if abs(got - float((a * b).sum())) < 1e-6 * max(1.0, abs(float((a * b).sum()))):
                raise Wrong("divide the Frobenius inner product by both Frobenius norms, so "
                            "that scale does not matter")
            ac, bc = a - a.mean(), b - b.mean()
            if abs(got - float((ac * bc).sum() / (ac.norm() * bc.norm()))) < 1e-9:
                raise Wrong("you centred the entries (a Pearson correlation); the Frobenius "
                            "cosine uses the matrices as they are")
            if i == 3 and abs(got - float(torch.trace(a @ b) / (a.norm() * b.norm()))) < 1e-9:
                raise Wrong("trace(A @ B) equals <A, B>_F only for symmetric matrices; sum the "
                            "entrywise products, (A * B).sum()")
            ab = float((a * b).sum())
            if abs(got - ab / float((a * a).sum() * (b * b).sum())) < 1e-9:
                raise Wrong("divide by the product of the Frobenius NORMS (square roots of the "
                            "sums of squares), not of the squared norms")
            spectral = float(torch.linalg.matrix_norm(a, 2) * torch.linalg.matrix_norm(b, 2))
            if abs(got - ab / spectral) < 1e-9:
                raise Wrong("ord=2 is the spectral norm (the largest singular value); the "
                            "Frobenius norm is the default, or ord='fro'")
            if abs(got - float((a @ b).sum() / (a.norm() * b.norm()))) < 1e-9:
                raise Wrong("multiply entry by entry, (A * B).sum(), not the matrix product "
                            "A @ B")
            if abs(got - (1 - want)) < 1e-9:
                raise Wrong("that is 1 - cosine (a distance); return the cosine itself")
            raise Wrong(f"pair {i}: expected {want:.6f}, got {got:.6f}")
    return run("Exercise 7.1 (Frobenius cosine)", body)


# ---------------------------------------------------------------------------
# Exercise 7.2: removing the top principal components


def check_remove_top(fn: Callable) -> CheckResult:
    """Exercise 7.2: ``fn(cov, k)`` -> cov with its k largest eigenvalues set to zero."""

    def body():
        c = _covs(72)
        for k in (1, 2, 0):
            for m in c:
                want = remove_top_components(m, k)
                got = _tensor(call(fn, m.clone(), k), "remove_top")
                if got.shape != want.shape:
                    raise Wrong(f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
                scale = float(m.abs().max())
                if torch.allclose(got, want, rtol=1e-5, atol=1e-6 * scale):   # float32 too
                    continue
                vals, vecs = torch.linalg.eigh(m)
                low = vals.clone()
                low[:k] = 0
                if k and torch.allclose(got, (vecs * low) @ vecs.T, atol=1e-8):
                    raise Wrong("you removed the SMALLEST eigenvalues: torch.linalg.eigh sorts "
                                "them in ascending order, so the top k are the last k")
                if k == 0 and torch.allclose(got, torch.zeros_like(got), atol=1e-8):
                    raise Wrong("k = 0: you zeroed every eigenvalue; vals[-k:] with k = 0 is "
                                "vals[0:], the whole array (-0 is 0): use "
                                "vals[len(vals) - k:]")
                if k > 1:
                    one = vals.clone()
                    one[-k] = 0
                    if torch.allclose(got, (vecs * one) @ vecs.T, atol=1e-8):
                        raise Wrong(f"k = {k}: you zeroed only the k-th largest eigenvalue "
                                    "(vals[-k]); zero the last k of them (vals[-k:])")
                top_zeroed = vals.clone()
                top_zeroed[len(vals) - k:] = 0
                if k and torch.allclose(got, vecs.T @ torch.diag(top_zeroed) @ vecs, atol=1e-8):
                    raise Wrong("the eigenvectors are the COLUMNS of vecs: rebuild as "
                                "vecs @ diag(vals) @ vecs.T, not vecs.T @ diag(vals) @ vecs")
                top = vecs[:, len(vals) - k:]
                if k and torch.allclose(got, m - top @ top.T, atol=1e-8):
                    raise Wrong("subtract each component with its variance, lambda v v^T; "
                                "v v^T alone removes only 1 of it")
                if k and torch.allclose(got, (top * vals[len(vals) - k:]) @ top.T, atol=1e-8):
                    raise Wrong("you returned the part you removed (the top k components); "
                                "return the covariance without it: cov minus that part, or "
                                "the other eigenvalues kept")
                if k and torch.allclose(got, m - m.mean(), atol=1e-8):
                    raise Wrong("the covariance is already centred; remove the top principal "
                                "components (largest eigenvalues), not the mean")
                raise Wrong(f"k = {k}: the result differs from the covariance with its {k} "
                            "largest eigenvalues set to zero (largest difference "
                            f"{float((got - want).abs().max()):.3g})")
    return run("Exercise 7.2 (remove the top components)", body)


# ---------------------------------------------------------------------------
# Exercise 7.3: a covariance from streamed sums


def check_covariance_from_sums(fn: Callable) -> CheckResult:
    """Exercise 7.3: ``fn(n, total, gram)`` -> the sample covariance (divided by n - 1)
    from n, total = sum of x (d,) and gram = sum of x x^T (d, d)."""

    def body():
        g = rng(73)
        for n, d, offset in ((100, 3, 4.0), (7, 2, 0.0), (1000, 5, -1.0)):
            x = torch.randn(n, d, generator=g, dtype=torch.float64) * 2 + offset
            stats = ResidualStats(2, d)
            stats.update(torch.stack([x, x]), x)
            want = stats.covariance()[0]
            total, gram = x.sum(0), x.T @ x
            got = _tensor(call(fn, n, total.clone(), gram.clone()), "covariance_from_sums")
            if got.shape != want.shape:
                raise Wrong(f"expected shape {tuple(want.shape)}, got {tuple(got.shape)}")
            if torch.allclose(got, want, rtol=1e-9, atol=1e-9):
                continue
            if torch.allclose(got, want * (n - 1) / n, rtol=1e-9, atol=1e-9):
                raise Wrong("divide by n - 1 (the sample covariance, as numpy.cov), not by n")
            if torch.allclose(got, gram / (n - 1), rtol=1e-9, atol=1e-9) or \
                    torch.allclose(got, gram / n, rtol=1e-9, atol=1e-9):
                raise Wrong("subtract the mean's part, n * mean mean^T, from the Gram matrix")
            mean = total / n
            if torch.allclose(got, (gram - torch.outer(total, total)) / (n - 1), rtol=1e-9,
                              atol=1e-9):
                raise Wrong("the mean's part is n * mean mean^T = total total^T / n; you "
                            "subtracted total total^T")
            if torch.allclose(got, (gram - torch.outer(mean, mean)) / (n - 1), rtol=1e-9,
                              atol=1e-9):
                raise Wrong("the mean's part is n * mean mean^T (n times the outer product), "
                            "not mean mean^T")
            if torch.allclose(got, (gram - n * (mean @ mean)) / (n - 1), rtol=1e-9, atol=1e-9):
                raise Wrong("mean mean^T is an OUTER product (a d x d matrix, torch.outer), "
                            "not the dot product mean @ mean")
            m1 = total / (n - 1)
            if torch.allclose(got, (gram - n * torch.outer(m1, m1)) / (n - 1), rtol=1e-9,
                              atol=1e-9) or torch.allclose(
                    got, (gram - torch.outer(total, total) / (n - 1)) / (n - 1), rtol=1e-9,
                    atol=1e-9):
                raise Wrong("the mean is total / n; only the final division uses n - 1")
            sd = want.diagonal().sqrt()
            if torch.allclose(got, want / torch.outer(sd, sd), rtol=1e-9, atol=1e-9):
                raise Wrong("that is the correlation matrix; return the covariance, without "
                            "dividing by the standard deviations")
            if torch.allclose(got, torch.diag(want.diagonal()), rtol=1e-9, atol=1e-9):
                raise Wrong("return the whole covariance matrix, not only the variances on "
                            "its diagonal")
            diff = float((got - want).abs().max())
            raise Wrong(f"n = {n}, d = {d}: the result differs from the sample covariance "
                        f"(largest difference {diff:.3g})")
    return run("Exercise 7.3 (covariance from sums)", body)
