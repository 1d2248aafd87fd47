"""Adding circuits back: from the bigram subnetwork toward the full model, one part at a time.

Chang & Bergen 2025 (section 7) propose to "build language models up from
component circuits": start from the bigram subnetwork, which already makes
bigram predictions, and add the circuits that shrink the gap to the full
model. This module holds the pieces of that experiment as values:

* **Parts** are ``Subnetwork`` s of the whole model: one attention head
  (:func:`head_part`: its q, k, v rows and its o columns), one layer's MLP
  (:func:`mlp_part`: every hidden unit's in and out weights), or the entries
  another subnetwork has beyond a base one (:func:`extra_part`, e.g. the
  optimal subnetwork's entries that the bigram one lacks); :func:`kinds_part`
  keeps every entry of some kinds of matrix (e.g. all of attention, q k v o),
  so ``extra & kinds_part(model, "qkvo")`` is the attention share of an extra
  part. :func:`model_parts` lists every head (or every layer's attention) and
  every MLP of a model; all of them together are the whole model.
* **Adding a part** is a union: ``current | part``. :func:`cumulative` gives
  the subnetworks along a fixed order of parts.
* :func:`greedy_add_back` picks, at every step, the part whose addition gives
  the lowest score (e.g. the eval cross-entropy) among those that still add
  something, until no part is left or ``max_steps`` are taken. The score is a
  callable, so the loop never runs a model itself: tensors and models stay in
  the caller's evaluation (``experiments.circuits`` measures on the eval split).
* :func:`gap_closed` is how much of the distance between two scores a third
  one covers (0 at the start, 1 at the end).

Defined in Chapter 9.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from .anatomy import KINDS, maskable_matrices
from .subnetwork import Subnetwork

__all__ = ["head_part", "mlp_part", "extra_part", "kinds_part", "model_parts", "cumulative",
           "greedy_add_back", "gap_closed"]

#: The attention kinds (every entry of an attention head), for :func:`kinds_part`.
ATTENTION = ("q", "k", "v", "o")


def head_part(model, layer: int, head: int) -> Subnetwork:
    """Attention ``head`` of ``layer`` alone: its q, k, v and o entries kept, nothing else."""
    return Subnetwork.empty(model).keep_head(model, layer, head)


def _mlp_width(model) -> int:
    m = next(m for m in maskable_matrices(model) if m.role == "mlp_in")
    return m.shape[m.out_axis]


def mlp_part(model, layer: int) -> Subnetwork:
    """The MLP of ``layer`` alone: both of its weight matrices kept, nothing else."""
    return Subnetwork.empty(model).keep_mlp_dims(model, layer, range(_mlp_width(model)))


def extra_part(subnetwork: Subnetwork, base: Subnetwork) -> Subnetwork:
    """The entries ``subnetwork`` keeps and ``base`` does not: ``subnetwork & ~base``."""
    return subnetwork & ~base


def kinds_part(model, kinds=ATTENTION) -> Subnetwork:
    """Every entry of the matrices (or, in the fused q/k/v matrix, the rows or columns)
    of ``kinds`` (a sequence of ``anatomy.KINDS``: q, k, v, o, mlp_in, mlp_out), in
    every layer; nothing else."""
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise ValueError(f"kinds_part: unknown kind {unknown[0]!r}; use some of {KINDS}")
    masks = {}
    for m in maskable_matrices(model):
        masks[m.name] = torch.zeros(m.shape, dtype=torch.bool)
        for k in set(kinds) & set(m.kinds):
            masks[m.name] |= m.part(k)
    return Subnetwork(masks, model.config.name_or_path or None)


def model_parts(model, heads: bool = True) -> dict[str, Subnetwork]:
    """Every attention head (``"L{layer} H{head}"``) and every layer's MLP
    (``"L{layer} MLP"``) of ``model``, layer by layer; their union is the full model.
    ``heads=False``: each layer's attention as one part (``"L{layer} attention"``, all
    of its heads), for models with too many heads to try one at a time."""
    mats = maskable_matrices(model)
    parts = {}
    for layer in range(mats[-1].layer + 1):
        if heads:
            for head in range(mats[0].n_heads):
                parts[f"L{layer} H{head}"] = head_part(model, layer, head)
        else:
            parts[f"L{layer} attention"] = (kinds_part(model, ATTENTION)
                                            & Subnetwork.empty(model).keep_layer(model, layer))
        parts[f"L{layer} MLP"] = mlp_part(model, layer)
    return parts


def cumulative(start: Subnetwork, parts: Mapping[str, Subnetwork],
               order: list[str] | None = None) -> list[tuple[str | None, Subnetwork]]:
    """``[(None, start), (name_1, start | part_1), (name_2, start | part_1 | part_2), ...]``
    along ``order`` (default: the order of ``parts``)."""
    order = list(parts) if order is None else list(order)
    unknown = [n for n in order if n not in parts]
    if unknown:
        raise KeyError(f"cumulative: no part named {unknown[0]!r}; the parts are "
                       f"{', '.join(list(parts)[:6])}{' ...' if len(parts) > 6 else ''}")
    out, current = [(None, start)], start
    for name in order:
        current = current | parts[name]
        out.append((name, current))
    return out


def greedy_add_back(start: Subnetwork, parts: Mapping[str, Subnetwork],
                    score: Callable[[Subnetwork], float], max_steps: int | None = None,
                    ) -> list[dict]:
    """Add parts to ``start`` one at a time, each time the one with the lowest score.

    At every step each remaining part is tried (``score(current | part)``); the
    lowest score wins, ties going to the part listed first. Parts that would add
    no entry (already contained) are dropped without being scored. Stops when no
    part is left or after ``max_steps`` additions (None: no limit).

    Returns one dict per step, the start first: ``step`` (0 for the start),
    ``added`` (the part's name; None for the start), ``new`` (entries it
    added), ``kept`` (entries kept after the step), ``score``, ``tried``
    (name -> score of every part tried at this step, so step 1's is each part
    added alone to the start; empty for the start) and ``subnetwork`` (the
    subnetwork after the step). ``score`` is called once for the start and once
    per part tried: at most 1 + P + (P - 1) + ... times."""
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 0):
        raise ValueError(f"greedy_add_back: max_steps must be a non-negative int or None, "
                         f"got {max_steps!r}")
    current = start
    steps = [{"step": 0, "added": None, "new": 0, "kept": start.count(),
              "score": float(score(start)), "tried": {}, "subnetwork": start}]
    remaining = list(parts)
    while remaining and (max_steps is None or len(steps) <= max_steps):
        best, tried = None, {}
        for name in list(remaining):
            candidate = current | parts[name]
            new = candidate.count() - current.count()
            if new == 0:
                remaining.remove(name)
                continue
            s = tried[name] = float(score(candidate))
            if best is None or s < best[0]:
                best = (s, name, candidate, new)
        if best is None:
            break
        s, name, current, new = best
        remaining.remove(name)
        steps.append({"step": len(steps), "added": name, "new": new, "kept": current.count(),
                      "score": s, "tried": tried, "subnetwork": current})
    return steps


def gap_closed(value: float, start: float, end: float) -> float:
    """(start - value) / (start - end): 0 at ``start``, 1 at ``end`` (e.g. the share of
    the cross-entropy gap between the bigram subnetwork and the full model that a
    subnetwork closes). NaN when start == end."""
    gap = start - end
    return (start - value) / gap if gap else float("nan")
