"""Ablation: what the model loses without a subnetwork, against random controls.

Chang & Bergen 2025, section 6.3 (Figure 5), evaluate five conditions of one
model, built here from ``Subnetwork`` set operations:

| condition           | kept entries                                      |
|---------------------|---------------------------------------------------|
| ``full``            | every maskable entry (``Subnetwork.full``)         |
| ``subnetwork``      | the subnetwork's entries only (m)                  |
| ``random``          | r = ``Subnetwork.random_like(m)``: the same count in every matrix, at random places (seeded) |
| ``minus_subnetwork``| ``full & ~m``: the subnetwork's entries zeroed      |
| ``minus_random``    | ``full & ~r``: as many random entries zeroed, per matrix |

Only the attention and MLP weight matrices are masked (what a ``Subnetwork``
covers); biases, layer norms, embeddings and the unembedding are kept in
every condition. Each condition is scored as the paper scores it: surprisal
in bits of every next token of the eval text, +inf (a probability that
underflowed) replaced by the largest finite surprisal, then the mean and the
standard deviation over tokens (numpy's, ddof = 0). The softmax runs over
every logit row (for Pythia, its 50,304 padded rows, as in the paper's
ablation code).

:func:`condition_surprisals` runs several conditions on one loaded model:
each condition's masks are applied once (``Subnetwork.apply``, the package's
one way of masking), the eval batches are run under them, and the weights
come back bit for bit before the next condition; the model is never
reloaded. :func:`select_optimal` is the paper's rule for which "optimal"
(full-model-target) subnetwork is compared with the bigram one (section 6.1).

Defined in Chapter 8.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from ..plumbing.inputs import check_int, check_type
from .metrics import lm_logits, logits_surprisal
from .subnetwork import Subnetwork

__all__ = ["CONDITIONS", "LABELS", "ablation_conditions", "condition_surprisals",
           "clip_inf", "surprisal_summary", "select_optimal"]

CONDITIONS = ("full", "subnetwork", "random", "minus_subnetwork", "minus_random")
LABELS = {"full": "full model", "subnetwork": "subnetwork only",
          "random": "random subnetwork", "minus_subnetwork": "full minus subnetwork",
          "minus_random": "full minus random"}


def ablation_conditions(subnetwork: Subnetwork, model, seed: int = 0) -> dict[str, Subnetwork]:
    """The five conditions of ``subnetwork`` in ``model`` (keys: ``CONDITIONS``).

    The random control r keeps the subnetwork's count in every matrix at places
    drawn with ``seed``; ``minus_random`` zeroes exactly r's entries, so it
    removes as many entries per matrix as ``minus_subnetwork`` does."""
    where = "ablation_conditions: "
    check_type("subnetwork", subnetwork, Subnetwork, "wrap a dict of name -> bool masks as "
               "Subnetwork(masks), or pass a training result's .mask", where=where)
    check_int("seed", seed, 0, where=where, why="fixes the random control's places")
    full = Subnetwork.full(model)
    subnetwork.check(model)
    m = subnetwork
    r = Subnetwork.random_like(m, model, seed)
    return {"full": full, "subnetwork": full & m, "random": r,
            "minus_subnetwork": full & ~m, "minus_random": full & ~r}


@torch.no_grad()
def condition_surprisals(model, conditions: Mapping[str, Subnetwork], input_ids: torch.Tensor,
                         batch_size: int = 32, progress: bool = False) -> dict[str, torch.Tensor]:
    """name -> (n, seq-1) float32 surprisals in bits (CPU) of ``input_ids`` under
    each condition; a condition of None is the full model.

    One model for all: each condition's masks are applied once and every batch
    runs under them (a masked copy of each matrix that drops something lives
    only while its condition runs; the model's tensors come back bit for bit)."""
    where = "condition_surprisals: "
    check_type("conditions", conditions, Mapping, "pass a dict name -> Subnetwork, e.g. "
               "ablation_conditions(subnetwork, model)", where=where)
    check_int("batch_size", batch_size, 1, where=where)
    for name, sub in conditions.items():  # every condition is checked before any runs
        check_type(f"conditions[{name!r}]", sub, (Subnetwork, type(None)),
                   "wrap a dict of name -> bool masks as Subnetwork(masks)", where=where)
        if sub is not None:
            sub.check(model)
    out = {}
    for name, sub in conditions.items():
        sub = Subnetwork.full(model) if sub is None else sub
        with sub.apply(model):
            out[name] = torch.cat([logits_surprisal(logits, x).cpu() for x, logits in lm_logits(
                model, input_ids, batch_size, progress, desc=f"surprisal: {name}")])
    return out


def clip_inf(bits: torch.Tensor) -> torch.Tensor:
    """Surprisals (flattened) with +inf replaced by the largest finite value, as
    the paper's ablation code does (float64)."""
    x = torch.as_tensor(bits).detach().reshape(-1).double().cpu()
    if torch.isnan(x).any():
        raise ValueError("clip_inf: surprisals hold NaN: NaN comes from NaN logits or "
                         "weights; fix those first")
    inf = torch.isinf(x)
    if bool(inf.any()):
        if bool(inf.all()):
            raise ValueError("clip_inf: every surprisal is infinite: no finite value to clip to")
        x = torch.where(inf, x[~inf].max(), x)
    return x


def surprisal_summary(bits: torch.Tensor) -> dict:
    """{"mean", "std", "tokens", "inf"}: the mean and standard deviation (ddof 0)
    in bits over tokens, +inf clipped to the largest finite value; ``inf`` counts
    the clipped tokens."""
    x = torch.as_tensor(bits).detach().reshape(-1)
    if x.numel() == 0:
        raise ValueError("surprisal_summary: no surprisals: pass at least one token's")
    n_inf = int(torch.isinf(x).sum())
    c = clip_inf(x)
    return {"mean": float(c.mean()), "std": float(c.std(correction=0)), "tokens": c.numel(),
            "inf": n_inf}


def select_optimal(bigram_kept: int, optimal_kept: Mapping) -> object:
    """The paper's rule (Chang & Bergen 2025, section 6.1): among the optimal
    subnetworks of a lambda sweep (``optimal_kept``: lambda -> kept entries), the
    sparsest one that keeps MORE entries than the bigram subnetwork
    (``bigram_kept``). Returns its lambda, or None when none is larger."""
    check_int("bigram_kept", bigram_kept, 0, where="select_optimal: ")
    check_type("optimal_kept", optimal_kept, Mapping, "pass a dict lambda -> kept entries",
               where="select_optimal: ")
    larger = {lam: int(k) for lam, k in optimal_kept.items() if int(k) > bigram_kept}
    return min(larger, key=lambda lam: (larger[lam], -float(lam))) if larger else None
