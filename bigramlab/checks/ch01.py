"""Checks for the exercises of Chapter 1 (bigram models).

Every answer is compared with :class:`bigramlab.methods.bigrams.BigramModel` on small
random corpora, made so that some contexts and some tokens never occur (the
backoff and zero-probability cases are always exercised).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ..methods.bigrams import BigramModel, bigram_counts
from ..methods.metrics import surprisal_correlation
from ._core import CheckResult, Wrong, call, expect_equal, rng, run

LN2 = math.log(2.0)


def _corpora() -> list[tuple[torch.Tensor, int]]:
    """(sequences, vocab_size) cases. The last id of each vocabulary never occurs,
    so its context is unseen (backoff) and its column is all zero."""
    g = rng(1)
    cases = []
    for V, n, seq in ((6, 5, 8), (11, 20, 16), (4, 3, 1)):
        # Zipf-ish draws over ids 0..V-2: uneven rows, many zero pairs.
        w = 1.0 / torch.arange(1, V, dtype=torch.float64)
        cases.append((torch.multinomial(w, n * seq, replacement=True, generator=g).view(n, seq),
                      V))
    return cases


def _model(seqs: torch.Tensor, V: int):
    return BigramModel.from_corpus([seqs], V, device="cpu")


def _tensor(x, what: str) -> torch.Tensor:
    try:
        return torch.as_tensor(x).detach().cpu()
    except Exception as e:
        raise Wrong(f"{what}: expected a tensor, got {type(x).__name__}") from e


def _same(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=1e-4, atol=1e-6,
                                                 equal_nan=True)


def _pair_table(context: torch.Tensor, nxt: torch.Tensor, V: int) -> torch.Tensor:
    """(V + 1, V) counts of (context, next) pairs, position by position."""
    pairs = (context.long() * V + nxt.long()).reshape(-1)
    return torch.bincount(pairs, minlength=(V + 1) * V).view(V + 1, V)


# ---------------------------------------------------------------- Exercise 1.1
def check_count_bigrams(fn: Callable) -> CheckResult:
    """Exercise 1.1: ``fn(sequences, vocab_size)`` -> (V + 1, V) count table,
    row V being the start placeholder context."""

    def body():
        for seqs, V in _corpora():
            want = bigram_counts(_model(seqs, V))
            got = _tensor(call(fn, seqs.clone(), V), "count_bigrams")
            what = f"count_bigrams on {seqs.shape[0]} sequences of {seqs.shape[1]} tokens, V={V}"
            if got.shape == (V, V):
                raise Wrong(f"{what}: your table has V = {V} rows; add the start placeholder "
                            f"context as row V (V + 1 = {V + 1} rows in all), counting the first "
                            "token of every sequence")
            if got.shape == (V, V + 1) or got.shape == (V + 1, V + 1):
                raise Wrong(f"{what}: expected shape {(V + 1, V)}: rows are the current token "
                            "(V + 1 of them, the start row included), columns the next token (V)")
            if got.shape == want.shape and not _same(got, want):
                rows = want.double().sum(1, keepdim=True)
                if _same(got, torch.where(rows > 0, want.double() / rows.clamp(min=1), 0.0)) \
                        or _same(got, want.double() / rows):
                    raise Wrong(f"{what}: those are probabilities (each row divided by its "
                                "sum); this exercise asks for the counts themselves")
                if _same(got, (want > 0).to(got.dtype)):
                    raise Wrong(f"{what}: your table is 0/1 (seen or not): count every "
                                "occurrence, += 1 for each pair (a pair can repeat)")
                if _same(got[:V], want[:V]):
                    raise Wrong(f"{what}: row V (the start context) must count the first token "
                                "of every sequence")
                start = torch.full_like(seqs[:, :1], V)
                if _same(got, _pair_table(torch.cat([seqs[:, 1:], start], 1), seqs, V)):
                    raise Wrong(f"{what}: your context is shifted the wrong way: the context "
                                "of token t is the token BEFORE it, t - 1 (V for the first "
                                "token): torch.cat([V column, sequences[:, :-1]]), not "
                                "sequences[:, 1:]")
                if _same(got[:V].T, want[:V]):
                    raise Wrong(f"{what}: rows must be the current token a and columns the next "
                                "token b (your table is transposed)")
                joined = bigram_counts(_model(seqs.reshape(1, -1), V))
                joined[V] = want[V]
                if _same(got, joined):
                    raise Wrong(f"{what}: pairs must not cross from the last token of one "
                                "sequence to the first token of the next")
                if _same(got, _pair_table(seqs, seqs, V)):
                    raise Wrong(f"{what}: your context is the token itself (a diagonal "
                                "table): shift it by one, so that the context of token t is "
                                "token t - 1 (V for the first token)")
            expect_equal(got, want, what)
    return run("Exercise 1.1 (count bigrams)", body)


# ---------------------------------------------------------------- Exercise 1.2
def check_bigram_probs(fn: Callable) -> CheckResult:
    """Exercise 1.2: ``fn(counts)`` -> (V + 1, V) rows P(b | a); contexts never
    seen back off to the unigram distribution (uniform only without any data)."""

    def body():
        cases = [(bigram_counts(_model(seqs, V)), V) for seqs, V in _corpora()]
        cases.append((torch.zeros(6, 5, dtype=torch.int64), 5))  # no data at all
        for counts, V in cases:
            table = torch.zeros(V + 2, V, dtype=torch.int64)
            table[: V + 1] = counts
            want = BigramModel(V, table=table).next_token_probs(torch.arange(V + 1))
            before = counts.clone()
            got = _tensor(call(fn, counts, inputs=("counts",)), "bigram_probs")
            what = f"bigram_probs on a {tuple(counts.shape)} count table"
            if not torch.equal(counts, before):
                raise Wrong(f"{what}: your function changed the counts it was given (work on a "
                            "copy, e.g. counts.double())")
            if got.shape != want.shape:
                expect_equal(got, want, what)
            if not (got.is_floating_point() or got.is_complex()) and not _same(got, want):
                raise Wrong(f"{what}: your probabilities are integers ({got.dtype}): "
                            "integer division (//) or an int tensor; divide as floats, "
                            "counts.double() / total")
            c = counts.double()
            wrong = not _same(got, want)
            if wrong and counts.sum() and _same(got, c / c.sum(0, keepdim=True)):
                raise Wrong(f"{what}: you normalised over the wrong axis (the columns, "
                            "sum(0)): row a is P(. | a), so divide by the row sums, "
                            "sum(1, keepdim=True)")
            if wrong and counts.sum() and _same(got, (c + 1) / (c.sum(1, keepdim=True) + V)):
                raise Wrong(f"{what}: no smoothing (add-one gives unseen pairs a "
                            "probability): P(b | a) = C[a, b] / sum_b C[a, b], and only "
                            "contexts never seen back off")
            if counts.sum() == 0:
                if not _same(got, want):
                    raise Wrong(f"{what}: with no counts at all there is no unigram "
                                f"distribution either: every row is uniform, 1 / V = {1 / V:.3f}")
                continue
            unseen = counts.sum(1) == 0
            if torch.isnan(got.double()).any() or torch.isinf(got.double()).any():
                raise Wrong(f"{what}: your rows contain NaN or inf: a context never seen (an "
                            "all-zero row) must back off to the unigram distribution, not "
                            "divide 0 by 0")
            if not _same(got[~unseen], want[~unseen]):
                raise Wrong(f"{what}: a seen context's row must be C[a, b] / sum_b C[a, b] "
                            "(each row sums to 1)")
            g, w = got[unseen].double(), want[unseen].double()
            if not _same(g, w):
                if torch.allclose(g, torch.zeros_like(g)):
                    raise Wrong(f"{what}: rows of contexts never seen are all zero: they must "
                                "back off to the unigram distribution")
                if torch.allclose(g, torch.full_like(g, 1 / V)):
                    raise Wrong(f"{what}: contexts never seen get the uniform 1/V; back off to "
                                "the unigram distribution instead (column sums of the counts, "
                                "normalized), as the paper's code does")
                no_start = counts[:V].sum(0).double()
                if torch.allclose(g, (no_start / no_start.sum()).expand_as(g), atol=1e-6):
                    raise Wrong(f"{what}: the unigram distribution counts every token once: sum "
                                "the columns over all V + 1 rows, the start row included")
                raise Wrong(f"{what}: rows of contexts never seen must be the unigram "
                            "distribution (column sums of the counts, normalized)")
    return run("Exercise 1.2 (probabilities with backoff)", body)


# ---------------------------------------------------------------- Exercise 1.3
def check_surprisal_bits(fn: Callable) -> CheckResult:
    """Exercise 1.3: ``fn(probs, ids)`` -> (batch, seq - 1) surprisal in bits of
    token t + 1 given token t; inf where the probability is 0."""

    def body():
        g = rng(2)
        for seqs, V in _corpora()[:2]:
            model = _model(seqs, V)
            probs = model.next_token_probs(torch.arange(V + 1))
            # Uniform draws over all V ids: unseen pairs and the unseen token occur.
            ids = torch.randint(0, V, (4, 12), generator=g)
            want = model.surprisal(ids)
            assert torch.isinf(want).any() and torch.isfinite(want).any()
            got = _tensor(call(fn, probs.clone(), ids.clone()), "surprisal_bits")
            what = f"surprisal_bits on ids of shape {tuple(ids.shape)}, V={V}"
            if got.shape == ids.shape:
                raise Wrong(f"{what}: expected shape {tuple(want.shape)}: token t + 1 is "
                            "predicted from token t, so a sequence of n tokens has n - 1 "
                            "surprisals (the first token has none here)")
            if got.shape != want.shape and got.numel() == want.numel():
                raise Wrong(f"{what}: right number of values, but return shape "
                            f"{tuple(want.shape)} (batch, seq - 1), got {tuple(got.shape)}")
            if got.shape != want.shape:
                expect_equal(got, want, what)
            p_next = probs[ids[:, :-1], ids[:, 1:]]
            if _same(got, p_next):
                raise Wrong(f"{what}: those are the probabilities themselves; surprisal is "
                            "-log2 p")
            fin = torch.isfinite(want)
            g_fin, w_fin = got[fin].double(), want[fin].double()
            if _same(g_fin, w_fin * LN2):
                raise Wrong(f"{what}: these are nats (natural log): surprisal in bits is "
                            "-log2 p")
            if _same(g_fin, w_fin * math.log10(2.0)):
                raise Wrong(f"{what}: that is log base 10: surprisal in bits is -log2 p")
            if _same(g_fin, -w_fin):
                raise Wrong(f"{what}: surprisal is -log2 p, which is never negative")
            swapped = -torch.log2(probs[ids[:, 1:], ids[:, :-1]])
            if _same(got, swapped) and not _same(got, want):
                raise Wrong(f"{what}: probs[a, b] is P(b | a): index the row by the current "
                            "token and the column by the next one")
            if not _same(g_fin, w_fin):
                raise Wrong(f"{what}: finite surprisals differ from -log2 P(next | current)")
            if not torch.isinf(got[~fin]).all() or (got[~fin] < 0).any():
                raise Wrong(f"{what}: a pair with probability 0 must have surprisal +inf (no "
                            "smoothing, no clamping)")
    return run("Exercise 1.3 (surprisal in bits)", body)


# ---------------------------------------------------------------- Exercise 1.4
def _pearson(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([x.double().ravel(), y.double().ravel()]))[0, 1])


def _correlation_mistakes(lm, bigram, mode, want):
    """(value, message) of the mistakes 1.4's students make."""
    from scipy import stats  # only for the Spearman mistake: scipy.stats loads slowly
    inf = torch.isinf(bigram)
    top = bigram[~inf].max()
    if mode == "max":
        x, y = lm, torch.where(inf, top, bigram)
    else:
        x, y = lm[~inf], bigram[~inf]
    lx, ly = x.double().ravel(), y.double().ravel()
    out = [(float(stats.spearmanr(lx.numpy(), ly.numpy()).statistic),
            "that is Spearman's rho; the exercise asks for Pearson's r of the values"),
           (want ** 2, "that is r squared; return r itself"),
           (float(((lx - lx.mean()) * (ly - ly.mean())).mean()),
            "that is the covariance: divide it by both standard deviations (Pearson's r)"),
           (float(((lx - lx.mean()) * (ly - ly.mean())).sum() / (len(lx) - 1)),
            "that is the covariance: divide it by both standard deviations (Pearson's r)")]
    if mode == "max":
        row_top = torch.where(inf, -math.inf, bigram).amax(1, keepdim=True).expand_as(bigram)
        out += [(_pearson(lm, torch.where(inf, row_top, bigram)),
                 "replace by the largest finite surprisal over ALL positions, not per "
                 "sequence (row)"),
                (_pearson(lm, torch.where(inf, 0.0, bigram)),
                 "an infinite surprisal is the MOST surprising: replace it by the largest "
                 "finite one, not by 0")]
    return out


def check_correlation(fn: Callable) -> CheckResult:
    """Exercise 1.4: ``fn(lm_bits, bigram_bits, inf)`` -> Pearson r, with
    infinite bigram surprisals replaced by the largest finite one (inf="max")
    or dropped (inf="drop")."""

    def body():
        g = rng(3)
        bigram = torch.rand(6, 30, generator=g) * 12
        lm = 0.6 * bigram + torch.rand(6, 30, generator=g) * 4
        bigram[torch.rand(6, 30, generator=g) < 0.08] = math.inf
        bigram[0, 0] = math.inf
        lm[0, 0] = 15.0  # an unseen pair the LM also finds surprising
        r = {m: surprisal_correlation(lm, bigram, m) for m in ("max", "drop")}
        for mode, other in (("max", "drop"), ("drop", "max")):
            got = call(fn, lm.clone(), bigram.clone(), mode)
            try:
                got = float(got)
            except Exception as e:
                raise Wrong(f"correlation(..., inf={mode!r}): expected a number, got "
                            f"{type(got).__name__}") from e
            if math.isnan(got):
                raise Wrong(f"correlation(..., inf={mode!r}) is NaN: Pearson r of arrays with "
                            "infinities is undefined: replace or drop them first")
            if abs(got - r[mode]) > 1e-6:
                for value, message in _correlation_mistakes(lm, bigram, mode, r[mode]):
                    if abs(got - value) < 1e-6:
                        raise Wrong(f"correlation(..., inf={mode!r}): {message}")
                if abs(got - r[other]) < 1e-6:
                    how = ("replace each infinite bigram surprisal by the largest finite one, "
                           "keep every position") if mode == "max" else \
                        "drop the positions whose bigram surprisal is infinite"
                    raise Wrong(f"correlation(..., inf={mode!r}) gave the {other!r} answer: "
                                f"{how}")
                raise Wrong(f"correlation(..., inf={mode!r}): expected r = {r[mode]:.4f}, got "
                            f"{got:.4f}")
    return run("Exercise 1.4 (bigram surprisal correlation)", body)
