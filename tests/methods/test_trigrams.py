"""TrigramModel (bigramlab.methods.trigrams) against a naive dict-of-Counters trigram
model with back-off, written here as plainly as possible; hypothesis property tests;
the cross-entropy target against a dense naive computation; bad input."""

import inspect
import math
from collections import Counter, defaultdict

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from bigramlab.methods import trigrams as trigrams_module
from bigramlab.methods.bigrams import BigramModel
from bigramlab.methods.ngrams import count_ngrams
from bigramlab.methods.rowstore import RowStore
from bigramlab.methods.sparsify import SparsifyConfig, TrigramTarget, sparsify
from bigramlab.methods.trigrams import MIN_COUNT, TrigramFileError, TrigramModel
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

DENSE, SPARSE = 10**12, 0  # dense_max_entries that force either storage
STORAGES = pytest.mark.parametrize("dense_max", [DENSE, SPARSE], ids=["dense", "sparse"])


class NaiveTrigrams:
    """Counts by per-token loops; back-off 3 -> 2 -> 1 -> uniform, a whole row at a time."""

    def __init__(self, sequences, V, k=1):
        self.V = V
        tri, self.bi, self.uni = defaultdict(Counter), defaultdict(Counter), Counter()
        for seq in sequences:
            a, b = V, V  # start placeholders
            for c in seq:
                tri[a, b][c] += 1
                self.bi[b][c] += 1
                self.uni[c] += 1
                a, b = b, c
        self.raw = tri
        pruned = {ctx: Counter({c: n for c, n in row.items() if n >= k})
                  for ctx, row in tri.items()}
        self.tri = {ctx: row for ctx, row in pruned.items() if row}  # emptied: unseen

    def answer(self, a, b):
        """(level, row Counter or None for uniform)."""
        if (a, b) in self.tri:
            return 3, self.tri[a, b]
        if self.bi.get(b):
            return 2, self.bi[b]
        if self.uni:
            return 1, self.uni
        return 0, None

    def prob(self, a, b, c):
        _, row = self.answer(a, b)
        return 1.0 / self.V if row is None else row[c] / sum(row.values())

    def row(self, a, b):
        return [self.prob(a, b, c) for c in range(self.V)]

    def surprisal(self, a, b, c):
        p = self.prob(a, b, c)
        return math.inf if p == 0 else -math.log2(p)


def corpus(seed=0, n=30, seq=17, V=12, zipf=True):
    g = torch.Generator().manual_seed(seed)
    if zipf:  # repeats, so pruning at 2 keeps some trigrams and drops others
        w = 1.0 / torch.arange(1, V, dtype=torch.float64)  # id V - 1 never occurs
        return torch.multinomial(w, n * seq, replacement=True, generator=g).view(n, seq)
    return torch.randint(0, V, (n, seq), generator=g)


def kept_counts(model):
    keys, counts = model.ngram_counts.sparse()
    V = model.vocab_size
    return {(k // V // (V + 1), k // V % (V + 1), k % V): c
            for k, c in zip(keys.tolist(), counts.tolist())}


def check_against_naive(model, naive):
    V = naive.V
    assert kept_counts(model) == {(a, b, c): n for (a, b), row in naive.tri.items()
                                  for c, n in row.items()}
    a, b = torch.meshgrid(torch.arange(V + 1), torch.arange(V + 1), indexing="ij")
    got = model.next_token_probs(a, b)
    assert got.shape == (V + 1, V + 1, V)
    want = torch.tensor([[naive.row(x, y) for y in range(V + 1)] for x in range(V + 1)])
    torch.testing.assert_close(got, want.float())
    # every row is a distribution: a seen context's row over its kept continuations
    torch.testing.assert_close(got.sum(-1), torch.ones(V + 1, V + 1))
    levels = [[naive.answer(x, y)[0] for y in range(V + 1)] for x in range(V + 1)]
    assert model.level(a, b).tolist() == levels


# --------------------------------------------------------------- counting, back-off
@STORAGES
@pytest.mark.parametrize("k", [1, 2, 3])
def test_matches_naive(dense_max, k):
    V, seqs = 12, corpus()
    model = TrigramModel.from_corpus(seqs.split(7), V, min_count=k, dense_max_entries=dense_max)
    naive = NaiveTrigrams(seqs.tolist(), V, k)
    check_against_naive(model, naive)
    assert model.tokens == seqs.numel() and model.min_count == k
    assert model.kept_tokens == sum(sum(r.values()) for r in naive.tri.values())
    assert model.n_contexts == len(naive.tri)
    levels = model.level(torch.arange(V + 1).repeat_interleave(V + 1),
                         torch.arange(V + 1).repeat(V + 1))
    assert set(levels.tolist()) >= ({1, 2, 3} if k > 1 else {1, 3})
    text = corpus(9, 4, 21, V, zipf=False)
    want = torch.tensor([[naive.surprisal(V, V, s[0])] + [naive.surprisal(V, s[0], s[1])]
                         + [naive.surprisal(*s[t - 2:t + 1]) for t in range(2, len(s))]
                         for s in text.tolist()])
    got = model.surprisal(text, start=True)
    assert got.shape == text.shape and torch.equal(got.isinf(), want.isinf())
    assert want.isinf().any()
    fin = ~want.isinf()
    torch.testing.assert_close(got[fin], want[fin].float())
    assert torch.equal(model.surprisal(text), got[:, 1:])
    assert torch.equal(model.surprisal(text[0], start=True), got[0])  # 1-D in, 1-D out
    torch.testing.assert_close(model.prob(text[:, :-2], text[:, 1:-1], text[:, 2:]),
                               torch.exp2(-want[:, 2:]).float())


sequences = st.lists(st.lists(st.integers(0, 5), max_size=9), max_size=6)


@settings(max_examples=60, deadline=None)
@given(seqs=sequences, V=st.integers(1, 6), k=st.integers(1, 3), dense=st.booleans(),
       flush=st.integers(1, 30), data=st.data())
def test_hypothesis_matches_naive(seqs, V, k, dense, flush, data):
    seqs = [[t % V for t in s] for s in seqs]
    batches = [torch.tensor(s, dtype=torch.long).view(1, -1) for s in seqs]
    model = TrigramModel.from_corpus(batches, V, min_count=k, flush_pairs=flush,
                                     dense_max_entries=DENSE if dense else SPARSE)
    naive = NaiveTrigrams(seqs, V, k)
    check_against_naive(model, naive)
    text = data.draw(st.lists(st.integers(0, V - 1), min_size=1, max_size=9))
    padded = [V, V] + text
    want = [naive.surprisal(*padded[t:t + 3]) for t in range(len(text))]
    got = model.surprisal(torch.tensor(text), start=True).tolist()
    assert got == pytest.approx(want, rel=1e-5)


@STORAGES
def test_the_bigram_level_is_chapter_1s_model_bit_for_bit(dense_max):
    V, seqs = 12, corpus(1)
    tri = TrigramModel.from_corpus(seqs.split(4), V, dense_max_entries=dense_max)
    bi = BigramModel.from_corpus(seqs.split(4), V, dense_max_entries=dense_max)
    assert tri.bigram.storage == bi.storage
    ctx = torch.arange(V + 1)
    assert torch.equal(tri.bigram.next_token_probs(ctx), bi.next_token_probs(ctx))
    assert torch.equal(tri.bigram.surprisal(seqs, start=True), bi.surprisal(seqs, start=True))
    # and a trigram context that backs off gives exactly that bigram row
    unseen = (V - 1, V - 1)  # id V - 1 never occurs
    assert torch.equal(tri.next_token_probs(*unseen), bi.next_token_probs(V - 1))
    seen_b = int(seqs[0, 3])
    assert tri.level(V - 1, seen_b) == 2
    assert torch.equal(tri.next_token_probs(V - 1, seen_b), bi.next_token_probs(seen_b))
    # a given bigram model is used as is; one of another corpus is refused
    counts = count_ngrams([seqs], V, 3)
    assert TrigramModel.from_counts(counts, bigram=bi).bigram is bi
    other = BigramModel.from_corpus([seqs[:3]], V)
    with pytest.raises(ValueError, match="not of the corpus of these trigrams"):
        TrigramModel.from_counts(counts, bigram=other)


def test_pruning_renormalises_and_backs_off_by_hand():
    V = 6
    # (1, 2) -> 3 three times, -> 4 once; (2, 3) -> 1 twice, -> 0 once; (3, 5) -> 5 once
    seqs = [[1, 2, 3, 1, 2, 3, 1, 2, 4], [1, 2, 3, 0], [3, 5, 5]]
    model = TrigramModel.from_corpus([torch.tensor([s]) for s in seqs], V)  # k = 2
    assert MIN_COUNT == 2 and model.min_count == 2
    assert model.prob(1, 2, 3).item() == 1.0  # 3/4 before pruning, renormalised
    assert model.prob(1, 2, 4).item() == 0.0 and math.isinf(
        model.surprisal(torch.tensor([1, 2, 4]))[-1].item())
    assert model.level(3, 5).item() == 2  # every (3, 5, .) was pruned: unseen context
    naive = NaiveTrigrams(seqs, V)
    assert model.next_token_probs(3, 5).tolist() == pytest.approx(
        [naive.bi[5][c] / sum(naive.bi[5].values()) for c in range(V)])  # bigram row of 5
    # the start: (V, V) is every sequence's first token, (V, x0) the second
    assert model.prob(V, V, 1).item() == pytest.approx(1.0)  # 1 twice; 3 once, pruned
    assert model.level(V, 1).item() == 3 and model.prob(V, 1, 2).item() == 1.0
    assert model.level(V, 3).item() == 2  # (V, 3, 5) seen once: bigram row of 3
    # an unseen bigram context too: unigram
    assert model.level(0, 5).item() == 2 and model.level(4, 4).item() == 1
    unigram = Counter(t for s in seqs for t in s)
    assert model.next_token_probs(4, 4).tolist() == pytest.approx(
        [unigram[c] / sum(unigram.values()) for c in range(V)])
    unpruned = TrigramModel.from_corpus([torch.tensor([s]) for s in seqs], V, min_count=1)
    assert unpruned.prob(1, 2, 3).item() == pytest.approx(0.75)
    assert unpruned.level(3, 5).item() == 3


@STORAGES
def test_no_data_is_uniform(dense_max):
    V = 5
    for batches in ([], [torch.zeros(3, 0, dtype=torch.long)]):
        model = TrigramModel.from_corpus(batches, V, dense_max_entries=dense_max)
        assert model.n_contexts == 0 and model.tokens == 0
        assert (model.level(torch.arange(V + 1), 2) == 0).all()
        torch.testing.assert_close(model.next_token_probs(torch.arange(V + 1), V),
                                   torch.full((V + 1, V), 1 / V))
        logits = torch.randn(2, 4, V, dtype=torch.float64)
        want = (torch.logsumexp(logits, -1) - logits.mean(-1)).mean()
        assert model.cross_entropy(logits.float(), torch.zeros(2, 4, dtype=torch.long)).item() \
            == pytest.approx(want.item(), rel=1e-5)


def test_streamed_equals_one_batch_and_large_vocabularies():
    V = 70_000  # (V + 1)^2 V ~ 3.4e14 keys: int64, sparse
    seqs = corpus(3, 16, 20, 300) * 233  # ids up to ~70k
    seqs[:, 4] = V - 1
    whole = TrigramModel.from_corpus([seqs], V, min_count=1)
    for size, flush in [(1, 7), (5, 100)]:
        streamed = TrigramModel.from_corpus(iter(seqs.split(size)), V, min_count=1,
                                            flush_pairs=flush)
        assert kept_counts(streamed) == kept_counts(whole)
    naive = NaiveTrigrams(seqs.tolist(), V)
    assert kept_counts(whole) == {(a, b, c): n for (a, b), r in naive.tri.items()
                                  for c, n in r.items()}
    s = seqs[:3]
    want = [[naive.surprisal(*([V, V] + row)[t:t + 3]) for t in range(len(row))]
            for row in s.tolist()]
    got = whole.surprisal(s, start=True)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float32))


def test_top_next():
    V, seqs = 12, corpus(2)
    model = TrigramModel.from_corpus([seqs], V, min_count=1)
    naive = NaiveTrigrams(seqs.tolist(), V)
    for a, b in [(0, 1), (V, V), (V, 0), (3, 3)]:
        row = naive.row(a, b)
        order = sorted(range(V), key=lambda c: (-row[c], c))[:5]
        probs, ids = model.top_next(a, b, 5)
        assert ids.tolist() == order and probs.tolist() == pytest.approx([row[c] for c in order])


# --------------------------------------------------------------------- cross-entropy
def dense_reference_ce(naive, logits, ids):
    """Dense (batch, seq, V') float64 targets from naive rows + soft-label F.cross_entropy."""
    B, S, W = logits.shape
    target = torch.zeros(B, S, W, dtype=torch.float64)
    for i, row in enumerate(ids.tolist()):
        prev = naive.V
        for t, cur in enumerate(row):
            target[i, t, :naive.V] = torch.tensor(naive.row(prev, cur), dtype=torch.float64)
            prev = cur
    # padding columns (beyond V) are cut off before the softmax, as the paper's code does
    target, logits = target[..., :naive.V], logits[..., :naive.V]
    return F.cross_entropy(logits.reshape(-1, naive.V), target.reshape(-1, naive.V))


@pytest.mark.parametrize("share", [None, 2.0, 0.0], ids=["default", "nocache", "allcached"])
@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("chunk", [2**22, 50], ids=["onechunk", "tinychunks"])
def test_cross_entropy_value_and_grad(share, pad, chunk, monkeypatch):
    # which rows are also cached dense (a speed trade-off) must not change any answer
    if share is not None:
        monkeypatch.setattr(RowStore, "dense_row_share", share)
    V, seqs = 12, corpus(4)
    model = TrigramModel.from_corpus([seqs], V)
    naive = NaiveTrigrams(seqs.tolist(), V, MIN_COUNT)
    ids = corpus(5, 3, 11, V, zipf=False)
    ids[0, :3] = V - 1  # unseen contexts: bigram and unigram rows
    prev2 = torch.cat([torch.full((3, 1), V), ids[:, :-1]], 1)
    assert set(model.level(prev2, ids).reshape(-1).tolist()) == {1, 2, 3}
    if share is None:  # rows copied from the dense cache and rows scattered, both
        scattered = model._store._light_len[model._position_rows(ids)] > 0
        assert scattered.any() and not scattered.all()
    logits = torch.randn(3, 11, V + pad, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64)
    ours = logits.float().requires_grad_()
    loss = model.cross_entropy(ours, ids, chunk_elements=chunk)
    loss.backward()
    ref_in = logits.clone().requires_grad_()
    ref = dense_reference_ce(naive, ref_in, ids)
    ref.backward()
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(ours.grad, ref_in.grad.float(), rtol=1e-4, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(seqs=sequences, V=st.integers(1, 6), k=st.integers(1, 3), pad=st.integers(0, 2),
       seed=st.integers(0, 10**6), data=st.data())
def test_hypothesis_cross_entropy_is_the_dense_naive_one(seqs, V, k, pad, seed, data):
    seqs = [[t % V for t in s] for s in seqs]
    model = TrigramModel.from_corpus([torch.tensor(s, dtype=torch.long).view(1, -1)
                                      for s in seqs], V, min_count=k)
    naive = NaiveTrigrams(seqs, V, k)
    B, S = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V, (B, S), generator=g)
    logits = torch.randn(B, S, V + pad, generator=g, dtype=torch.float64)
    ours = logits.float().requires_grad_()
    loss = model.cross_entropy(ours, ids, chunk_elements=data.draw(st.sampled_from([1, 7, 2**20])))
    loss.backward()
    ref_in = logits.clone().requires_grad_()
    ref = dense_reference_ce(naive, ref_in, ids)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5, abs=1e-6)
    torch.testing.assert_close(ours.grad, ref_in.grad.float(), rtol=1e-4, atol=1e-6)


def test_cross_entropy_low_precision():
    V, seqs = 12, corpus(6)
    model = TrigramModel.from_corpus([seqs], V)
    ids = corpus(7, 2, 9, V, zipf=False)
    x = torch.randn(2, 9, V).bfloat16().requires_grad_()
    model.cross_entropy(x, ids).backward()
    assert x.grad.dtype == torch.bfloat16


def test_trigram_target_trains_a_mask():
    V, S = 16, 12
    g = torch.Generator().manual_seed(0)
    data = torch.randint(V, (32, S), generator=g)
    data[:, 2::3] = (data[:, 0::3] + data[:, 1::3]) % V  # a trigram rule
    trigram = TrigramModel.from_corpus([data], V, min_count=1)
    torch.manual_seed(0)
    model = make_model("gpt_neox", TinyWorld(n_layer=1, d_model=16, n_head=2, d_mlp=32),
                       V, S).eval()
    target = TrigramTarget(trigram)
    x = data[:4]
    with torch.no_grad():
        logits = model(x).logits
    assert target(logits, x).item() == trigram.cross_entropy(logits, x).item()
    cfg = SparsifyConfig(lam=0.0, lr=0.05, temp_growth=1.05, max_steps=3, batch_size=4,
                         save_every=5, log_every=1)
    r = sparsify(model, data, target, cfg, progress=False)
    assert r.steps == 3 and len(r.ce) == 3 and all(math.isfinite(c) for c in r.ce)


# ---------------------------------------------------------------------------- files
def test_save_load_round_trip_and_damage(tmp_path):
    V, seqs = 12, corpus(8)
    model = TrigramModel.from_corpus([seqs], V, min_count=2)
    path = tmp_path / "t.safetensors"
    model.save(path)
    back = TrigramModel.load(path, model.bigram)
    assert (back.min_count, back.tokens, back.nnz) == (2, model.tokens, model.nnz)
    a, b = torch.meshgrid(torch.arange(V + 1), torch.arange(V + 1), indexing="ij")
    assert torch.equal(back.next_token_probs(a, b), model.next_token_probs(a, b))
    other = BigramModel.from_corpus([seqs[:5]], V)
    with pytest.raises(TrigramFileError, match="another corpus"):
        TrigramModel.load(path, other)
    bigram_path = tmp_path / "b.safetensors"
    model.bigram.save(bigram_path)
    with pytest.raises(TrigramFileError, match="not a valid TrigramModel"):
        TrigramModel.load(bigram_path, model.bigram)
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(TrigramFileError, match="delete it"):
        TrigramModel.load(path, model.bigram)


# ------------------------------------------------------------------------ bad input
def one_line(excinfo, *words):
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg


def test_bad_input_gets_one_line_naming_the_fix():
    V, seqs = 12, corpus(9)
    model = TrigramModel.from_corpus([seqs], V)
    for k in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError) as e:
            TrigramModel.from_corpus([seqs], V, min_count=k)
        one_line(e, "min_count", "1 keeps them all")
    with pytest.raises(ValueError) as e:
        TrigramModel.from_counts(count_ngrams([seqs], V, 3), 0)
    one_line(e, "min_count")
    with pytest.raises(ValueError) as e:
        TrigramModel.from_counts(count_ngrams([seqs], V, 2))
    one_line(e, "trigram counts", "count_ngrams(batches, vocab_size, 3)")
    with pytest.raises(ValueError) as e:
        TrigramModel.from_corpus([torch.tensor([[0, V]])], V)
    one_line(e, f"[0, {V})")
    with pytest.raises(ValueError) as e:
        model.surprisal(torch.tensor([[1, V]]))
    one_line(e, "outside", "tokenizer")
    with pytest.raises(TypeError) as e:
        model.surprisal(torch.tensor([[1.0, 2.0]]))
    one_line(e, "integer token ids")
    with pytest.raises(ValueError) as e:
        model.surprisal(torch.zeros(2, 3, 4, dtype=torch.long))
    one_line(e, "flatten")
    with pytest.raises(ValueError) as e:
        model.prob(V + 1, 0, 0)  # contexts go up to the start id V
    one_line(e, f"[0, {V + 1})")
    with pytest.raises(ValueError) as e:
        model.prob(0, 0, V)  # next tokens stop at V - 1
    one_line(e, f"[0, {V})")
    ids = torch.zeros(2, 5, dtype=torch.long)
    with pytest.raises(ValueError) as e:
        model.cross_entropy(torch.randn(2, 4, V), ids)
    one_line(e, "must be input_ids", "logits for these input_ids")
    with pytest.raises(ValueError) as e:
        model.cross_entropy(torch.randn(2, 5, V - 1), ids)
    one_line(e, "fewer than vocab_size")
    with pytest.raises(ValueError) as e:
        model.cross_entropy(torch.randn(5, V), ids[0])
    one_line(e, "batch axis")
    with pytest.raises(ValueError) as e:
        model.cross_entropy(torch.randn(2, 0, V), ids[:, :0])
    one_line(e, "at least one token")
    with pytest.raises(ValueError) as e:
        model.top_next(0, 0, 0)
    one_line(e, "k")


def test_device_agnostic_source():
    src = inspect.getsource(trigrams_module)
    assert ".cuda(" not in src and '"cuda"' not in src and "numpy" not in src


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    V, seqs = 300, corpus(10, 50, 40, 300)
    cpu = TrigramModel.from_corpus(seqs.split(7), V)
    gpu = TrigramModel.from_corpus(seqs.cuda().split(7), V, flush_pairs=500)
    assert gpu.device.type == "cuda" and kept_counts(gpu) == kept_counts(cpu)
    text = corpus(11, 4, 30, 300, zipf=False)
    assert torch.equal(gpu.surprisal(text.cuda(), start=True).cpu(),
                       cpu.surprisal(text, start=True))
    logits = torch.randn(4, 30, V)
    torch.testing.assert_close(gpu.cross_entropy(logits.cuda(), text.cuda()).cpu(),
                               cpu.cross_entropy(logits, text))
    moved = TrigramModel.from_corpus([seqs], V).to("cuda")
    assert torch.equal(moved.surprisal(text.cuda()).cpu(), cpu.surprisal(text))
