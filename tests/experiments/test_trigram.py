"""Chapter 9's experiments (bigramlab.experiments.trigram and the trigram target of
bigramlab.experiments.subnetworks) against direct, uncached runs and a naive
evaluation; and the mask cache keys of the older targets, unchanged by the new one."""

import copy
import dataclasses
import math

import numpy as np
import pytest
import torch

from bigramlab import get_profile, load_corpus, load_model, load_tokenizer
from bigramlab.experiments import (TARGETS, bigram_model, evaluate_trigram, mask_config,
                                   mask_key, train_subnetwork, trigram_model)
from bigramlab.experiments import subnetworks
from bigramlab.methods.sparsify import TrigramTarget, sparsify
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.methods.trigrams import MIN_COUNT, TrigramModel
from bigramlab.plumbing.cache import key_of
from bigramlab.plumbing.devices import numerics

slow = pytest.mark.slow  # needs the full tiny world (its 3-minute LM)


def test_older_targets_keep_their_mask_keys():
    """The key of a "bigram" or "full" mask is the formula it had before "trigram" came
    (the tiny profile's float64 weights join it as the low-memory settings do: a mask
    trained in float32 is another mask)."""
    assert TARGETS == ("bigram", "full", "trigram")
    p, cpu = get_profile("tiny"), torch.device("cpu")
    dtype = {"weights_dtype": "float64"}
    for target in ("bigram", "full"):
        for cfg in (mask_config(p), mask_config(p, 3.0, max_steps=p.chapter_max_steps)):
            before = key_of(1, p.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                     "n_eval_seqs", "world"),
                            p.final_checkpoint, target, dataclasses.asdict(cfg), numerics(cpu, torch.float64),
                            dtype)
            assert mask_key(p, p.final_checkpoint, target, cfg, cpu) == before
    cfg = mask_config(p)
    keys = {t: mask_key(p, p.final_checkpoint, t, cfg, cpu) for t in TARGETS}
    assert len(set(keys.values())) == 3  # and the trigram key names its pruning
    assert keys["trigram"] == key_of(1, p.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                              "n_eval_seqs", "world"), p.final_checkpoint,
                                     f"trigram(min_count={MIN_COUNT})",
                                     dataclasses.asdict(cfg), numerics(cpu, torch.float64), dtype)


def test_bad_arguments_are_named():
    p = get_profile("tiny")
    for k in (0, 1.5):
        with pytest.raises(ValueError, match="min_count"):
            trigram_model(p, min_count=k)
    with pytest.raises(TypeError, match="bigram_model"):
        trigram_model(p, bigram="bigram")
    with pytest.raises(TypeError, match=r"get_profile\('tiny'\)"):
        trigram_model("tiny")


@pytest.fixture(scope="module")
def tiny():
    p = get_profile("tiny")
    model, _ = load_model(p, device="cpu")
    return p, model, trigram_model(p, device="cpu", progress=False)


@slow
def test_trigram_model_is_cached_and_equals_a_direct_count(tiny):
    p, _, cached = tiny
    train = load_corpus(p, "train")
    direct = TrigramModel.from_corpus(train.split(4096), len(load_tokenizer(p)))
    assert cached.min_count == MIN_COUNT and cached.tokens == train.numel()
    assert torch.equal(cached.ngram_counts.keys, direct.ngram_counts.keys)
    assert torch.equal(cached.ngram_counts.counts, direct.ngram_counts.counts)
    ctx = torch.arange(cached.vocab_size + 1)
    bigram = bigram_model(p, device="cpu", progress=False)  # its back-off is the profile's
    assert torch.equal(cached.bigram.next_token_probs(ctx), bigram.next_token_probs(ctx))
    assert torch.equal(direct.bigram.next_token_probs(ctx), bigram.next_token_probs(ctx))
    ev = load_corpus(p, "eval")
    assert torch.equal(cached.surprisal(ev), direct.surprisal(ev))
    unpruned = trigram_model(p, device="cpu", progress=False, min_count=1, bigram=cached.bigram)
    assert unpruned.nnz > cached.nnz and unpruned.bigram is cached.bigram


@slow
def test_train_trigram_is_cached_and_equals_a_direct_run(tiny):
    p, model, trigram = tiny
    changes = dict(max_steps=3, batch_size=4)
    first = train_subnetwork(p, 1.0, target="trigram", progress=False, **changes)
    again = train_subnetwork(p, 1.0, target="trigram", progress=False, **changes)
    direct = sparsify(model, load_corpus(p, "train"), TrigramTarget(trigram),
                      mask_config(p, 1.0, **changes), progress=False)
    assert first.steps == 3 and again.ce == first.ce == direct.ce
    for name, s in direct.mask_logits.items():
        assert torch.equal(first.mask_logits[name], s)
    bigram_run = train_subnetwork(p, 1.0, progress=False, **changes)
    assert bigram_run.ce != first.ce  # another target, another loss


@slow
def test_evaluate_trigram_matches_naive(tiny):
    p, model, trigram = tiny
    g = torch.Generator().manual_seed(0)
    sub = Subnetwork({n: torch.rand(m.shape, generator=g) < 0.7
                      for n, m in Subnetwork.full(model).items()})
    got = evaluate_trigram(p, sub, progress=False)
    m = copy.deepcopy(model)
    params = dict(m.named_parameters())
    ev = load_corpus(p, "eval")
    V = trigram.vocab_size
    s_lm, s_tri, ce_sum = [], [], 0.0
    with torch.no_grad():
        for name, keep in sub.items():
            params[name].mul_(keep.to(params[name].dtype))
        for i in range(0, len(ev), 32):
            x = ev[i:i + 32]
            logp = torch.log_softmax(m(input_ids=x).logits.double(), -1)
            s_lm.append(-logp[:, :-1].gather(-1, x[:, 1:, None])[..., 0] / math.log(2))
            prev2 = torch.cat([torch.full_like(x[:, :1], V), x[:, :-1]], 1)
            probs = trigram.next_token_probs(prev2, x).double()
            s_tri.append(-torch.log2(probs[:, :-1].gather(-1, x[:, 1:, None])[..., 0]))
            terms = probs * logp[..., :V]
            ce_sum += float(-torch.where(probs > 0, terms, 0.0).sum())
    lm, tri = torch.cat(s_lm).numpy().ravel(), torch.cat(s_tri).numpy().ravel()
    finite = np.isfinite(tri)
    assert not finite.all()  # pruned continuations of seen contexts: p = 0
    assert got["r_drop"] == pytest.approx(np.corrcoef(lm[finite], tri[finite])[0, 1], abs=1e-4)
    assert got["r_max"] == pytest.approx(
        np.corrcoef(lm, np.where(finite, tri, tri[finite].max()))[0, 1], abs=1e-4)
    assert got["ce_trigram"] == pytest.approx(ce_sum / ev.numel(), rel=1e-4)
    assert got["kept"] == sub.count()
    assert subnetworks.evaluate_subnetwork(p, sub, progress=False)["kept"] == sub.count()
