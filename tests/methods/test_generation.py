"""bigramlab.methods.generation against naive references: the tempered distribution
is softmax(logits / T), samples follow it, greedy is the argmax, an LM's text
equals the paper's loop (the whole sequence re-run at every step), and the
bigram model's samples go through the same loop."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods.bigrams import BigramModel, bigram_generate
from bigramlab.methods.generation import (lm_generate, sample_next, sample_tokens, tempered,
                                          top_token_share)
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model


def small_lm(arch="gpt_neox", vocab=30):
    torch.manual_seed(0)
    return make_model(arch, TinyWorld(n_layer=2, d_model=16, n_head=2, d_mlp=32), vocab,
                      64).eval()


logits_rows = st.lists(st.floats(-20, 20, allow_nan=False), min_size=2, max_size=12)


# ------------------------------------------------------------ the distribution
@settings(max_examples=100, deadline=None)
@given(logits_rows, st.floats(0.05, 5.0))
def test_tempered_probabilities_equal_softmax_of_scaled_logits(logits, T):
    """p^(1/T) renormalised, p = softmax(logits), is softmax(logits / T)."""
    x = torch.tensor(logits, dtype=torch.float64)
    got = tempered(torch.softmax(x, 0), T)
    want = np.exp(np.array(logits) / T - max(logits) / T)
    want /= want.sum()
    assert np.allclose(got.numpy(), want, rtol=1e-9, atol=1e-12)
    # unnormalised probabilities give the same distribution (only ratios matter)
    assert torch.allclose(tempered(3.0 * torch.softmax(x, 0), T), got, rtol=1e-12, atol=1e-15)


def test_tempered_survives_underflow_and_greedy_is_one_hot():
    p = torch.tensor([[1e-3, 2e-3, 5e-4]], dtype=torch.float64)
    got = tempered(p, 0.005)  # 2e-3 ** 200 underflows to 0
    assert torch.isfinite(got).all() and got[0, 1] == pytest.approx(1.0)
    assert tempered(torch.tensor([0.2, 0.4, 0.4]), 0).tolist() == [0.0, 1.0, 0.0]  # lowest id


@pytest.mark.parametrize("T", [0.3, 1.0, 2.0])
def test_samples_follow_softmax_of_scaled_logits(T):
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5, 3.0], dtype=torch.float64)
    n = 40_000
    probs = torch.softmax(logits, 0).expand(n, -1)
    got = sample_next(probs, T, torch.Generator().manual_seed(0))
    freq = np.bincount(got.numpy(), minlength=6) / n
    want = torch.softmax(logits / T, 0).numpy()
    assert np.abs(freq - want).max() < 4 * math.sqrt(0.25 / n)


def test_greedy_top_k_and_top_p():
    p = torch.tensor([[0.1, 0.3, 0.3, 0.2, 0.1]], dtype=torch.float64)
    assert sample_next(p, 0).tolist() == [1]  # ties: the lowest id
    g = torch.Generator().manual_seed(1)
    many = p.expand(20_000, -1)
    assert set(sample_next(many, 1.0, g, top_k=3).tolist()) == {1, 2, 3}
    # nucleus 0.55: 0.3 + 0.3 reach it, so ids 1 and 2 only
    assert set(sample_next(many, 1.0, g, top_p=0.55).tolist()) == {1, 2}
    assert set(sample_next(many, 1.0, g).tolist()) == {0, 1, 2, 3, 4}  # nothing cut by default


def test_sampling_is_seeded_and_checks_its_settings():
    p = torch.full((4, 10), 0.1, dtype=torch.float64)
    a = sample_next(p, 0.7, torch.Generator().manual_seed(3))
    assert torch.equal(a, sample_next(p, 0.7, torch.Generator().manual_seed(3)))
    step = lambda new: p  # noqa: E731
    for bad, match in [(dict(temperature=-1), "temperature = -1"),
                       (dict(temperature=float("inf")), "temperature = inf"),
                       (dict(top_k=0), "top_k = 0"), (dict(top_p=1.5), "top_p = 1.5")]:
        with pytest.raises(ValueError, match=match):
            sample_tokens(step, torch.zeros(4, 1, dtype=torch.long), 3, **bad)


# ------------------------------------------------------------------- an LM's text
def paper_generate(model, ids, max_seq_len, temperature, generator):
    """The paper's generate_text: the whole sequence at every step, softmax,
    probs ** (1 / T), multinomial (here with our generator, float64)."""
    ids = list(ids)
    while len(ids) < max_seq_len:
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids])).logits[0, -1]
        probs = torch.softmax(logits.double(), 0)
        if temperature > 0:
            ids.append(int(torch.multinomial(probs ** (1 / temperature), 1, generator=generator)))
        else:
            ids.append(int(torch.argmax(probs)))
    return ids


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
@pytest.mark.parametrize("T", [0.0, 0.3, 1.0])
def test_lm_text_equals_the_papers_loop(arch, T):
    model = small_lm(arch)
    prompt = torch.tensor([3, 7, 1])
    want = paper_generate(model, prompt.tolist(), 24, T, torch.Generator().manual_seed(5))
    for use_cache in (False, True):  # the cache gives the same distributions
        got = lm_generate(model, prompt, 24, temperature=T, use_cache=use_cache,
                          generator=torch.Generator().manual_seed(5))
        assert got.shape == (24,) and got[:3].tolist() == [3, 7, 1]
        assert got.tolist() == want


def test_lm_first_token_follows_softmax_of_scaled_logits():
    model = small_lm()
    prompt = torch.tensor([[4, 2]])
    with torch.no_grad():
        logits = model(input_ids=prompt).logits[0, -1].double()
    n, T = 20_000, 0.5
    out = lm_generate(model, prompt.expand(n, -1), 3, temperature=T,
                      generator=torch.Generator().manual_seed(0))
    freq = np.bincount(out[:, 2].numpy(), minlength=logits.numel()) / n
    assert np.abs(freq - torch.softmax(logits / T, 0).numpy()).max() < 4 * math.sqrt(0.25 / n)


def test_masked_lm_generates_under_its_mask_and_comes_back():
    model = small_lm()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    prompt = torch.tensor([1, 2])
    full = lm_generate(model, prompt, 20, temperature=0)
    with Subnetwork.empty(model).apply(model):
        empty = lm_generate(model, prompt, 20, temperature=0)
    # with every block matrix zeroed the output depends on the current token only
    with torch.no_grad(), Subnetwork.empty(model).apply(model):
        table = model(input_ids=torch.arange(30)[:, None]).logits[:, 0].argmax(1)
    for cur, nxt in zip(empty[1:-1].tolist(), empty[2:].tolist()):
        assert table[cur] == nxt
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert torch.equal(lm_generate(model, prompt, 20, temperature=0), full)


def test_lm_generate_checks_its_input():
    model = small_lm()
    with pytest.raises(ValueError, match="prompt is empty"):
        lm_generate(model, torch.zeros(0, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="length = 2 is not allowed"):
        lm_generate(model, torch.tensor([1, 2, 3]), 2)
    with pytest.raises(ValueError, match="outside the model's vocabulary"):
        lm_generate(model, torch.tensor([99]), 5)
    with pytest.raises(TypeError, match="integer token ids"):
        lm_generate(model, torch.tensor([1.0]), 5)
    out = lm_generate(model, torch.tensor([1]), 6, n=3, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 6) and out.dtype == torch.int64


# ----------------------------------------------------- the bigram model, same loop
def naive_bigram_generate(bigram, prompt, n_new, T, generator):
    """Chapter 1's loop before the shared sampler, kept here as the reference."""
    ids = prompt.clone()
    last = ids[:, -1]
    out = [ids]
    for _ in range(n_new):
        p = bigram.next_token_probs(last).to(torch.float64)
        if T == 0:
            nxt = torch.sort(p, dim=1, descending=True, stable=True).indices[:, 0]
        else:
            if T != 1:
                p = p.pow(1.0 / T)
            nxt = torch.multinomial(p, 1, generator=generator).squeeze(1)
        last = nxt
        out.append(nxt[:, None])
    return torch.cat(out, 1)


@pytest.mark.parametrize("T", [0.0, 0.3, 1.0, 2.0])
def test_bigram_samples_are_bit_identical_to_the_old_loop(T):
    g = torch.Generator().manual_seed(0)
    seqs = torch.randint(0, 25, (40, 30), generator=g)
    bigram = BigramModel.from_corpus([seqs], 25)
    prompt = torch.tensor([[3, 4], [5, 6], [7, 8]])
    want = naive_bigram_generate(bigram, prompt, 40, T, torch.Generator().manual_seed(9))
    got = bigram_generate(bigram, prompt, 40, temperature=T,
                          generator=torch.Generator().manual_seed(9))
    assert torch.equal(got, want)


def test_top_token_share():
    assert top_token_share(torch.tensor([5, 5, 5, 5])) == (5, 1.0)
    assert top_token_share(torch.tensor([3, 1, 3, 1, 2])) == (1, 0.4)  # tie: lowest id
    with pytest.raises(ValueError, match="no tokens"):
        top_token_share(torch.tensor([], dtype=torch.long))
