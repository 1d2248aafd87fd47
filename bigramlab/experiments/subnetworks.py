"""Experiments the chapters run: train a subnetwork (cached on disk), evaluate it.

* :func:`train_subnetwork` trains a mask with :func:`bigramlab.methods.sparsify.sparsify`
  for a profile's model at a checkpoint, against the bigram target, the full
  model's own distribution or (Chapter 9) the trigram target. The result is
  cached under ``mask-<key>``, the key covering everything that determines it
  (the profile's model, corpus and world, the checkpoint, the target and every
  field of the config), so a notebook, its solutions and CI train each mask once.
* :func:`reference_subnetwork` gives a second bigram subnetwork to set beside
  one trained here: the authors' released mask (real profiles) or, where
  nothing is released (tiny), the same training with another data order.
* :func:`evaluate_subnetwork` measures a subnetwork as the paper does (Chang &
  Bergen 2025, section 3): Pearson r of its per-token surprisals with the
  bigram surprisals on the eval split (infinite bigram surprisals replaced by
  the largest finite value, and dropped), the cross-entropy from the bigram
  distribution to it, and its size. :func:`evaluate_trigram` measures the same
  against the profile's trigram model (Chapter 9).

Every function takes a ``Profile`` (resolve a name once with ``get_profile``).
:func:`model_and_bigram` and :func:`ngram_surprisal` are what the other experiments
share: loaded once per process.
Defined in Chapter 3; Chapters 4, 5 and 9 use it.
"""

from __future__ import annotations

import dataclasses
import functools

import torch

from ..methods.anatomy import count_maskable
from ..methods.metrics import (cross_entropy_nats, lm_logits, logits_surprisal,
                               surprisal_correlation)
from ..methods.sparsify import (BigramTarget, FullModelTarget, SparsifyConfig, TrigramTarget,
                                sparsify)
from ..methods.sparsify_config import SparsifyResult
from ..methods.subnetwork import Subnetwork
from ..plumbing.cache import cached_load, key_of
from ..plumbing.devices import numerics
from ..plumbing.inputs import check_real, check_type
from ..plumbing.profiles import Profile, entry_point
from ..worlds import hub
from ..worlds.loading import load_corpus, load_model
from .bigram import bigram_model
from .plan import announce_training, require_fits
from .trigram import MIN_COUNT, trigram_model

__all__ = ["mask_config", "mask_key", "train_subnetwork", "evaluate_subnetwork",
           "evaluate_trigram", "reference_subnetwork", "TARGETS", "model_and_bigram",
           "ngram_surprisal"]

TARGETS = ("bigram", "full", "trigram")
_FORMAT_VERSION = 1
#: How a target is named in a mask's cache key: itself, and for the trigram target
#: the pruning of its model too ("bigram" and "full" keys are those of before it).
_KEY_NAMES = {"trigram": f"trigram(min_count={MIN_COUNT})"}
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Profile)}


#: The float64 (tiny) profiles' mask-logit grid: with it a mask is the same bit for bit
#: under every CPU kernel set (``SparsifyConfig.logit_grid``; measured in tests/worlds/test_release.py).
LOGIT_GRID = 2.0 ** -24


@entry_point
def mask_config(profile: Profile, lam: float | None = None, **changes) -> SparsifyConfig:
    """The profile's ``SparsifyConfig``: its mask-training choices (lr, temp_growth,
    max_steps, batch_size; lambda = ``lam`` or the profile's default_lambda),
    plus ``changes`` (any other field, e.g. ``max_steps=profile.chapter_max_steps``)."""
    settings = [f.name for f in dataclasses.fields(SparsifyConfig) if f.name != "lam"]
    unknown = [k for k in changes if k not in settings + ["lam"]]
    if unknown:
        raise TypeError(f"unknown mask-training setting {unknown[0]!r}: use one of "
                        f"{', '.join(settings)} (and lam for lambda)")
    if lam is not None:  # float() of a string or a NaN would slip through silently
        check_real("lam", lam, 0, float("inf"), also=(float("-inf"),), where="mask_config: ",
                   why="the density penalty's weight; -inf keeps every entry, inf none")
    return SparsifyConfig(**dict(lam=profile.default_lambda if lam is None else float(lam),
                                 lr=profile.mask_lr, temp_growth=profile.temp_growth,
                                 max_steps=profile.max_steps, batch_size=profile.batch_size,
                                 logit_grid=LOGIT_GRID if profile.weights_dtype == "float64"
                                 else 0.0)
                          | changes)


def mask_key(profile: Profile, checkpoint: str, target: str, config: SparsifyConfig,
             device: torch.device) -> str:
    """The cache key of a trained mask (``mask-<key>``): everything that determines it.
    The numeric environment of ``device`` is in it, as for the tiny LM: other kernels
    round differently, and mask training amplifies it (the book's appendix,
    "Reproducibility"); for a float64 model (the tiny world), only the device type and
    torch build, which is all that can change its mask (``devices.numerics``)."""
    # the low-memory settings (Pythia 1B, GPT-2 large) join the key only where they are
    # set, so every other mask keeps the key it had before they existed
    low = {k: getattr(profile, k) for k in ("weights_dtype", "mask_memory")
           if getattr(profile, k) != _DEFAULTS[k]}
    return key_of(_FORMAT_VERSION, profile.key("model_id", "corpus", "seq_len", "n_train_seqs",
                                               "n_eval_seqs", "world"),
                  checkpoint, _KEY_NAMES.get(target, target), dataclasses.asdict(config),
                  numerics(device, getattr(torch, profile.weights_dtype)),
                  *([low] if low else []))


@functools.lru_cache(maxsize=4)
def _model(profile_key: str, profile, checkpoint):
    return load_model(profile, checkpoint)[0]


@functools.lru_cache(maxsize=2)
def _bigram(profile_key: str, profile, device: torch.device):
    """The profile's bigram model on ``device``: the same at every checkpoint."""
    return bigram_model.unchecked(profile, device=device, progress=False)


@functools.lru_cache(maxsize=2)
def _trigram(profile_key: str, profile, device: torch.device):
    """The profile's trigram model on ``device``, backing off to ``_bigram``'s model."""
    return trigram_model.unchecked(profile, progress=False,
                                   bigram=_bigram(profile_key, profile, device))


def model_and_bigram(profile: Profile, checkpoint: str):
    """(model at ``checkpoint`` on the default device, bigram model on the same device),
    each loaded once per process (``profile`` already checked)."""
    model = _model(profile.key(), profile, checkpoint)
    return model, _bigram(profile.key(), profile, next(model.parameters()).device)


@entry_point
def train_subnetwork(profile: Profile, lam: float | None = None, checkpoint: str | None = None,
                     target: str = "bigram", progress: bool = True, released: bool | None = None,
                     **changes):
    """A ``SparsifyResult`` for ``profile``'s model at ``checkpoint`` (default: final).

    lam      lambda (default: the profile's ``default_lambda``); +-inf give the
             empty / full endpoints without training.
    target   ``"bigram"`` (the bigram subnetwork), ``"full"`` (the model's own
             distribution: the "optimal" subnetwork) or ``"trigram"`` (Chapter 9: the
             profile's trigram model, ``trigram_model``, pruned at its default).
    changes  any other ``SparsifyConfig`` field, e.g. ``max_steps=200`` (the
             chapters pass ``max_steps=profile.chapter_max_steps``).
    released whether the authors' released mask may stand in for training, where one
             exists (a real profile's bigram target at its final checkpoint and a
             released lambda): then it is returned, with ``source`` saying so, ``steps``
             0 and empty curves. Default (None): under the session budget only
             (``profile.budget == "session"``); False always trains.

    Trained once and cached on disk (``mask-<key>``); a later call with the same
    profile, checkpoint, target and config loads it (a killed run resumes, a
    damaged entry is rebuilt). Every argument is checked before anything loads."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; use one of {TARGETS}")
    check_type("checkpoint", checkpoint, (str, type(None)),
               f"use a revision name such as {profile.final_checkpoint!r}",
               where="train_subnetwork: ")
    checkpoint = checkpoint or profile.final_checkpoint
    config = mask_config.unchecked(profile, lam, **changes)  # every setting's range checked
    if released is None:
        released = profile.budget == "session"
    if released and _released_lambda(profile, checkpoint, target, config.lam):
        return _released_result(profile, config)
    model, bigram = model_and_bigram(profile, checkpoint)
    if target == "trigram":
        tgt = TrigramTarget(_trigram(profile.key(), profile, bigram.device))
    else:
        tgt = BigramTarget(bigram) if target == "bigram" else FullModelTarget()
    train = load_corpus(profile, "train")
    if config.lam == float("inf") or config.lam == float("-inf"):
        return sparsify(model, train, tgt, config, progress=False)
    key = mask_key(profile, checkpoint, target, config, next(model.parameters()).device)

    def build(out):  # only when the mask is not cached yet
        # say so before training, if it can't
        require_fits.unchecked(profile, next(model.parameters()).device)
        if not profile.is_tiny:  # tiny runs are the chapters' one-minute budget: not announced
            announce_training(model, train, tgt, config, folder=out, cheaper=_cheaper(
                profile, checkpoint, target, config), what=f"the {target} subnetwork of "
                f"{profile.name} at {checkpoint}, lambda {config.lam:g}")
        res = sparsify(model, train, tgt, config, state_dir=out, progress=progress,
                       memory=profile.mask_memory)
        return {"profile": profile.name, "checkpoint": checkpoint, "target": target,
                "lambda": config.lam, "steps": res.steps, "kept": res.kept_count}

    return cached_load("mask", key, build, lambda folder: sparsify(
        model, train, tgt, config, state_dir=folder, progress=False, memory=profile.mask_memory))


def _released_lambda(p: Profile, checkpoint: str, target: str, lam: float) -> bool:
    """Whether the authors released this mask (real profile, bigram, final checkpoint)."""
    if p.is_tiny or target != "bigram" or checkpoint != p.final_checkpoint:
        return False
    short = p.model_id.rpartition("/")[2]
    return lam in hub.RELEASED_SUBNETWORKS.get(short, (None, ()))[1]


def _released_result(p: Profile, config: SparsifyConfig) -> SparsifyResult:
    """The authors' released mask as a ``SparsifyResult`` (no curves: not trained here)."""
    model, _ = model_and_bigram(p, p.final_checkpoint)
    sub = hub.load_released_subnetwork(p.model_id, config.lam)
    sub.check(model)
    # +-1 logits: the binary mask as a trained run would store it (s > 0 kept)
    logits = {name: torch.where(sub[name], 1.0, -1.0) for name in sub}
    n = count_maskable(model)
    return SparsifyResult(mask=sub, mask_logits=logits, ce=[], penalty=[],
                          kept=[(0, sub.count())], temperature=float("nan"), steps=0,
                          early_stopped=False, stable=True, attempts=0, attempt_log=[],
                          n_entries=n, config=config,
                          source=f"the authors' released mask (Chang & Bergen 2025), "
                                 f"lambda {config.lam:g}")


def _cheaper(p: Profile, checkpoint: str, target: str, config: SparsifyConfig) -> str:
    """The cheaper alternative to a long mask training, in words."""
    if _released_lambda(p, checkpoint, target, config.lam):
        return (f"the authors' released mask, no training: bigramlab.worlds.hub."
                f"load_released_subnetwork({p.model_id!r}, {config.lam:g}).")
    if p.budget == "paper":
        return ("the session budget: set BIGRAMLAB_BUDGET=session (or unset it), restart "
                "the runtime and rerun: 600 steps with the tiny world's faster schedule "
                "(lr 1e-2, temperature x1.01 a step), about 25 times shorter.")
    return (f"a smaller model (e.g. BIGRAMLAB_PROFILE=pythia-70m), or fewer steps, e.g. "
            f"max_steps={max(config.max_steps // 4, 100)} (interrupt this cell; a mask "
            "that has not hardened keeps more entries).")


@entry_point
def evaluate_subnetwork(profile: Profile, subnetwork=None, checkpoint: str | None = None,
                        progress: bool = True, model=None) -> dict:
    """How bigram-like ``subnetwork`` (None: the full model) is, on the eval split.

    Returns a dict: ``r_max`` and ``r_drop`` (Pearson r of per-token surprisals
    with the bigram surprisals; infinite bigram surprisals replaced by the
    largest finite value / dropped), ``ce_bigram`` (nats, from the bigram
    distribution to the subnetwork, all positions), ``ce_lm`` (nats, the
    subnetwork's own language-modelling loss on the eval text), ``kept``
    (entries) and ``share`` (of the maskable entries). Shows a progress bar
    over the eval batches (``progress=False``: none).

    ``model``: measure this model instead of the profile's at ``checkpoint``, on the
    profile's eval text and against its bigram model: another size of the profile's
    family, which shares its tokenizer (the paper's Figure 1, Chapter 3)."""
    return _evaluate(profile, subnetwork, checkpoint, progress, "bigram", model)


@entry_point
def evaluate_trigram(profile: Profile, subnetwork=None, checkpoint: str | None = None,
                     progress: bool = True) -> dict:
    """How trigram-like ``subnetwork`` (None: the full model) is, on the eval split:
    :func:`evaluate_subnetwork`'s measures against the profile's trigram model
    (``trigram_model``, back-off applied) instead of its bigram model; the
    cross-entropy is ``ce_trigram``. Chapter 9."""
    return _evaluate(profile, subnetwork, checkpoint, progress, "trigram")


@torch.no_grad()
def _evaluate(p: Profile, subnetwork, checkpoint, progress, against: str, model=None) -> dict:
    fix = ("pass the result's .mask" if isinstance(subnetwork, SparsifyResult) else
           "wrap a dict of name -> bool masks as Subnetwork(masks), or pass None for the "
           "full model")
    where = "evaluate_subnetwork: " if against == "bigram" else "evaluate_trigram: "
    check_type("subnetwork", subnetwork, (Subnetwork, type(None)), fix, where=where)
    if model is None:
        model, bigram = model_and_bigram(p, checkpoint or p.final_checkpoint)
    else:
        bigram = _bigram(p.key(), p, next(model.parameters()).device)
    ngram = bigram if against == "bigram" else _trigram(p.key(), p, bigram.device)
    if subnetwork is None:
        subnetwork = Subnetwork.full(model)
    ev = load_corpus(p, "eval")
    s_ngram = ngram_surprisal(p, bigram.device, against)
    parts, ce_sum = [], 0.0
    with subnetwork.apply(model):
        # one forward pass serves both measures
        for x, logits in lm_logits(model, ev, progress=progress, desc="evaluating"):
            parts.append(logits_surprisal(logits, x).cpu())
            ce_sum += float(ngram.cross_entropy(logits.to(ngram.device),
                                                x.to(ngram.device))) * x.numel()
    s_sub = torch.cat(parts)
    return {"r_max": surprisal_correlation(s_sub, s_ngram, inf="max"),
            "r_drop": surprisal_correlation(s_sub, s_ngram, inf="drop"),
            f"ce_{against}": ce_sum / ev.numel(), "ce_lm": cross_entropy_nats(s_sub),
            "kept": subnetwork.count(), "share": subnetwork.share(model)}


def ngram_surprisal(profile: Profile, device: torch.device, against: str) -> torch.Tensor:
    """Bigram or trigram (``against``) surprisals (bits) of the profile's eval split, the
    same at every checkpoint: computed once per process (``profile`` already checked)."""
    return _surprisal(profile.key(), profile, device, against)


@functools.lru_cache(maxsize=4)
def _surprisal(profile_key: str, profile, device: torch.device, against: str) -> torch.Tensor:
    ngram = _bigram(profile_key, profile, device)
    if against == "trigram":
        ngram = _trigram(profile_key, profile, device)
    return ngram.surprisal(load_corpus(profile, "eval")).cpu()


@entry_point
def reference_subnetwork(profile: Profile, lam: float | None = None, **changes):
    """(Subnetwork, description): a bigram subnetwork trained elsewhere, for comparison.

    Real profiles: the authors' released mask of the profile's model at lambda
    ``lam`` (default: the profile's ``default_lambda``, the released default),
    downloaded from the Hugging Face Hub. Tiny profiles (nothing is released):
    :func:`train_subnetwork` with the same settings (``lam``, ``changes``) but
    another data order (``seed=1``), which separates what the model fixes
    about a mask from what one run happens to choose."""
    lam = profile.default_lambda if lam is None else lam
    check_real("lam", lam, 0, float("inf"), also=(float("-inf"),), where="reference_subnetwork: ",
               why="the lambda of the mask to compare with")
    if profile.is_tiny:
        sub = train_subnetwork.unchecked(profile, lam, **(changes | {"seed": 1})).mask
        return sub, f"the same training, another data order (seed 1), lambda {lam:g}"
    return (hub.load_released_subnetwork(profile.model_id, lam),
            f"the authors' released mask (Chang & Bergen 2025), lambda {lam:g}")
