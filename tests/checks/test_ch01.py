"""Chapter 1 exercise checks: they pass right answers (written here as plain
loops, independent of bigramlab), say "not implemented yet" for stubs, name
the problem in plausible wrong answers, and never raise."""

import math

import numpy as np
import torch
from scipy import stats

from bigramlab import checks
from tests.helpers.checks import contract_tests


# ------------------------------------------------------------ right answers
def count_loops(seqs, V):
    c = torch.zeros(V + 1, V, dtype=torch.int64)
    for row in seqs.tolist():
        prev = V
        for tok in row:
            c[prev, tok] += 1
            prev = tok
    return c


def probs_loops(counts):
    V = counts.shape[1]
    uni = [sum(int(counts[a, b]) for a in range(V + 1)) for b in range(V)]
    out = torch.zeros(V + 1, V, dtype=torch.float64)
    for a in range(V + 1):
        row = [int(x) for x in counts[a]]
        if sum(row) == 0:
            row = uni if sum(uni) else [1] * V
        for b in range(V):
            out[a, b] = row[b] / sum(row)
    return out


def surprisal_loops(probs, ids):
    out = torch.zeros(ids.shape[0], ids.shape[1] - 1, dtype=torch.float64)
    for i, row in enumerate(ids.tolist()):
        for t in range(len(row) - 1):
            p = float(probs[row[t], row[t + 1]])
            out[i, t] = math.inf if p == 0 else -math.log2(p)
    return out


def correlation_np(lm, bg, inf):
    lm = np.asarray(lm, dtype=float).ravel().copy()
    bg = np.asarray(bg, dtype=float).ravel().copy()
    if inf == "max":
        bg[np.isinf(bg)] = bg[~np.isinf(bg)].max()
    else:
        keep = ~np.isinf(bg)
        lm, bg = lm[keep], bg[keep]
    return stats.pearsonr(lm, bg)[0]


# ------------------------------------------------------------ wrong answers
def count_no_start(seqs, V):
    return count_loops(seqs, V)[:V]


def count_start_row_empty(seqs, V):
    c = count_loops(seqs, V)
    c[V] = 0
    return c


def count_transposed(seqs, V):
    c = count_loops(seqs, V)
    c[:V] = c[:V].T.clone()
    return c


def count_across_sequences(seqs, V):
    c = count_loops(seqs.reshape(1, -1), V)
    c[V] = count_loops(seqs[:, :1], V)[V]
    return c


def count_context_shifted_wrong_way(seqs, V):
    """The context of token t taken from t + 1 (the start placeholder at the end)."""
    ctx = torch.cat([seqs[:, 1:], torch.full_like(seqs[:, :1], V)], dim=1)
    return torch.bincount((ctx * V + seqs).reshape(-1), minlength=(V + 1) * V).view(V + 1, V)


def count_context_not_shifted(seqs, V):
    return torch.bincount((seqs * V + seqs).reshape(-1), minlength=(V + 1) * V).view(V + 1, V)


def count_shift_aliased(seqs, V):
    """ctx = seqs; ctx[:, 1:] = seqs[:, :-1]: ctx is the caller's tensor, shifted in place."""
    ctx = seqs
    ctx[:, 1:] = seqs[:, :-1].clone()
    return count_loops(seqs, V)


def count_probabilities(seqs, V):
    c = count_loops(seqs, V).double()
    return c / c.sum(1, keepdim=True).clamp(min=1)


def count_seen_or_not(seqs, V):
    return (count_loops(seqs, V) > 0).long()


def probs_no_backoff(counts):
    c = counts.double()
    return c / c.sum(1, keepdim=True)


def probs_uniform_backoff(counts):
    V = counts.shape[1]
    c = counts.double()
    tot = c.sum(1, keepdim=True)
    return torch.where(tot > 0, c / tot.clamp(min=1), torch.full_like(c, 1 / V))


def probs_unigram_without_start(counts):
    c = counts.double()
    V = c.shape[1]
    uni = c[:V].sum(0)
    tot = c.sum(1, keepdim=True)
    return torch.where(tot > 0, c / tot.clamp(min=1), (uni / uni.sum()).expand_as(c))


def probs_in_place(counts):
    out = probs_loops(counts)
    counts.zero_()
    return out


def probs_columns(counts):
    c = counts.double()
    return c / c.sum(0, keepdim=True)


def probs_integer_division(counts):
    tot = counts.sum(1, keepdim=True).clamp(min=1)
    return counts // tot


def probs_add_one(counts):
    c = counts.double()
    return (c + 1) / (c.sum(1, keepdim=True) + c.shape[1])


def probs_unigram_from_row_sums(counts):
    """The back-off row taken from the row sums (contexts) instead of the column sums."""
    c = counts.double()
    V = c.shape[1]
    uni = c.sum(1)[:V]
    tot = c.sum(1, keepdim=True)
    return torch.where(tot > 0, c / tot.clamp(min=1), (uni / uni.sum()).expand_as(c))


def surprisal_nats(probs, ids):
    return surprisal_loops(probs, ids) * math.log(2)


def surprisal_all_positions(probs, ids):
    V = probs.shape[1]
    return surprisal_loops(probs, torch.cat([torch.full_like(ids[:, :1], V), ids], 1))


def surprisal_swapped(probs, ids):
    return -torch.log2(probs[ids[:, 1:], ids[:, :-1]])


def surprisal_clamped(probs, ids):
    return surprisal_loops(probs.clamp(min=1e-9), ids)


def surprisal_log10(probs, ids):
    return -torch.log10(probs[ids[:, :-1], ids[:, 1:]])


def surprisal_probabilities(probs, ids):
    return probs[ids[:, :-1], ids[:, 1:]]


def surprisal_nan_to_num(probs, ids):
    return torch.nan_to_num(-torch.log2(probs[ids[:, :-1], ids[:, 1:]]))


def surprisal_flat(probs, ids):
    return -torch.log2(probs[ids[:, :-1], ids[:, 1:]]).reshape(-1)


def _prepared(lm, bg, inf):
    lm = np.asarray(lm, dtype=float).ravel().copy()
    bg = np.asarray(bg, dtype=float).ravel().copy()
    if inf == "max":
        bg[np.isinf(bg)] = bg[~np.isinf(bg)].max()
    else:
        keep = ~np.isinf(bg)
        lm, bg = lm[keep], bg[keep]
    return lm, bg


def correlation_spearman(lm, bg, inf):
    return stats.spearmanr(*_prepared(lm, bg, inf)).statistic


def correlation_squared(lm, bg, inf):
    return correlation_np(lm, bg, inf) ** 2


def correlation_covariance(lm, bg, inf):
    return float(np.cov(*_prepared(lm, bg, inf))[0, 1])


def correlation_max_per_row(lm, bg, inf):
    if inf == "drop":
        return correlation_np(lm, bg, inf)
    bg = np.asarray(bg, dtype=float).copy()
    for row in bg:
        row[np.isinf(row)] = row[~np.isinf(row)].max()
    return stats.pearsonr(np.asarray(lm, dtype=float).ravel(), bg.ravel())[0]


def correlation_inf_to_zero(lm, bg, inf):
    if inf == "drop":
        return correlation_np(lm, bg, inf)
    bg = np.asarray(bg, dtype=float).copy()
    bg[np.isinf(bg)] = 0.0
    return stats.pearsonr(np.asarray(lm, dtype=float).ravel(), bg.ravel())[0]


def correlation_max_of_lm(lm, bg, inf):
    """inf replaced by the LM's largest surprisal (the wrong array's maximum)."""
    if inf == "drop":
        return correlation_np(lm, bg, inf)
    lm = np.asarray(lm, dtype=float).ravel()
    bg = np.asarray(bg, dtype=float).ravel().copy()
    bg[np.isinf(bg)] = lm.max()
    return stats.pearsonr(lm, bg)[0]


def correlation_ignores_inf(lm, bg, inf):
    return stats.pearsonr(np.asarray(lm).ravel(), np.asarray(bg).ravel())[0]


def correlation_modes_swapped(lm, bg, inf):
    return correlation_np(lm, bg, "drop" if inf == "max" else "max")


CHECKS = {
    "count": (checks.check_count_bigrams, count_loops),
    "probs": (checks.check_bigram_probs, probs_loops),
    "surprisal": (checks.check_surprisal_bits, surprisal_loops),
    "correlation": (checks.check_correlation, correlation_np),
}

WRONG = [
    ("count", count_no_start, "start placeholder"),
    ("count", count_start_row_empty, "row V (the start context)"),
    ("count", count_transposed, "transposed"),
    ("count", count_across_sequences, "must not cross"),
    ("count", count_context_shifted_wrong_way, "shifted the wrong way"),
    ("count", count_context_not_shifted, "the token itself"),
    ("count", count_shift_aliased, "changed the tensor you were given"),
    ("count", count_probabilities, "those are probabilities"),
    ("count", count_seen_or_not, "count every occurrence"),
    ("probs", probs_no_backoff, "back off to the unigram"),
    ("probs", probs_uniform_backoff, "uniform 1/V"),
    ("probs", probs_unigram_without_start, "start row included"),
    ("probs", probs_in_place, "changed the counts"),
    ("probs", probs_columns, "wrong axis"),
    ("probs", probs_integer_division, "integers"),
    ("probs", probs_add_one, "no smoothing"),
    ("probs", probs_unigram_from_row_sums, "column sums of the counts"),
    ("surprisal", surprisal_nats, "nats"),
    ("surprisal", surprisal_all_positions, "n - 1 surprisals"),
    ("surprisal", surprisal_swapped, "index the row by the current"),
    ("surprisal", surprisal_clamped, "+inf"),
    ("surprisal", surprisal_log10, "log base 10"),
    ("surprisal", surprisal_probabilities, "probabilities themselves"),
    ("surprisal", surprisal_nan_to_num, "+inf"),
    ("surprisal", surprisal_flat, "right number of values"),
    ("correlation", correlation_ignores_inf, "NaN"),
    ("correlation", correlation_modes_swapped, "gave the"),
    ("correlation", correlation_spearman, "Spearman"),
    ("correlation", correlation_squared, "r squared"),
    ("correlation", correlation_covariance, "covariance"),
    ("correlation", correlation_max_per_row, "not per sequence"),
    ("correlation", correlation_inf_to_zero, "not by 0"),
    ("correlation", correlation_max_of_lm, "expected r ="),
]


test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)


def test_vectorized_solutions_pass(capsys):
    """The notebook's solutions (vectorized torch) pass too, with float or int dtypes."""
    def count(seqs, V):
        ctx = torch.cat([torch.full_like(seqs[:, :1], V), seqs[:, :-1]], dim=1)
        return torch.bincount((ctx * V + seqs).reshape(-1), minlength=(V + 1) * V).view(V + 1, V)

    def probs(counts):
        c = counts.double()
        uni = c.sum(0)
        uni = uni / uni.sum() if uni.sum() > 0 else torch.full_like(uni, 1 / c.shape[1])
        tot = c.sum(1, keepdim=True)
        return torch.where(tot > 0, c / tot.clamp(min=1), uni)

    def surprisal(p, ids):
        return -torch.log2(p[ids[:, :-1], ids[:, 1:]])

    assert checks.check_count_bigrams(count)
    assert checks.check_count_bigrams(lambda s, V: count(s, V).float())
    assert checks.check_bigram_probs(probs)
    assert checks.check_surprisal_bits(surprisal)
    assert "✗" not in capsys.readouterr().out


def test_wrong_shapes_and_types_do_not_raise(capsys):
    assert checks.check_count_bigrams(lambda s, V: torch.zeros(3)).correct is False
    assert "expected shape" in capsys.readouterr().out
    assert checks.check_bigram_probs(lambda c: "rows").correct is False
    assert "expected a tensor" in capsys.readouterr().out
    assert checks.check_surprisal_bits(lambda p, ids: torch.zeros(2, 2)).correct is False
    assert "expected shape" in capsys.readouterr().out
    assert checks.check_correlation(lambda a, b, m: "high").correct is False
    assert "expected a number" in capsys.readouterr().out
