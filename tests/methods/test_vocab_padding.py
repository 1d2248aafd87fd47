"""Pythia's padding columns: 50,304 embedding rows for a 50,277-token tokenizer.

The paper's code cuts the logits to the tokenizer's vocabulary before any softmax
(``compute_correlation_metrics``: ``logits[:, :, :vocab_size]``). Here, at the real
shapes and on a few sequences: the bigram and trigram cross-entropies of padded
logits equal a naive dense reference over the first V columns, whatever the
padding columns hold; ``load_model`` drops the padding rows of a real profile's
(un)embedding, so every other softmax (surprisals, lenses, generation, the
full-model target) sees V columns too (``tests/real/test_real_path.py``, and the
stand-in's Pythia in ``tests/real/test_standin.py``)."""

import torch

from bigramlab.methods.bigrams import BigramModel
from bigramlab.methods.trigrams import TrigramModel

V, V_PADDED = 50277, 50304  # Pythia's tokenizer and embedding rows


def padded_batch(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 300, (2, 24), generator=g)  # a few hundred distinct tokens
    ids[0, :3] = torch.tensor([V - 1, V - 2, V - 1])   # and the last ids of the vocabulary
    logits = torch.randn(2, 24, V_PADDED, generator=g)
    logits[..., V:] = 20.0  # padding columns that would take most of the softmax's mass
    return ids, logits


def naive_ce(dense_rows: torch.Tensor, logits: torch.Tensor) -> float:
    """Mean over positions of -sum_b P(b) log softmax(logits[:V])(b), in float64."""
    logp = torch.log_softmax(logits[..., :V].double(), dim=-1)
    return float(-(dense_rows.double() * logp).sum(-1).mean())


def test_bigram_cross_entropy_ignores_padding_columns():
    ids, logits = padded_batch()
    bigram = BigramModel.from_corpus([ids], V, device="cpu")
    rows = torch.stack([bigram.next_token_probs(t) for t in ids.reshape(-1)]).view(2, 24, V)
    want = naive_ce(rows, logits)
    x = logits.clone().requires_grad_()
    got = bigram.cross_entropy(x, ids)
    assert abs(float(got.detach()) - want) < 1e-4 * want
    got.backward()
    assert x.grad.shape == logits.shape and not x.grad[..., V:].any()  # no gradient there


def test_trigram_cross_entropy_ignores_padding_columns():
    ids, logits = padded_batch(1)
    trigram = TrigramModel.from_corpus([ids], V, device="cpu", min_count=1)
    start = trigram.bigram.start_id
    prev2 = torch.cat([torch.full_like(ids[:, :1], start), ids[:, :-1]], 1)
    rows = torch.stack([trigram.next_token_probs(a, b) for a, b in
                        zip(prev2.reshape(-1).tolist(), ids.reshape(-1).tolist())]).view(2, 24, V)
    want = naive_ce(rows, logits)
    got = float(trigram.cross_entropy(logits, ids))
    assert abs(got - want) < 1e-4 * want
