"""BigramModel against a naive dict-of-Counters bigram model (per-token loops)."""

import math
from collections import Counter, defaultdict

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st

from bigramlab.methods.bigrams import BigramFileError, BigramModel

DENSE, SPARSE = 10**12, 0  # dense_max_entries that force either storage
STORAGES = pytest.mark.parametrize("dense_max", [DENSE, SPARSE],
                                   ids=["dense", "sparse"])


class NaiveBigrams:
    """The method of section 1, written as plainly as possible."""

    def __init__(self, sequences, vocab_size):
        self.V = vocab_size
        self.counts = defaultdict(Counter)
        for seq in sequences:
            prev = vocab_size  # start placeholder
            for tok in seq:
                self.counts[prev][tok] += 1
                prev = tok
        self.unigram = Counter()
        for row in self.counts.values():
            self.unigram.update(row)

    def prob(self, a, b):
        row = self.counts.get(a)
        if not row:  # unseen context -> unigram
            row = self.unigram
        if not row:  # no data at all -> uniform
            return 1.0 / self.V
        return row[b] / sum(row.values())

    def row(self, a):
        return [self.prob(a, b) for b in range(self.V)]

    def surprisal(self, a, b):
        p = self.prob(a, b)
        return math.inf if p == 0 else -math.log2(p)

    def entropy(self, a):
        return -sum(p * math.log2(p) for p in self.row(a) if p > 0)


def cached(model):
    """Rows of a sparse model also kept as dense rows (see dense_row_share)."""
    return model._dense_slot < model._dense_probs.shape[0] - 1


def random_corpus(gen, n_seq, seq_len, V):
    # Zipf-ish ids so that rows differ a lot in how full they are.
    weights = 1.0 / torch.arange(1, V + 1, dtype=torch.float64)
    return torch.multinomial(weights, n_seq * seq_len, replacement=True,
                             generator=gen).view(n_seq, seq_len)


def check_against_naive(model, naive):
    V = naive.V
    expected = torch.tensor([naive.row(a) for a in range(V + 1)])
    got = model.next_token_probs(torch.arange(V + 1))
    torch.testing.assert_close(got, expected.float(), rtol=1e-6, atol=1e-7)
    a, b = torch.meshgrid(torch.arange(V + 1), torch.arange(V), indexing="ij")
    torch.testing.assert_close(model.prob(a, b), expected.float(),
                               rtol=1e-6, atol=1e-7)
    ent = torch.tensor([naive.entropy(a) for a in range(V + 1)])
    torch.testing.assert_close(model.entropy(), ent.float(),
                               rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------- counting
@STORAGES
def test_random_corpus_matches_naive(dense_max):
    gen = torch.Generator().manual_seed(0)
    V = 40
    corpus = random_corpus(gen, 30, 17, V)
    model = BigramModel.from_corpus(corpus.split(7), V,
                                    dense_max_entries=dense_max)
    assert model.storage == ("dense" if dense_max == DENSE else "sparse")
    if model.storage == "sparse":  # rows cached dense and rows that are not
        assert cached(model).any() and (model._light_len > 0).any()
    naive = NaiveBigrams(corpus.tolist(), V)
    check_against_naive(model, naive)
    assert model.total_pairs == corpus.numel()
    assert model.nnz == sum(len(r) for r in naive.counts.values())
    # Surprisal of held-out text, including pairs never seen (inf).
    text = random_corpus(gen, 5, 23, V)
    want = torch.tensor([[naive.surprisal(a, b) for a, b in zip(s, s[1:])]
                         for s in text.tolist()])
    got = model.surprisal(text)
    assert got.shape == (5, 22)
    assert torch.equal(torch.isinf(got), torch.isinf(want))
    assert torch.isinf(want).any()
    fin = ~torch.isinf(want)
    torch.testing.assert_close(got[fin], want[fin].float())


sequences = st.lists(st.lists(st.integers(0, 5), max_size=8), max_size=6)


@settings(max_examples=60, deadline=None)
@given(seqs=sequences, V=st.integers(1, 6), data=st.data())
def test_hypothesis_dense_and_sparse_match_naive(seqs, V, data):
    seqs = [[t % V for t in s] for s in seqs]
    naive = NaiveBigrams(seqs, V)
    # One sequence per batch: lengths differ, and empty ones must be fine.
    batches = [torch.tensor(s, dtype=torch.long).view(1, -1) for s in seqs]
    dense = BigramModel.from_corpus(batches, V, dense_max_entries=DENSE)
    sparse = BigramModel.from_corpus(batches, V, dense_max_entries=SPARSE,
                                     flush_pairs=3)
    for model in (dense, sparse):
        check_against_naive(model, naive)
    text = data.draw(st.lists(st.integers(0, V - 1), min_size=1, max_size=9))
    want = [naive.surprisal(V, text[0])] + \
        [naive.surprisal(a, b) for a, b in zip(text, text[1:])]
    for model in (dense, sparse):
        got = model.surprisal(torch.tensor(text), start=True).tolist()
        assert got == pytest.approx(want, rel=1e-5)
        assert model.surprisal(torch.tensor(text)).tolist() == \
            pytest.approx(want[1:], rel=1e-5)


@STORAGES
def test_start_backoff_unseen_tokens_and_pairs(dense_max):
    V = 6
    model = BigramModel.from_corpus([torch.tensor([[1, 2, 1, 2]]),
                                     torch.tensor([[2, 4]])], V,
                                    dense_max_entries=dense_max)
    # Start context: first tokens 1 and 2.
    assert model.prob(V, 1).item() == pytest.approx(0.5)
    assert model.prob(V, 2).item() == pytest.approx(0.5)
    # Seen context 1 -> always 2; unseen pair (1, 4) -> p 0, inf surprisal.
    assert model.prob(1, 2).item() == 1.0
    assert model.prob(1, 4).item() == 0.0
    assert model.surprisal(torch.tensor([1, 4])).item() == math.inf
    # Context 3 never seen -> unigram (every token occurrence): 1:2 2:3 4:1.
    unigram = torch.tensor([0, 2, 3, 0, 1, 0]) / 6
    torch.testing.assert_close(model.next_token_probs(3), unigram.float())
    torch.testing.assert_close(model.next_token_probs(4), unigram.float())
    # Token 0 never occurs: probability 0 even after an unseen context.
    assert model.prob(3, 0).item() == 0.0
    assert model.entropy()[3].item() == pytest.approx(
        -sum(p * math.log2(p) for p in unigram.tolist() if p))
    assert model.entropy()[1].item() == 0.0


@STORAGES
def test_no_data_is_uniform(dense_max):
    V = 7
    model = BigramModel.from_corpus([torch.zeros(2, 0, dtype=torch.long)], V,
                                    dense_max_entries=dense_max)
    torch.testing.assert_close(model.next_token_probs(torch.arange(V + 1)),
                               torch.full((V + 1, V), 1 / V))
    torch.testing.assert_close(model.entropy(),
                               torch.full((V + 1,), math.log2(V)))
    empty = BigramModel.from_corpus([], V, dense_max_entries=dense_max)
    assert empty.prob(3, 5).item() == pytest.approx(1 / V)


@STORAGES
def test_top_next(dense_max):
    gen = torch.Generator().manual_seed(1)
    V = 30
    corpus = random_corpus(gen, 20, 15, V)
    model = BigramModel.from_corpus([corpus], V, dense_max_entries=dense_max)
    naive = NaiveBigrams(corpus.tolist(), V)
    for tok in [0, 1, 5, 29, V]:
        row = naive.row(tok)
        order = sorted(range(V), key=lambda b: (-row[b], b))[:8]
        probs, ids = model.top_next(tok, 8)
        assert ids.tolist() == order
        assert probs.tolist() == pytest.approx([row[b] for b in order])
    probs, ids = model.top_next(torch.tensor([0, V]), 3)
    assert probs.shape == ids.shape == (2, 3)


def test_streamed_equals_one_batch():
    gen = torch.Generator().manual_seed(2)
    V = 5000  # sparse by default
    corpus = random_corpus(gen, 64, 50, V)
    whole = BigramModel.from_corpus([corpus], V)
    assert whole.storage == "sparse"
    for size, flush in [(1, 10), (7, 100), (64, 10**9)]:
        streamed = BigramModel.from_corpus(iter(corpus.split(size)), V,
                                           flush_pairs=flush)
        assert torch.equal(streamed._keys, whole._keys)
        assert torch.equal(streamed._counts, whole._counts)
    small = BigramModel.from_corpus([corpus % 50], 50)
    assert small.storage == "dense"
    streamed = BigramModel.from_corpus((corpus % 50).split(3), 50,
                                       flush_pairs=20)
    assert torch.equal(small._table, streamed._table)


def test_vocab_beyond_int32_keys():
    # (V + 1) * V > 2**32: keys are buffered and sorted as int64.
    gen = torch.Generator().manual_seed(7)
    V = 70_000
    corpus = random_corpus(gen, 12, 20, V)
    corpus[:, 5] = V - 1  # largest id, so the largest keys occur
    naive = NaiveBigrams(corpus.tolist(), V)
    model = BigramModel.from_corpus(corpus.split(5), V, flush_pairs=50)
    pairs = [(a, b) for a in naive.counts for b in naive.counts[a]]
    a, b = torch.tensor(pairs).T
    want = torch.tensor([naive.prob(x, y) for x, y in pairs])
    torch.testing.assert_close(model.prob(a, b), want.float())
    assert model.nnz == len(pairs)
    rows = model.next_token_probs(torch.tensor([V - 1, V, 5]))
    for row, ctx in zip(rows, [V - 1, V, 5]):
        nz = row.nonzero().squeeze(1).tolist()
        assert nz == sorted(b for b in range(V) if naive.prob(ctx, b) > 0)


def test_dense_and_sparse_agree_everywhere():
    gen = torch.Generator().manual_seed(3)
    V = 60
    corpus = random_corpus(gen, 40, 30, V) % 55  # ids 55.. never occur
    d = BigramModel.from_corpus([corpus], V, dense_max_entries=DENSE)
    s = BigramModel.from_corpus([corpus], V, dense_max_entries=SPARSE)
    assert (d._row_total[: V + 1] == 0).any()
    ctx = torch.arange(V + 1)
    assert torch.equal(d.next_token_probs(ctx), s.next_token_probs(ctx))
    torch.testing.assert_close(d.entropy(), s.entropy())
    text = random_corpus(gen, 4, 40, V)
    assert torch.equal(d.surprisal(text, start=True),
                       s.surprisal(text, start=True))


def test_bad_inputs():
    with pytest.raises(ValueError):
        BigramModel.from_corpus([torch.tensor([[0, 5]])], 5)
    with pytest.raises(ValueError):
        BigramModel.from_corpus([torch.tensor([[0.0, 1.0]])], 5)
    model = BigramModel.from_corpus([torch.tensor([[0, 1]])], 5)
    with pytest.raises(ValueError):
        model.prob(6, 0)  # contexts go up to the start id 5
    with pytest.raises(ValueError):
        model.prob(0, 5)  # next tokens stop at 4


# ----------------------------------------------------------- save / load
@STORAGES
def test_save_load_round_trip(tmp_path, dense_max):
    gen = torch.Generator().manual_seed(4)
    V = 25
    corpus = random_corpus(gen, 10, 12, V)
    model = BigramModel.from_corpus([corpus], V, dense_max_entries=dense_max)
    path = tmp_path / "bigrams.safetensors"
    model.save(path)
    loaded = BigramModel.load(path)
    assert loaded.storage == model.storage
    assert loaded.vocab_size == V
    ctx = torch.arange(V + 1)
    assert torch.equal(loaded.next_token_probs(ctx), model.next_token_probs(ctx))
    assert torch.equal(loaded.entropy(), model.entropy())
    assert loaded.to("cpu") is loaded


@STORAGES
def test_corrupt_file_is_detected(tmp_path, dense_max):
    V = 25
    model = BigramModel.from_corpus([torch.arange(V).view(1, -1)], V,
                                    dense_max_entries=dense_max)
    path = tmp_path / "m.safetensors"
    model.save(path)
    raw = path.read_bytes()
    for damaged in [raw[: len(raw) // 2],                     # truncated
                    raw[:-3] + bytes([raw[-3] ^ 1]) + raw[-2:],  # bit flip
                    b"",
                    b"not a safetensors file at all"]:
        path.write_bytes(damaged)
        with pytest.raises(BigramFileError, match="delete it"):
            BigramModel.load(path)
    # A valid safetensors file that is not a BigramModel.
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(3)}, str(path))
    with pytest.raises(BigramFileError):
        BigramModel.load(path)


# -------------------------------------------------------- cross-entropy
def dense_reference_ce(naive, logits, input_ids):
    """Dense (batch, seq, V) float64 targets + soft-label F.cross_entropy."""
    B, S, W = logits.shape
    target = torch.zeros(B, S, W, dtype=torch.float64)
    for i in range(B):
        for t in range(S):
            target[i, t, : naive.V] = torch.tensor(
                naive.row(input_ids[i, t].item()), dtype=torch.float64)
    # padding columns (beyond V) are cut off before the softmax, as the paper's code does
    target, logits = target[..., :naive.V], logits[..., :naive.V]
    return F.cross_entropy(logits.reshape(-1, naive.V), target.reshape(-1, naive.V))


@pytest.mark.parametrize("storage", ["dense", "sparse", "sparse-nocache",
                                     "sparse-allcached"])
@pytest.mark.parametrize("pad", [0, 3])
@pytest.mark.parametrize("chunk", [2**22, 100], ids=["onechunk", "tinychunks"])
def test_cross_entropy_value_and_grad(storage, pad, chunk, monkeypatch):
    # dense_row_share decides which sparse rows are also cached dense; it
    # must not change any answer.
    share = {"sparse-nocache": 2.0, "sparse-allcached": 0.0}.get(storage)
    if share is not None:
        monkeypatch.setattr(BigramModel, "dense_row_share", share)
    dense_max = DENSE if storage == "dense" else SPARSE
    gen = torch.Generator().manual_seed(5)
    V = 40
    corpus = random_corpus(gen, 30, 20, V) % (V - 2)
    model = BigramModel.from_corpus([corpus], V, dense_max_entries=dense_max)
    naive = NaiveBigrams(corpus.tolist(), V)
    ids = random_corpus(gen, 3, 11, V)
    ids[0, :2] = V - 1  # an unseen context -> backoff row
    logits = torch.randn(3, 11, V + pad, generator=gen, dtype=torch.float64)

    ours_in = logits.float().requires_grad_()
    loss = model.cross_entropy(ours_in, ids, chunk_elements=chunk)
    loss.backward()

    if storage == "sparse":  # both kinds of rows occur in this batch
        rows = model.context_rows(ids.reshape(-1))
        assert cached(model)[rows].any() and not cached(model)[rows].all()

    ref_in = logits.clone().requires_grad_()
    ref = dense_reference_ce(naive, ref_in, ids)
    ref.backward()
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(ours_in.grad, ref_in.grad.float(),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("storage", ["dense", "sparse"])
@pytest.mark.parametrize("chunk", [2**22, 100], ids=["onechunk", "tinychunks"])
def test_cross_entropy_in_float64_stays_float64(storage, chunk):
    """The tiny world computes in float64: loss and gradient must not pass through
    float32 (which would round to 1e-7 and differ across CPU kernels)."""
    gen = torch.Generator().manual_seed(7)
    V = 40
    corpus = random_corpus(gen, 30, 20, V) % (V - 2)
    model = BigramModel.from_corpus([corpus], V, dense_max_entries=DENSE if storage == "dense"
                                    else SPARSE)
    naive = NaiveBigrams(corpus.tolist(), V)
    ids = random_corpus(gen, 3, 11, V)
    logits = torch.randn(3, 11, V + 2, generator=gen, dtype=torch.float64)
    ours_in = logits.clone().requires_grad_()
    loss = model.cross_entropy(ours_in, ids, chunk_elements=chunk)
    loss.backward()
    ref_in = logits.clone().requires_grad_()
    # the model stores its probabilities in float32 (count ratios, rounded once, the same
    # on every CPU), whose rows sum to 1 only within 1e-7: the reference takes those same
    # targets and the docstring's formula, lse - sum_b P(b) x[b], in float64 with autograd
    # (the two padding columns are cut off first, as the paper's code cuts its logits)
    W = logits.shape[-1]
    target = torch.zeros(3 * 11, V, dtype=torch.float64)
    for k, a in enumerate(ids.reshape(-1).tolist()):
        target[k] = torch.tensor(naive.row(a), dtype=torch.float32).double()
    flat = ref_in.reshape(-1, W)[:, :V]
    ref = (torch.logsumexp(flat, -1) - (target * flat).sum(-1)).mean()
    ref.backward()
    assert loss.dtype == torch.float64 and ours_in.grad.dtype == torch.float64
    assert loss.item() == pytest.approx(ref.item(), rel=1e-13)
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-12, atol=1e-15)


def test_cross_entropy_without_data_and_low_precision():
    V = 9
    model = BigramModel.from_corpus([], V, dense_max_entries=SPARSE)
    logits = torch.randn(2, 5, V, dtype=torch.float64)
    ids = torch.randint(0, V, (2, 5))
    want = (torch.logsumexp(logits, -1) - logits.mean(-1)).mean()
    assert model.cross_entropy(logits.float(), ids).item() == \
        pytest.approx(want.item(), rel=1e-5)
    # bf16 logits: computed in float32, gradient comes back as bf16.
    x = logits.bfloat16().requires_grad_()
    loss = model.cross_entropy(x, ids)
    loss.backward()
    assert x.grad.dtype == torch.bfloat16
    ref = x.detach().double().requires_grad_()
    F.cross_entropy(ref.view(-1, V), torch.full((10, V), 1 / V,
                    dtype=torch.float64)).backward()
    torch.testing.assert_close(x.grad.double(), ref.grad, rtol=2e-2, atol=1e-3)
    with pytest.raises(ValueError):
        model.cross_entropy(torch.randn(2, 5, V - 1), ids)


def test_cross_entropy_no_grad_and_second_backward_scale():
    gen = torch.Generator().manual_seed(6)
    V = 30
    model = BigramModel.from_corpus([random_corpus(gen, 10, 10, V)], V,
                                    dense_max_entries=SPARSE)
    ids = random_corpus(gen, 2, 6, V)
    x = torch.randn(2, 6, V, generator=gen)
    with torch.no_grad():
        plain = model.cross_entropy(x, ids)
    x.requires_grad_()
    (3 * model.cross_entropy(x, ids)).backward()
    y = x.detach().clone().requires_grad_()
    target = model.next_token_probs(ids.reshape(-1)).view(2, 6, V)
    ref = F.cross_entropy(y.view(-1, V), target.view(-1, V))
    (3 * ref).backward()
    assert plain.item() == pytest.approx(ref.item(), rel=1e-5)
    torch.testing.assert_close(x.grad, y.grad, rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------ CUDA
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@STORAGES
def test_cuda_matches_cpu(dense_max, tmp_path):
    gen = torch.Generator().manual_seed(8)
    V = 300
    corpus = random_corpus(gen, 50, 40, V) % (V - 5)
    cpu = BigramModel.from_corpus(corpus.split(7), V,
                                  dense_max_entries=dense_max)
    gpu = BigramModel.from_corpus(corpus.cuda().split(7), V,  # device: batches'
                                  dense_max_entries=dense_max, flush_pairs=500)
    assert gpu.device.type == "cuda" and gpu.storage == cpu.storage
    ctx = torch.arange(V + 1)
    torch.testing.assert_close(gpu.next_token_probs(ctx).cpu(),
                               cpu.next_token_probs(ctx))
    torch.testing.assert_close(gpu.entropy().cpu(), cpu.entropy())
    text = random_corpus(gen, 4, 30, V)
    assert torch.equal(gpu.surprisal(text.cuda(), start=True).cpu(),
                       cpu.surprisal(text, start=True))
    probs, ids = gpu.top_next(0, 5)
    assert ids.device.type == "cuda"
    assert torch.equal(ids.cpu(), cpu.top_next(0, 5)[1])
    moved = BigramModel.from_corpus([corpus], V,
                                    dense_max_entries=dense_max).to("cuda")
    assert torch.equal(moved.prob(ctx.cuda(), 3).cpu(), cpu.prob(ctx, 3))
    gpu.save(tmp_path / "g.safetensors")
    back = BigramModel.load(tmp_path / "g.safetensors", device="cuda")
    assert torch.equal(back.next_token_probs(ctx).cpu(),
                       cpu.next_token_probs(ctx))
    for dtype, tol in [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)]:
        logits = torch.randn(3, 17, V + 4, generator=gen).to(dtype)
        a = logits.clone().requires_grad_()
        b = logits.cuda().requires_grad_()
        la, lb = cpu.cross_entropy(a, text[:3, :17]), \
            gpu.cross_entropy(b, text[:3, :17].cuda())
        la.backward()
        lb.backward()
        assert lb.item() == pytest.approx(la.item(), rel=tol)
        assert b.grad.dtype == dtype
        torch.testing.assert_close(b.grad.cpu().float(), a.grad.float(),
                                   rtol=tol, atol=1e-5)
