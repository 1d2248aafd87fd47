"""Experiments the chapters run: train a subnetwork (cached on disk), evaluate it.

* :func:`train_subnetwork` trains a mask with :func:`bigramlab.sparsify.sparsify`
  for a profile's model at a checkpoint, against the bigram target or the full
  model's own distribution. The result is cached under ``mask-<key>``, the key
  covering everything that determines it (the profile's model, corpus and
  world, the checkpoint, the target and every field of the config), so a
  notebook, its solutions and CI train each mask once.
* :func:`reference_subnetwork` gives a second bigram subnetwork to set beside
  one trained here: the authors' released mask (real profiles) or, where
  nothing is released (tiny), the same training with another data order.
* :func:`evaluate_subnetwork` measures a subnetwork as METHOD.md section 3 does:
  Pearson r of its per-token surprisals with the bigram surprisals on the
  eval split (infinite bigram surprisals replaced by the largest finite value,
  and dropped), the cross-entropy from the bigram distribution to it, and its
  size.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

from .devices import numerics
from .inputs import check_real, check_type

__all__ = ["mask_config", "train_subnetwork", "evaluate_subnetwork", "reference_subnetwork",
           "TARGETS"]

TARGETS = ("bigram", "full")
_FORMAT_VERSION = 1


def mask_config(profile=None, lam: float | None = None, **changes):
    """The profile's ``SparsifyConfig`` (lambda ``lam`` or its default_lambda), plus ``changes``."""
    from .sparsify import SparsifyConfig

    return SparsifyConfig.from_profile(profile, lam, **changes)


@functools.lru_cache(maxsize=4)
def _model(profile_key: str, profile, checkpoint):
    from .models import load_model

    return load_model(profile, checkpoint)[0]


@functools.lru_cache(maxsize=2)
def _bigram(profile_key: str, profile, device: torch.device):
    """The profile's bigram model on ``device``: the same at every checkpoint."""
    from .bigrams import bigram_model

    return bigram_model(profile, device=device, progress=False)


def _loaded(profile, checkpoint):
    """(model at ``checkpoint`` on the default device, bigram model on the same device)."""
    model = _model(profile.key(), profile, checkpoint)
    return model, _bigram(profile.key(), profile, next(model.parameters()).device)


def train_subnetwork(profile=None, lam: float | None = None, checkpoint: str | None = None,
                     target: str = "bigram", progress: bool = True, **changes):
    """A ``SparsifyResult`` for ``profile``'s model at ``checkpoint`` (default: final).

    lam      lambda (default: the profile's ``default_lambda``); +-inf give the
             empty / full endpoints without training.
    target   ``"bigram"`` (the bigram subnetwork) or ``"full"`` (the model's own
             distribution: the "optimal" subnetwork).
    changes  any other ``SparsifyConfig`` field, e.g. ``max_steps=200``.

    Trained once and cached on disk (``mask-<key>``); a later call with the same
    profile, checkpoint, target and config loads it (a killed run resumes, a
    damaged entry is rebuilt). Every argument is checked before anything loads."""
    from .cache import cached_load, key_of
    from .corpus import load_corpus
    from .profiles import get_profile
    from .sparsify import BigramTarget, FullModelTarget, sparsify

    p = get_profile(profile)  # TypeError for a model or anything else that is not a profile
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; use one of {TARGETS}")
    check_type("checkpoint", checkpoint, (str, type(None)),
               f"use a revision name such as {p.final_checkpoint!r}", where="train_subnetwork: ")
    checkpoint = checkpoint or p.final_checkpoint
    config = mask_config(p, lam, **changes)  # every setting's range is checked here
    model, bigram = _loaded(p, checkpoint)
    tgt = BigramTarget(bigram) if target == "bigram" else FullModelTarget()
    train = load_corpus(p, "train")
    if config.lam == float("inf") or config.lam == float("-inf"):
        return sparsify(model, train, tgt, config, progress=False)
    # The numeric environment is in the key, as for the tiny LM: other kernels round
    # differently, and mask training amplifies it (README, "Reproducibility").
    key = key_of(_FORMAT_VERSION, p.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                        "n_eval_seqs", "world"),
                 checkpoint, target, dataclasses.asdict(config),
                 numerics(next(model.parameters()).device))

    def build(out):
        res = sparsify(model, train, tgt, config, state_dir=out, progress=progress)
        return {"profile": p.name, "checkpoint": checkpoint, "target": target,
                "lambda": config.lam, "steps": res.steps, "kept": res.kept_count}

    return cached_load("mask", key, build, lambda folder: sparsify(
        model, train, tgt, config, state_dir=folder, progress=False))


@torch.no_grad()
def evaluate_subnetwork(profile=None, subnetwork=None, checkpoint: str | None = None,
                        progress: bool = True) -> dict:
    """How bigram-like ``subnetwork`` (None: the full model) is, on the eval split.

    Returns a dict: ``r_max`` and ``r_drop`` (Pearson r of per-token surprisals
    with the bigram surprisals; infinite bigram surprisals replaced by the
    largest finite value / dropped), ``ce_bigram`` (nats, from the bigram
    distribution to the subnetwork, all positions), ``ce_lm`` (nats, the
    subnetwork's own language-modelling loss on the eval text), ``kept``
    (entries) and ``share`` (of the maskable entries). Shows a progress bar
    over the eval batches (``progress=False``: none)."""
    from .bigrams import batch_bigram_cross_entropy, surprisal_correlation
    from .corpus import load_corpus
    from .profiles import get_profile
    from .sparsify import SparsifyResult
    from .subnetwork import Subnetwork
    from .surprisal import cross_entropy_nats, lm_logits, logits_surprisal

    p = get_profile(profile)
    fix = ("pass the result's .mask" if isinstance(subnetwork, SparsifyResult) else
           "wrap a dict of name -> bool masks as Subnetwork(masks), or pass None for the "
           "full model")
    check_type("subnetwork", subnetwork, (Subnetwork, type(None)), fix,
               where="evaluate_subnetwork: ")
    checkpoint = checkpoint or p.final_checkpoint
    model, bigram = _loaded(p, checkpoint)
    if subnetwork is None:
        subnetwork = Subnetwork.full(model)
    ev = load_corpus(p, "eval")
    s_bigram = _bigram_surprisal(p.key(), p, bigram.device)
    parts, ce_sum = [], 0.0
    with subnetwork.apply(model):
        # one forward pass serves both measures
        for x, logits in lm_logits(model, ev, progress=progress, desc="evaluating"):
            parts.append(logits_surprisal(logits, x).cpu())
            ce_sum += batch_bigram_cross_entropy(bigram, logits, x) * x.numel()
    s_sub = torch.cat(parts)
    return {"r_max": surprisal_correlation(s_sub, s_bigram, inf="max"),
            "r_drop": surprisal_correlation(s_sub, s_bigram, inf="drop"),
            "ce_bigram": ce_sum / ev.numel(), "ce_lm": cross_entropy_nats(s_sub),
            "kept": subnetwork.count(), "share": subnetwork.share(model)}


@functools.lru_cache(maxsize=2)
def _bigram_surprisal(profile_key: str, profile, device: torch.device) -> torch.Tensor:
    """Bigram surprisals (bits) of the profile's eval split: the same at every checkpoint."""
    from .corpus import load_corpus

    return _bigram(profile_key, profile, device).surprisal(load_corpus(profile, "eval")).cpu()


def reference_subnetwork(profile=None, lam: float | None = None, **changes):
    """(Subnetwork, description): a bigram subnetwork trained elsewhere, for comparison.

    Real profiles: the authors' released mask of the profile's model at lambda
    ``lam`` (default: the profile's ``default_lambda``, the released default),
    downloaded from the Hugging Face Hub. Tiny profiles (nothing is released):
    :func:`train_subnetwork` with the same settings (``lam``, ``changes``) but
    another data order (``seed=1``), which separates what the model fixes
    about a mask from what one run happens to choose."""
    from .hub import load_released_subnetwork
    from .profiles import get_profile

    p = get_profile(profile)
    lam = p.default_lambda if lam is None else lam
    check_real("lam", lam, 0, float("inf"), also=(float("-inf"),), where="reference_subnetwork: ",
               why="the lambda of the mask to compare with")
    if p.is_tiny:
        sub = train_subnetwork(p, lam, **(changes | {"seed": 1})).mask
        return sub, f"the same training, another data order (seed 1), lambda {lam:g}"
    return (load_released_subnetwork(p.model_id, lam),
            f"the authors' released mask (Chang & Bergen 2025), lambda {lam:g}")
