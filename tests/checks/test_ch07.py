"""Chapter 7 exercise checks: they pass right answers (written here independently
of bigramlab, with numpy), say "not implemented yet" for stubs, name the problem
in plausible wrong answers, and never raise."""

import numpy as np
import torch

from bigramlab import checks
from tests.helpers.checks import contract_tests


# ------------------------------------------------------------ right answers
def frobenius_cosine(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def remove_top(cov, k):
    vals, vecs = np.linalg.eigh(np.asarray(cov))
    if k:
        vals[-k:] = 0
    return (vecs * vals) @ vecs.T


def covariance_from_sums(n, total, gram):
    mean = np.asarray(total) / n
    return (np.asarray(gram) - n * np.outer(mean, mean)) / (n - 1)


# ------------------------------------------------------------ wrong answers
def cosine_unnormalised(a, b):
    return float((np.asarray(a) * np.asarray(b)).sum())


def cosine_centred(a, b):
    return float(np.corrcoef(np.asarray(a).ravel(), np.asarray(b).ravel())[0, 1])


def cosine_trace(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.trace(a @ b) / np.sqrt((a * a).sum() * (b * b).sum()))


def cosine_squared_norms(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float((a * b).sum() / ((a * a).sum() * (b * b).sum()))


def cosine_spectral_norms(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float((a * b).sum() / (np.linalg.norm(a, 2) * np.linalg.norm(b, 2)))


def cosine_matrix_product(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float((a @ b).sum() / (np.linalg.norm(a) * np.linalg.norm(b)))


def cosine_distance(a, b):
    return 1 - frobenius_cosine(a, b)


def cosine_abs_value(a, b):
    return abs(frobenius_cosine(a, b))


def remove_minus_zero(cov, k):
    """vals[-k:] = 0: with k = 0 that is every eigenvalue."""
    vals, vecs = np.linalg.eigh(np.asarray(cov))
    vals[-k:] = 0
    return (vecs * vals) @ vecs.T


def remove_only_kth(cov, k):
    vals, vecs = np.linalg.eigh(np.asarray(cov))
    if k:
        vals[-k] = 0
    return (vecs * vals) @ vecs.T


def remove_rows_as_vectors(cov, k):
    vals, vecs = np.linalg.eigh(np.asarray(cov))
    if k:
        vals[-k:] = 0
    return vecs.T @ np.diag(vals) @ vecs


def remove_unit_projection(cov, k):
    vals, vecs = np.linalg.eigh(np.asarray(cov))
    top = vecs[:, len(vals) - k:]
    return np.asarray(cov) - top @ top.T


def remove_smallest(cov, k):
    vals, vecs = np.linalg.eigh(np.asarray(cov))
    vals[:k] = 0
    return (vecs * vals) @ vecs.T


def remove_returns_removed(cov, k):
    """The top components themselves (what was to be taken away)."""
    vals, vecs = np.linalg.eigh(np.asarray(cov))
    top = vecs[:, len(vals) - k:]
    return (top * vals[len(vals) - k:]) @ top.T


def remove_mean(cov, k):
    cov = np.asarray(cov)
    return cov - cov.mean() if k else cov


def remove_top_in_place(cov, k):
    """The result written back into the caller's covariance (a notebook's loop over k
    then removes components of an already edited matrix)."""
    cov.copy_(torch.as_tensor(remove_top(cov, k), dtype=cov.dtype))
    return cov


def covariance_over_n(n, total, gram):
    return covariance_from_sums(n, total, gram) * (n - 1) / n


def covariance_no_mean(n, total, gram):
    return np.asarray(gram) / (n - 1)


def covariance_total_outer(n, total, gram):
    total = np.asarray(total)
    return (np.asarray(gram) - np.outer(total, total)) / (n - 1)


def covariance_mean_outer_once(n, total, gram):
    mean = np.asarray(total) / n
    return (np.asarray(gram) - np.outer(mean, mean)) / (n - 1)


def covariance_dot_product(n, total, gram):
    mean = np.asarray(total) / n
    return (np.asarray(gram) - n * (mean @ mean)) / (n - 1)


def covariance_mean_over_n_minus_1(n, total, gram):
    mean = np.asarray(total) / (n - 1)
    return (np.asarray(gram) - n * np.outer(mean, mean)) / (n - 1)


def covariance_correlation(n, total, gram):
    c = covariance_from_sums(n, total, gram)
    sd = np.sqrt(np.diag(c))
    return c / np.outer(sd, sd)


def covariance_variances_only(n, total, gram):
    return np.diag(np.diag(covariance_from_sums(n, total, gram)))


CHECKS = {
    "cosine": (checks.check_frobenius_cosine, frobenius_cosine),
    "remove": (checks.check_remove_top, remove_top),
    "sums": (checks.check_covariance_from_sums, covariance_from_sums),
}

WRONG = [
    ("cosine", cosine_unnormalised, "both Frobenius norms"),
    ("cosine", cosine_centred, "Pearson correlation"),
    ("cosine", cosine_trace, "symmetric matrices"),
    ("cosine", cosine_squared_norms, "not of the squared norms"),
    ("cosine", cosine_spectral_norms, "spectral norm"),
    ("cosine", cosine_matrix_product, "not the matrix product"),
    ("cosine", cosine_distance, "1 - cosine"),
    ("cosine", cosine_abs_value, "do not take abs"),
    ("remove", remove_smallest, "SMALLEST"),
    ("remove", remove_mean, "not the mean"),
    ("remove", remove_top_in_place, "changed the tensor you were given"),
    ("remove", remove_minus_zero, "zeroed every eigenvalue"),
    ("remove", remove_only_kth, "only the k-th largest"),
    ("remove", remove_rows_as_vectors, "COLUMNS of vecs"),
    ("remove", remove_unit_projection, "lambda v v^T"),
    ("remove", remove_returns_removed, "the part you removed"),
    ("sums", covariance_over_n, "n - 1"),
    ("sums", covariance_no_mean, "mean's part"),
    ("sums", covariance_total_outer, "you subtracted total total^T"),
    ("sums", covariance_mean_outer_once, "n times the outer product"),
    ("sums", covariance_dot_product, "OUTER product"),
    ("sums", covariance_mean_over_n_minus_1, "the mean is total / n"),
    ("sums", covariance_correlation, "correlation matrix"),
    ("sums", covariance_variances_only, "not only the variances"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)


def test_torch_solutions_pass(capsys):
    """The notebook's solutions (torch) pass too."""
    def cosine(a, b):
        return (a * b).sum() / (torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(b))

    def remove(cov, k):
        vals, vecs = torch.linalg.eigh(cov)
        vals = vals.clone()
        vals[len(vals) - k:] = 0
        return vecs @ torch.diag(vals) @ vecs.T

    assert checks.check_frobenius_cosine(cosine)
    assert checks.check_remove_top(remove)
    assert "✗" not in capsys.readouterr().out


def cosine_abs(a, b):
    return abs(frobenius_cosine(a, b))


def cosine_float32(a, b):
    a, b = torch.as_tensor(a).float(), torch.as_tensor(b).float()
    return (a * b).sum() / (a.norm() * b.norm())


def remove_float32(cov, k):
    vals, vecs = torch.linalg.eigh(torch.as_tensor(cov).float())
    vals[len(vals) - k:] = 0
    return (vecs * vals) @ vecs.T


def test_abs_cosine_is_caught(capsys):
    """Issue 21: every pair had a positive cosine, so abs() passed."""
    result = checks.check_frobenius_cosine(cosine_abs)
    assert not result.correct and "sign" in result.line, result.line


def test_float32_right_answers_pass(capsys):
    """Issue 21: the right formula in float32 was rejected."""
    assert checks.check_frobenius_cosine(cosine_float32).correct
    assert checks.check_remove_top(remove_float32).correct
