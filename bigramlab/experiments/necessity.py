"""Necessity, per profile: the five ablation conditions and the optimal-subnetwork sweep.

* :func:`ablation` evaluates a subnetwork's five conditions
  (``methods.ablation``: full, subnetwork only, random, full minus subnetwork,
  full minus random) on the profile's eval split with one loaded model, as
  Chang & Bergen 2025, section 6.3 do: mean and standard deviation over
  tokens of surprisal in bits, +inf clipped to the largest finite value.
* :func:`optimal_sweep` trains "optimal" subnetworks (the full model's own
  distribution as the target, ``train_subnetwork(..., target="full")``,
  cached like every mask) at several lambdas and measures each: its size,
  its language-modelling loss, and the Pearson r of its surprisals with the
  full model's and with the bigram model's (section 6.1).

Every function takes a ``Profile``. Defined in Chapter 8.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..methods.ablation import ablation_conditions, condition_surprisals, surprisal_summary
from ..methods.metrics import cross_entropy_nats, surprisal_correlation
from ..methods.sparsify_config import SparsifyResult
from ..methods.subnetwork import Subnetwork
from ..plumbing.inputs import check_int, check_real, check_type
from ..plumbing.profiles import Profile, entry_point
from ..worlds.loading import load_corpus
from .subnetworks import model_and_bigram, ngram_surprisal, train_subnetwork

__all__ = ["ablation", "optimal_sweep"]


@entry_point
def ablation(profile: Profile, subnetwork: Subnetwork, seed: int = 0,
             checkpoint: str | None = None, progress: bool = True) -> dict:
    """The five conditions of ``subnetwork`` on ``profile``'s eval split.

    Returns ``{"conditions": name -> Subnetwork, "surprisal": name -> (n, seq-1)
    bits, "summary": name -> {"mean", "std", "tokens", "inf", "kept", "share"}}``
    (names: ``methods.ablation.CONDITIONS``; ``seed`` places the random control).
    Shows a progress bar per condition (``progress=False``: none)."""
    fix = ("pass the result's .mask" if isinstance(subnetwork, SparsifyResult) else
           "wrap a dict of name -> bool masks as Subnetwork(masks)")
    check_type("subnetwork", subnetwork, Subnetwork, fix, where="ablation: ")
    check_int("seed", seed, 0, where="ablation: ", why="fixes the random control's places")
    model, _ = model_and_bigram(profile, checkpoint or profile.final_checkpoint)
    conditions = ablation_conditions(subnetwork, model, seed)
    bits = condition_surprisals(model, conditions, load_corpus(profile, "eval"), progress=progress)
    summary = {name: surprisal_summary(b) | {"kept": conditions[name].count(),
                                             "share": conditions[name].share(model)}
               for name, b in bits.items()}
    return {"conditions": conditions, "surprisal": bits, "summary": summary}


@entry_point
def optimal_sweep(profile: Profile, lams: Iterable[float], checkpoint: str | None = None,
                  progress: bool = True, **changes) -> list[dict]:
    """One dict per lambda of ``lams``, sparsest last if ``lams`` grows: ``lam``,
    ``steps``, ``kept``, ``share``, ``ce_lm`` (nats, the subnetwork's own loss on
    the eval text), ``r_full`` (Pearson r of its surprisals with the full model's,
    inf clipped to the largest finite value), ``r_bigram`` (with the bigram
    surprisals, infinite bigram surprisals dropped, as Chapters 3-5 report) and
    ``mask`` (the Subnetwork). The masks are trained with
    ``train_subnetwork(profile, lam, target="full", **changes)`` (cached); the
    full model's row is not included (``r_full`` = 1 there)."""
    lams = list(lams)
    for lam in lams:  # every lambda is checked before anything trains
        check_real("lam", lam, 0, float("inf"), where="optimal_sweep: ",
                   why="the density penalty's weight of each optimal subnetwork")
    checkpoint = checkpoint or profile.final_checkpoint
    model, bigram = model_and_bigram(profile, checkpoint)
    ev = load_corpus(profile, "eval")
    s_full = condition_surprisals(model, {"full": None}, ev)["full"]
    s_bigram = ngram_surprisal(profile, bigram.device, "bigram")
    rows = []
    for lam in lams:
        res = train_subnetwork.unchecked(profile, lam, checkpoint, target="full",
                                         progress=progress, **changes)
        s = condition_surprisals(model, {"optimal": res.mask}, ev)["optimal"]
        rows.append({"lam": float(lam), "steps": res.steps, "kept": res.mask.count(),
                     "share": res.mask.share(model), "ce_lm": cross_entropy_nats(s),
                     "r_full": surprisal_correlation(s, s_full, inf="max"),
                     "r_bigram": surprisal_correlation(s, s_bigram, inf="drop"),
                     "mask": res.mask})
    return rows
