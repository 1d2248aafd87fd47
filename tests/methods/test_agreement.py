"""bigramlab.methods.agreement against naive references: Python loops over positions,
log-softmax of logits, probabilities counted by hand, scores tallied one case at a time."""

import math
from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods.agreement import (agreement_accuracy, find_agreement, logit_margins,
                                         ngram_margins)
from bigramlab.methods.bigrams import BigramModel
from bigramlab.methods.trigrams import TrigramModel

SETTINGS = settings(max_examples=40, deadline=None)
V = 12
# ids 0-2 singular determiners, 3-4 plural ones; nouns 5/6 and 7/8 are (sg, pl) twins;
# 9-11 other words (9 and 10 "adjectives")
DETS = {0: False, 1: False, 2: False, 3: True, 4: True}
NOUNS = {5: (False, 6), 6: (True, 5), 7: (False, 8), 8: (True, 7)}
ADJ = {9, 10}


def naive_find(ids, dets, nouns, gap, between):
    out = []
    for r, row in enumerate(ids.tolist()):
        for t in range(gap + 1, len(row)):
            d, x = row[t - gap - 1], row[t]
            if d not in dets or x not in nouns:
                continue
            if gap == 1:
                m = row[t - 1]
                if (between is not None and m not in between) or \
                        (between is None and (m in dets or m in nouns)):
                    continue
            out.append((r, t, x, nouns[x][1], dets[d], nouns[x][0]))
    return out


def as_tuples(c):
    return list(zip(c.rows.tolist(), c.cols.tolist(), c.right.tolist(), c.wrong.tolist(),
                    c.det_plural.tolist(), c.noun_plural.tolist()))


ids_strategy = st.integers(1, 4).flatmap(lambda n: st.integers(2, 9).flatmap(
    lambda s: st.lists(st.lists(st.integers(0, V - 1), min_size=s, max_size=s),
                       min_size=n, max_size=n)))


@SETTINGS
@given(ids_strategy, st.sampled_from([0, 1]), st.sampled_from([None, "adj"]))
def test_find_agreement_matches_a_loop(rows, gap, between):
    ids = torch.tensor(rows)
    b = ADJ if between else None
    got = find_agreement(ids, DETS, NOUNS, gap=gap, between=b, vocab_size=V)
    assert as_tuples(got) == naive_find(ids, DETS, NOUNS, gap, b)
    assert got.gap == gap and len(got) == len(naive_find(ids, DETS, NOUNS, gap, b))
    assert torch.equal(got.agrees, got.det_plural == got.noun_plural)
    keep = torch.arange(len(got)) % 2 == 0
    assert as_tuples(got.subset(keep)) == as_tuples(got)[::2]


def test_find_agreement_examples_and_errors():
    ids = torch.tensor([[3, 9, 6, 0, 5, 4, 11, 8], [0, 9, 10, 5, 1, 9, 6, 2]])
    one = find_agreement(ids, DETS, NOUNS, gap=1, between=ADJ)
    assert as_tuples(one) == [(0, 2, 6, 5, True, True), (1, 6, 6, 5, False, True)]
    assert one.agrees.tolist() == [True, False]
    anything = find_agreement(ids, DETS, NOUNS, gap=1)  # 11 counts between, a noun does not
    assert [(r, c) for r, c, *_ in as_tuples(anything)] == [(0, 2), (0, 7), (1, 6)]
    zero = find_agreement(ids, DETS, NOUNS, gap=0)
    assert [(r, c) for r, c, *_ in as_tuples(zero)] == [(0, 4)]
    with pytest.raises(ValueError, match="gap must be 0 or 1"):
        find_agreement(ids, DETS, NOUNS, gap=2)
    with pytest.raises(ValueError, match=r"\(n, seq\)"):
        find_agreement(ids[0], DETS, NOUNS)
    with pytest.raises(ValueError, match="another tokenizer"):
        find_agreement(ids, {99: True}, NOUNS, vocab_size=V)
    assert len(find_agreement(torch.zeros(2, 1, dtype=torch.long), DETS, NOUNS, gap=1)) == 0


@SETTINGS
@given(ids_strategy, st.integers(0, 10**6), st.integers(1, 4))
def test_logit_margins_are_log_probability_differences(rows, seed, batch):
    ids = torch.tensor(rows)
    cases = find_agreement(ids, DETS, NOUNS, gap=1, vocab_size=V)
    logits = torch.randn(*ids.shape, V + 3, generator=torch.Generator().manual_seed(seed))
    got = torch.full((len(cases),), float("nan"), dtype=torch.float64)
    seen = []
    for first in range(0, len(ids), batch):  # the batches an LM loop would give
        at, m = logit_margins(logits[first:first + batch], cases, first)
        got[at] = m
        seen += at.tolist()
    assert sorted(seen) == list(range(len(cases)))
    logp = torch.log_softmax(logits.double(), -1)
    for i, (r, c, right, wrong, *_) in enumerate(as_tuples(cases)):
        assert got[i].item() == pytest.approx(float(logp[r, c - 1, right] - logp[r, c - 1, wrong]),
                                              abs=1e-9)


def corpus(seed, n=6, s=10):
    g = torch.Generator().manual_seed(seed)
    # a corpus where the agreement words occur often
    return torch.randint(0, V, (n, s), generator=g)


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([1, 2]))
def test_ngram_margins_match_counts(seed, min_count):
    train, ids = corpus(seed, 40), corpus(seed + 1)
    cases = find_agreement(ids, DETS, NOUNS, gap=1, vocab_size=V)
    bigram = BigramModel.from_corpus([train], V)
    trigram = TrigramModel.from_corpus([train], V, min_count=min_count)
    seqs = train.tolist()
    pairs = Counter((([V] + s)[t], ([V] + s)[t + 1]) for s in seqs for t in range(len(s)))
    triples = Counter(((([V, V] + s)[t]), ([V, V] + s)[t + 1], ([V, V] + s)[t + 2])
                      for s in seqs for t in range(len(s)))
    kept = {k: v for k, v in triples.items() if v >= min_count}

    def p_bigram(b, c):
        row = sum(v for (x, _), v in pairs.items() if x == b)
        if row == 0:  # an unseen context: the unigram distribution
            return sum(v for (_, y), v in pairs.items() if y == c) / sum(pairs.values())
        return pairs[b, c] / row

    def p_trigram(a, b, c):
        row = sum(v for (x, y, _), v in kept.items() if (x, y) == (a, b))
        return kept.get((a, b, c), 0) / row if row else p_bigram(b, c)

    def margin(pr, pw):
        if pr == 0 and pw == 0:
            return 0.0
        return (math.log(pr) if pr else -math.inf) - (math.log(pw) if pw else -math.inf)

    mb, mt = ngram_margins(bigram, ids, cases), ngram_margins(trigram, ids, cases)
    for i, (r, c, right, wrong, *_) in enumerate(as_tuples(cases)):
        a = ids[r, c - 2].item() if c >= 2 else V
        b = ids[r, c - 1].item()
        assert mb[i].item() == pytest.approx(margin(p_bigram(b, right), p_bigram(b, wrong)),
                                             rel=1e-5)
        assert mt[i].item() == pytest.approx(margin(p_trigram(a, b, right),
                                                    p_trigram(a, b, wrong)), rel=1e-5)
    with pytest.raises(TypeError, match="logit_margins"):
        ngram_margins("a model", ids, cases)


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from([-2.0, -0.5, 0.0, 0.0, 1.0, math.inf, -math.inf]),
                          st.booleans()), max_size=30))
def test_agreement_accuracy_tallies_cases(cases):
    margins = torch.tensor([m for m, _ in cases], dtype=torch.float64)
    plural = torch.tensor([p for _, p in cases], dtype=torch.bool)
    got = agreement_accuracy(margins, plural)

    def acc(sel):
        s = [1.0 if m > 0 else 0.5 if m == 0 else 0.0 for m, p in cases if sel(p)]
        return sum(s) / len(s) if s else math.nan

    sg, pl = acc(lambda p: not p), acc(lambda p: p)
    want = {"n": len(cases), "n_singular": sum(not p for _, p in cases),
            "n_plural": sum(p for _, p in cases), "singular": sg, "plural": pl,
            "overall": acc(lambda p: True), "balanced": (sg + pl) / 2}
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert (math.isnan(got[k]) and math.isnan(v)) or got[k] == pytest.approx(v), k


def test_agreement_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="one of each"):
        agreement_accuracy(torch.zeros(3), torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        agreement_accuracy(torch.tensor([float("nan")]), torch.tensor([True]))
    # always preferring the singular: right on every singular case, wrong on every plural one
    assert agreement_accuracy(torch.tensor([1.0, 1.0, -1.0]),
                              torch.tensor([False, False, True]))["balanced"] == 0.5
