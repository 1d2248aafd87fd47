"""Chapter 6 exercise checks: they pass right answers (written here independently
of bigramlab, with numpy), say "not implemented yet" for stubs, name the problem
in plausible wrong answers, and never raise."""

import numpy as np
import torch

from bigramlab import checks
from tests.helpers.checks import contract_tests


# ------------------------------------------------------------ right answers
def median_rotation(a):
    return float(np.median(np.abs(np.angle(np.linalg.eigvals(np.asarray(a)), deg=True))))


def ridge_fit(x, y, alpha):
    x, y = np.asarray(x), np.asarray(y)
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    w = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ yc)
    a = w.T
    return a, my - a @ mx


def recall_at_k(logits, labels, k):
    logits, labels = np.asarray(logits), np.asarray(labels)
    hits = 0
    for row, label in zip(logits, labels):
        rank = sum(v > row[label] for v in row)
        hits += rank < k
    return hits / len(labels)


# ------------------------------------------------------------ wrong answers
def rotation_in_radians(a):
    return float(np.median(np.abs(np.angle(np.linalg.eigvals(np.asarray(a))))))


def rotation_lower_median(a):
    return float(torch.median(torch.linalg.eigvals(torch.as_tensor(a)).angle().abs()) * 180 / np.pi)


def rotation_upper_half_only(a):
    eig = np.linalg.eigvals(np.asarray(a))
    return float(np.median(np.abs(np.angle(eig[eig.imag >= 0], deg=True))))


def rotation_signed(a):
    return float(np.median(np.angle(np.linalg.eigvals(np.asarray(a)), deg=True)))


def rotation_placeholder(a):
    return 0.0


def rotation_mean(a):
    return float(np.mean(np.abs(np.angle(np.linalg.eigvals(np.asarray(a)), deg=True))))


def rotation_eigvalsh(a):
    return float(np.median(np.abs(np.angle(np.linalg.eigvalsh(np.asarray(a)), deg=True))))


def rotation_real_parts(a):
    return float(np.median(np.abs(np.angle(np.linalg.eigvals(np.asarray(a)).real, deg=True))))


def rotation_atan(a):
    eig = np.linalg.eigvals(np.asarray(a))
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.median(np.abs(np.degrees(np.arctan(eig.imag / eig.real)))))


def ridge_without_intercept(x, y, alpha):
    x, y = np.asarray(x), np.asarray(y)
    return np.linalg.solve(x.T @ x + alpha * np.eye(x.shape[1]), x.T @ y).T, np.zeros(y.shape[1])


def ridge_penalised_intercept(x, y, alpha):
    x, y = np.asarray(x), np.asarray(y)
    xa = np.hstack([x, np.ones((len(x), 1))])
    theta = np.linalg.solve(xa.T @ xa + alpha * np.eye(xa.shape[1]), xa.T @ y)
    return theta[:-1].T, theta[-1]


def ridge_alpha_ignored(x, y, alpha):
    return ridge_fit(x, y, 0.0)


def ridge_alpha_everywhere(x, y, alpha):
    x, y = np.asarray(x), np.asarray(y)
    mx, my = x.mean(0), y.mean(0)
    a = np.linalg.solve((x - mx).T @ (x - mx) + alpha, (x - mx).T @ (y - my)).T
    return a, my - a @ mx


def ridge_intercept_mean_y(x, y, alpha):
    a, _ = ridge_fit(x, y, alpha)
    return a, np.asarray(y).mean(0)


def ridge_intercept_untransposed(x, y, alpha):
    a, _ = ridge_fit(x, y, alpha)
    return a, np.asarray(y).mean(0) - np.asarray(x).mean(0) @ a


def ridge_transposed(x, y, alpha):
    a, b = ridge_fit(x, y, alpha)
    return a.T, b


def ridge_mean_loss(x, y, alpha):
    """sklearn-style scaling slip: the penalty added to the MEAN squared error."""
    x, y = np.asarray(x), np.asarray(y)
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    a = np.linalg.solve(xc.T @ xc / len(x) + alpha * np.eye(x.shape[1]), xc.T @ yc / len(x)).T
    return a, my - a @ mx


def recall_count(logits, labels, k):
    return recall_at_k(logits, labels, k) * len(labels)


def recall_percent(logits, labels, k):
    return 100 * recall_at_k(logits, labels, k)


def recall_over_vocab(logits, labels, k):
    return recall_at_k(logits, labels, k) * len(labels) / np.asarray(logits).shape[1]


def recall_ascending(logits, labels, k):
    """argsort ascending: rank 0 is the smallest logit."""
    logits, labels = np.asarray(logits), np.asarray(labels)
    return float(np.mean([(row < row[label]).sum() < k for row, label in zip(logits, labels)]))


def recall_topk(logits, labels, k):
    top = torch.as_tensor(logits).topk(k, dim=1).indices
    return float((top == torch.as_tensor(labels)[:, None]).any(1).double().mean())


def recall_off_by_one(logits, labels, k):
    return recall_at_k(logits, labels, k + 1)


def recall_ties_against(logits, labels, k):
    logits, labels = np.asarray(logits), np.asarray(labels)
    ranks = [(row >= row[label]).sum() - 1 for row, label in zip(logits, labels)]
    return float(np.mean(np.array(ranks) < k))


def recall_top1_only(logits, labels, k):
    return recall_at_k(logits, labels, 1)


CHECKS = {
    "rotation": (checks.check_median_rotation, median_rotation),
    "ridge": (checks.check_ridge_fit, ridge_fit),
    "recall": (checks.check_recall_at_k, recall_at_k),
}

WRONG = [
    ("rotation", rotation_in_radians, "radians"),
    ("rotation", rotation_lower_median, "two middle values"),
    ("rotation", rotation_upper_half_only, "counts twice"),
    ("rotation", rotation_signed, "absolute value"),
    ("rotation", rotation_placeholder, "placeholder"),
    ("rotation", rotation_mean, "not the mean"),
    ("rotation", rotation_eigvalsh, "imaginary parts"),
    ("rotation", rotation_real_parts, "imaginary parts"),
    ("rotation", rotation_atan, "quadrant"),
    ("ridge", ridge_without_intercept, "fit the intercept"),
    ("ridge", ridge_penalised_intercept, "penalised"),
    ("ridge", ridge_transposed, "(d_out, d_in)"),
    ("ridge", ridge_alpha_ignored, "unpenalised"),
    ("ridge", ridge_alpha_everywhere, "diagonal only"),
    ("ridge", ridge_intercept_mean_y, "mean(y) only"),
    ("ridge", ridge_intercept_untransposed, "not mean(x) @ A"),
    ("ridge", ridge_mean_loss, "MEAN squared error"),
    ("recall", recall_off_by_one, "off by one"),
    ("recall", recall_ties_against, "strictly larger"),
    ("recall", recall_top1_only, "top-1 accuracy"),
    ("recall", recall_count, "number of hits"),
    ("recall", recall_percent, "not a percentage"),
    ("recall", recall_over_vocab, "not by the vocabulary size"),
    ("recall", recall_ascending, "SMALLEST logit"),
    ("recall", recall_topk, "topk breaks ties"),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)


def test_torch_solutions_pass(capsys):
    """The notebook's solutions (torch) pass too."""
    def rotation(a):
        return torch.quantile(torch.linalg.eigvals(a).angle().abs().rad2deg(), 0.5)

    def recall(logits, labels, k):
        ranks = (logits > logits.gather(1, labels[:, None])).sum(1)
        return (ranks < k).double().mean()

    assert checks.check_median_rotation(rotation)
    assert checks.check_recall_at_k(recall)
    assert "✗" not in capsys.readouterr().out


def rotation_float32(a):
    eig = torch.linalg.eigvals(torch.as_tensor(a).float())
    return float(np.median(np.degrees(np.abs(np.angle(eig.numpy())))))


def test_float32_right_rotation_passes(capsys):
    """Issue 21: "expected 60.000 degrees, got 60.000" for the right formula in float32."""
    assert checks.check_median_rotation(rotation_float32).correct, capsys.readouterr().out


def test_a_rejection_prints_the_digits_that_differ(capsys):
    result = checks.check_median_rotation(lambda a: rotation_float32(a) + 2e-3)
    assert not result.correct
    got = result.line.split("got ")[-1]
    want = result.line.split("expected ")[-1].split(" degrees")[0]
    assert got != want, result.line
