"""bigramlab.experiments against naive references: a subnetwork's evaluation
recomputed by hand (weights zeroed in a copy, surprisals and Pearson r from
scratch), and cached mask training equal to a direct, uncached run."""

import copy
import math

import numpy as np
import pytest
import torch

from bigramlab import get_profile, load_corpus, load_model
from bigramlab.experiments import bigram_model
from bigramlab.experiments import (evaluate_subnetwork, mask_config, reference_subnetwork,
                                   train_subnetwork)
from bigramlab.methods.sparsify import BigramTarget, sparsify
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.plumbing.cache import entry_path

pytestmark = pytest.mark.slow  # needs the full tiny world (its 3-minute LM)


@pytest.fixture(scope="module")
def tiny():
    p = get_profile("tiny")
    model, _ = load_model(p, device="cpu")
    return p, model, bigram_model(p, device="cpu", progress=False)


def naive_eval(model, bigram, ev, masks):
    m = copy.deepcopy(model)
    params = dict(m.named_parameters())
    s_lm, s_bg, ce_sum, nll_sum = [], [], 0.0, 0.0
    with torch.no_grad():
        for name, keep in masks.items():
            params[name].mul_(keep.to(params[name].dtype))
        for i in range(0, len(ev), 32):
            x = ev[i:i + 32]
            logp = torch.log_softmax(m(input_ids=x).logits.double(), -1)
            nll = -logp[:, :-1].gather(-1, x[:, 1:, None])[..., 0]
            nll_sum += float(nll.sum())
            s_lm.append(nll / math.log(2))
            probs = bigram.next_token_probs(x.reshape(-1)).double().view(*x.shape, -1)
            s_bg.append(-torch.log2(probs[:, :-1].gather(-1, x[:, 1:, None])[..., 0]))
            terms = probs * logp[..., :probs.shape[-1]]
            ce_sum += float(-torch.where(probs > 0, terms, 0.0).sum())
    lm, bg = torch.cat(s_lm).numpy().ravel(), torch.cat(s_bg).numpy().ravel()
    finite = np.isfinite(bg)
    r_drop = np.corrcoef(lm[finite], bg[finite])[0, 1]
    r_max = np.corrcoef(lm, np.where(finite, bg, bg[finite].max()))[0, 1]
    return r_max, r_drop, ce_sum / ev.numel(), nll_sum / (ev.numel() - len(ev))


@pytest.mark.parametrize("which", ["full", "random"])
def test_evaluate_matches_naive(tiny, which):
    p, model, bigram = tiny
    sub = Subnetwork.full(model)
    if which == "random":
        g = torch.Generator().manual_seed(0)
        sub = Subnetwork({n: torch.rand(m.shape, generator=g) < 0.7 for n, m in sub.items()})
    got = evaluate_subnetwork(p, sub)
    r_max, r_drop, ce, ce_lm = naive_eval(model, bigram, load_corpus(p, "eval"), dict(sub))
    assert got["r_max"] == pytest.approx(r_max, abs=1e-4)
    assert got["r_drop"] == pytest.approx(r_drop, abs=1e-4)
    assert got["ce_bigram"] == pytest.approx(ce, rel=1e-4)
    assert got["ce_lm"] == pytest.approx(ce_lm, rel=1e-4)
    assert got["kept"] == sum(int(m.sum()) for m in sub.values())
    assert got["share"] == pytest.approx(got["kept"] / sum(m.numel() for m in sub.values()))


def test_evaluate_default_is_full_model(tiny):
    p, model, _ = tiny
    assert evaluate_subnetwork(p) == evaluate_subnetwork(p, Subnetwork.full(model))


def test_train_is_cached_and_equals_a_direct_run(tiny):
    p, model, bigram = tiny
    changes = dict(max_steps=3, batch_size=4)
    first = train_subnetwork(p, 1.0, progress=False, **changes)
    again = train_subnetwork(p, 1.0, progress=False, **changes)
    direct = sparsify(model, load_corpus(p, "train"), BigramTarget(bigram),
                      mask_config(p, 1.0, **changes), progress=False)
    assert first.steps == 3 and again.ce == first.ce
    for name, s in direct.mask_logits.items():
        assert torch.equal(first.mask_logits[name], s)
        assert torch.equal(again.mask_logits[name], s)
    assert first.mask == direct.mask


def test_endpoints_and_bad_target(tiny):
    p, model, _ = tiny
    n = sum(m.numel() for m in Subnetwork.full(model).values())
    assert train_subnetwork(p, -math.inf).kept_count == n
    assert train_subnetwork(p, math.inf).kept_count == 0
    with pytest.raises(ValueError, match="unknown target"):
        train_subnetwork(p, 1.0, target="unigram")


def test_config_follows_profile():
    p = get_profile("tiny")
    cfg = mask_config(p)
    assert (cfg.lam, cfg.lr, cfg.temp_growth, cfg.max_steps, cfg.batch_size) == \
        (p.default_lambda, p.mask_lr, p.temp_growth, p.max_steps, p.batch_size)
    assert mask_config(p, 3.0, max_steps=7, seed=2).max_steps == 7
    assert mask_config(get_profile("pythia-70m"), 100.0).lam == 100.0
    assert entry_path("mask", "x").name == "mask-x"
    with pytest.raises(TypeError, match=r"get_profile\('tiny'\)"):
        mask_config("tiny")  # names are resolved once, by the caller


def test_chapter_budget_is_the_old_notebook_constant(monkeypatch):
    """The chapters used ``600 if profile.is_tiny else profile.max_steps``; the profile
    field gives the same config, hence the same mask cache keys (under the paper's budget;
    the session budget caps real profiles' chapters at 600 steps: test_plan.py)."""
    monkeypatch.setenv("BIGRAMLAB_BUDGET", "paper")
    for name in ("tiny", "tiny-gpt2", "pythia-70m", "gpt2"):
        p = get_profile(name)
        old = 600 if p.is_tiny else p.max_steps
        assert p.chapter_max_steps == old
        assert mask_config(p, 1.0, max_steps=p.chapter_max_steps) == \
            mask_config(p, 1.0, max_steps=old)


def test_reference_subnetwork_tiny_is_another_data_order(tiny):
    p, _, _ = tiny
    changes = dict(max_steps=3, batch_size=4)
    sub, what = reference_subnetwork(p, 1.0, progress=False, **changes)
    assert sub == train_subnetwork(p, 1.0, progress=False, seed=1, **changes).mask
    assert "seed 1" in what and "lambda 1" in what


@pytest.mark.parametrize("name,lam,want", [("pythia-70m", None, 10.0), ("pythia-1b", None, 100.0),
                                           ("gpt2", 1.0, 1.0)])
def test_reference_subnetwork_real_is_the_released_mask(monkeypatch, name, lam, want):
    import bigramlab.worlds.hub

    calls = []
    monkeypatch.setattr(bigramlab.worlds.hub, "load_released_subnetwork",
                        lambda model_id, lam: calls.append((model_id, lam)) or "released")
    sub, what = reference_subnetwork(get_profile(name), lam)
    assert sub == "released" and calls == [(get_profile(name).model_id, want)]
    assert "released" in what


def test_evaluate_at_an_earlier_checkpoint_uses_that_model(tiny):
    p, _, bigram = tiny
    early, _ = load_model(p, "step64", device="cpu")
    got = evaluate_subnetwork(p, checkpoint="step64")
    r_max, r_drop, ce, ce_lm = naive_eval(early, bigram, load_corpus(p, "eval"),
                                          dict(Subnetwork.full(early)))
    assert got["r_drop"] == pytest.approx(r_drop, abs=1e-4)
    assert got["ce_lm"] == pytest.approx(ce_lm, rel=1e-4)
    assert got["ce_lm"] > evaluate_subnetwork(p)["ce_lm"] + 1  # step 64 is far from trained


def test_evaluate_another_model_on_the_profiles_text(tiny):
    """``model=``: another model of the family, measured on the profile's eval text against
    its bigram model (here the step-64 model: the same as asking for that checkpoint)."""
    p, _, bigram = tiny
    early, _ = load_model(p, "step64", device="cpu")
    from bigramlab import maskable_matrices
    g = torch.Generator().manual_seed(3)
    sub = Subnetwork({m.name: torch.rand(m.shape, generator=g) < 0.3  # any mask
                      for m in maskable_matrices(early)})
    got = evaluate_subnetwork(p, sub, model=early, progress=False)
    r_max, r_drop, ce, ce_lm = naive_eval(early, bigram, load_corpus(p, "eval"), dict(sub))
    assert got["r_drop"] == pytest.approx(r_drop, abs=1e-4)
    assert got["ce_lm"] == pytest.approx(ce_lm, rel=1e-4)
    assert got["ce_bigram"] == pytest.approx(ce, rel=1e-4)
