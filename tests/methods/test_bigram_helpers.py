"""Chapter 1's functions around the bigram model (counts, Zipf, generation, the surprisal
correlation, the LM-vs-bigram cross-entropy: bigramlab.methods.bigrams and .metrics), each
against a naive reference written here (plain loops, numpy, collections). The model itself:
test_bigrams.py; the display helpers: tests/package/test_display.py."""

import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from bigramlab.methods.bigrams import (BigramModel, bigram_counts, bigram_generate,
                                       context_counts, unigram_counts)
from bigramlab.methods.metrics import lm_bigram_cross_entropy, surprisal_correlation, zipf_fit

DENSE, SPARSE = 10**12, 0
STORAGES = pytest.mark.parametrize("dense_max", [DENSE, SPARSE], ids=["dense", "sparse"])


def corpus(seed=0, n=25, seq=13, V=30):
    g = torch.Generator().manual_seed(seed)
    w = 1.0 / torch.arange(1, V, dtype=torch.float64)  # id V-1 never occurs
    return torch.multinomial(w, n * seq, replacement=True, generator=g).view(n, seq)


def naive_counts(seqs, V):
    c = Counter()
    for row in seqs.tolist():
        prev = V
        for tok in row:
            c[prev, tok] += 1
            prev = tok
    return c


# ----------------------------------------------------------------- counts
@STORAGES
def test_counts_match_naive(dense_max):
    V, seqs = 30, corpus()
    model = BigramModel.from_corpus(seqs.split(4), V, dense_max_entries=dense_max)
    naive = naive_counts(seqs, V)
    table = bigram_counts(model)
    assert table.shape == (V + 1, V) and table.dtype == torch.int64
    for a in range(V + 1):
        for b in range(V):
            assert table[a, b] == naive[a, b]
    unigram = Counter(seqs.reshape(-1).tolist())
    assert unigram_counts(model).tolist() == [unigram[b] for b in range(V)]
    rows = Counter(a for (a, _b), n in naive.items() for _ in range(n))
    assert context_counts(model).tolist() == [rows[a] for a in range(V + 1)]
    assert context_counts(model)[V] == seqs.shape[0]  # one start per sequence
    assert context_counts(model)[V - 1] == 0  # never seen: backs off


def test_bigram_counts_is_a_copy_and_refuses_huge_tables():
    V = 8
    model = BigramModel.from_corpus([corpus(V=V)], V)
    t = bigram_counts(model)
    t.zero_()
    assert bigram_counts(model).sum() == corpus(V=V).numel()
    big = BigramModel.from_corpus([torch.tensor([[1, 2, 3]])], 10_000, dense_max_entries=SPARSE)
    with pytest.raises(ValueError, match="small vocabularies"):
        bigram_counts(big)
    assert unigram_counts(big)[[1, 2, 3]].tolist() == [1, 1, 1]  # these still work


# ------------------------------------------------------------------- Zipf
def test_zipf_fit_recovers_a_power_law_and_matches_polyfit():
    ranks = np.arange(1, 3001)
    counts = torch.tensor(1e7 * ranks ** -1.2)[torch.randperm(3000)]  # order irrelevant
    slope, intercept = zipf_fit(counts)
    assert slope == pytest.approx(-1.2, abs=1e-9)
    assert intercept == pytest.approx(math.log(1e7), abs=1e-6)
    rng = np.random.default_rng(0)
    noisy = rng.zipf(1.6, 50_000)
    c = np.array(sorted(Counter(noisy.tolist()).values(), reverse=True), dtype=float)
    want = np.polyfit(np.log(np.arange(1, len(c) + 1)[9:200]), np.log(c[9:200]), 1)
    got = zipf_fit(torch.tensor(np.concatenate([c, np.zeros(7)])), 10, 200)  # zeros dropped
    assert got == pytest.approx(tuple(want), rel=1e-9)
    with pytest.raises(ValueError):
        zipf_fit(torch.tensor([3.0, 2.0, 1.0]))


# ------------------------------------------------------------- generation
@STORAGES
def test_generate_is_seeded_and_follows_the_counts(dense_max):
    V, seqs = 30, corpus()
    model = BigramModel.from_corpus([seqs], V, dense_max_entries=dense_max)
    a = bigram_generate(model, None, 40, n=3, generator=torch.Generator().manual_seed(5))
    b = bigram_generate(model, None, 40, n=3, generator=torch.Generator().manual_seed(5))
    c = bigram_generate(model, None, 40, n=3, generator=torch.Generator().manual_seed(6))
    assert a.shape == (3, 40) and a.dtype == torch.int64
    assert torch.equal(a, b) and not torch.equal(a, c)
    naive = naive_counts(seqs, V)
    seen_ctx = {x for x, _ in naive}
    unigram = Counter(seqs.reshape(-1).tolist())
    for row in a.tolist():  # every sampled pair was seen, or its context backed off
        assert naive[V, row[0]] > 0
        for x, y in zip(row, row[1:]):
            assert naive[x, y] > 0 if x in seen_ctx else unigram[y] > 0
    assert any(x not in seen_ctx for x in a.reshape(-1).tolist())  # backoff exercised
    prompt = torch.tensor([3, 1])
    out = bigram_generate(model, prompt, 5, generator=torch.Generator().manual_seed(0))
    assert out.shape == (7,) and out[:2].tolist() == [3, 1]


def test_generate_dense_and_sparse_sample_the_same():
    V, seqs = 30, corpus(1)
    dense = BigramModel.from_corpus([seqs], V, dense_max_entries=DENSE)
    sparse = BigramModel.from_corpus([seqs], V, dense_max_entries=SPARSE)
    for T in (1.0, 0.5):
        x = bigram_generate(dense, None, 30, n=4, temperature=T,
                            generator=torch.Generator().manual_seed(2))
        y = bigram_generate(sparse, None, 30, n=4, temperature=T,
                            generator=torch.Generator().manual_seed(2))
        assert torch.equal(x, y)


@pytest.mark.parametrize("T", [1.0, 0.5, 2.0])
def test_generate_samples_the_tempered_distribution(T):
    V, seqs = 30, corpus(2)
    model = BigramModel.from_corpus([seqs], V)
    naive = naive_counts(seqs, V)
    ctx = 0
    p = np.array([naive[ctx, b] for b in range(V)], dtype=float) ** (1 / T)
    p /= p.sum()
    n = 40_000
    out = bigram_generate(model, torch.zeros(n, 1, dtype=torch.int64), 1,
                          temperature=T, generator=torch.Generator().manual_seed(0))
    freq = np.bincount(out[:, 1].numpy(), minlength=V) / n
    assert np.abs(freq - p).max() < 4 * math.sqrt(0.25 / n) + 1e-12


def test_generate_greedy_and_errors():
    V = 5
    # 1 -> 2 twice, 1 -> 3 twice (tie: lowest id wins), 2 -> 4, 3 -> 1, 4 -> 1
    model = BigramModel.from_corpus([torch.tensor([[1, 2, 4, 1, 3, 1, 2], [1, 3, 1, 2, 4, 1, 3]])],
                                    V)
    out = bigram_generate(model, torch.tensor([1]), 6, temperature=0)
    assert out.tolist() == [1, 2, 4, 1, 2, 4, 1]
    with pytest.raises(ValueError):
        bigram_generate(model, None, 3, temperature=-1)
    with pytest.raises(ValueError):
        bigram_generate(model, torch.tensor([7]), 3)


# ------------------------------------------------------------ correlation
def reference_correlation(model_s, ngram_s, drop):
    """The paper's train_circuits.py, transcribed."""
    model_s, ngram_s = model_s.copy(), ngram_s.copy()
    if not drop:
        ngram_s[np.isinf(ngram_s)] = np.max(ngram_s[~np.isinf(ngram_s)])
        model_s[np.isinf(model_s)] = np.max(model_s[~np.isinf(model_s)])
        return stats.pearsonr(model_s, ngram_s)[0]
    to_drop = np.isinf(ngram_s)
    model_infs = np.isinf(model_s)
    model_s[model_infs] = np.max(model_s[~model_infs])
    return stats.pearsonr(model_s[~to_drop], ngram_s[~to_drop])[0]


def test_correlation_matches_the_papers_code():
    rng = np.random.default_rng(0)
    bg = rng.exponential(4, 500)
    lm = 0.7 * bg + rng.normal(0, 1, 500)
    bg[rng.random(500) < 0.05] = np.inf
    lm[3] = np.inf
    for mode, drop in (("max", False), ("drop", True)):
        want = reference_correlation(lm, bg, drop)
        assert surprisal_correlation(torch.tensor(lm).view(20, 25), torch.tensor(bg), mode) == \
            pytest.approx(want, abs=1e-12)
        assert surprisal_correlation(lm, bg, mode) == pytest.approx(want, abs=1e-12)
    fin = np.isfinite(bg) & np.isfinite(lm)
    r = surprisal_correlation(lm[fin], bg[fin])
    assert r == pytest.approx(np.corrcoef(lm[fin], bg[fin])[0, 1], abs=1e-12)
    with pytest.raises(ValueError, match="'max' or 'drop'"):
        surprisal_correlation(lm, bg, "ignore")
    with pytest.raises(ValueError, match="differ in size"):
        surprisal_correlation(lm[:3], bg)


# ---------------------------------------------------- LM vs bigram targets
@STORAGES
def test_lm_bigram_cross_entropy_matches_naive(dense_max):
    from bigramlab.plumbing.profiles import TinyWorld
    from bigramlab.worlds.models import make_model

    V, seqs = 30, corpus(3)
    bigram = BigramModel.from_corpus([seqs], V, dense_max_entries=dense_max)
    torch.manual_seed(0)
    lm = make_model("gpt_neox", TinyWorld(n_layer=1, d_model=16, n_head=2, d_mlp=32), V + 3, 16)
    lm.eval()
    ids = corpus(4, n=7, seq=9)
    with torch.no_grad():
        # 3 padding columns, cut off before the softmax as the paper's code does
        logp = F.log_softmax(lm(input_ids=ids).logits.double()[..., :V], -1)
    total = 0.0
    for i in range(ids.shape[0]):
        for t in range(ids.shape[1]):
            row = bigram.next_token_probs(int(ids[i, t])).double()
            total -= float((row * logp[i, t, :V]).sum())
    want = total / ids.numel()
    got = lm_bigram_cross_entropy(lm, bigram, ids, batch_size=3)
    assert got == pytest.approx(want, rel=1e-5)
