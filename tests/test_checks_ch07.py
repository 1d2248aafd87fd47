"""Chapter 7 exercise checks: they pass right answers (written here independently
of bigramlab, with numpy), say "not implemented yet" for stubs, name the problem
in plausible wrong answers, and never raise."""

import numpy as np
import torch

from bigramlab import checks
from tests.check_contract import contract_tests


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


def remove_smallest(cov, k):
    vals, vecs = np.linalg.eigh(np.asarray(cov))
    vals[:k] = 0
    return (vecs * vals) @ vecs.T


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


CHECKS = {
    "cosine": (checks.check_frobenius_cosine, frobenius_cosine),
    "remove": (checks.check_remove_top, remove_top),
    "sums": (checks.check_covariance_from_sums, covariance_from_sums),
}

WRONG = [
    ("cosine", cosine_unnormalised, "both Frobenius norms"),
    ("cosine", cosine_centred, "Pearson correlation"),
    ("cosine", cosine_trace, "symmetric matrices"),
    ("remove", remove_smallest, "SMALLEST"),
    ("remove", remove_mean, "not the mean"),
    ("remove", remove_top_in_place, "changed the tensor you were given"),
    ("sums", covariance_over_n, "n - 1"),
    ("sums", covariance_no_mean, "mean's part"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG)


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
