"""Query/key versus value/output: how a subnetwork's attention part divides.

Chang & Bergen (2025, section 4.2) split the attention entries of a bigram
subnetwork in two: the *query/key* entries, which decide where a head looks,
and the *value/output* entries, which decide what it moves (Pythia 1B at its
final checkpoint: 6.3% of the subnetwork in query/key, 11.6% in value/output;
6.3 + 11.6 = 17.9, the 18% that the section's "82% in MLPs" leaves for
attention, so they read as shares of the whole subnetwork).

:func:`query_key_value_output` counts a :class:`~bigramlab.methods.subnetwork.Subnetwork`'s
kept entries both ways: q and k rows (GPT-2: columns) of the fused q/k/v matrix
on one side; its v rows and the whole attention output matrix o on the other.
``split`` says how the fused matrix is cut:

* ``"per_head"`` (default): the architecture's true layout
  (``MaskableMatrix.part``): GPT-NeoX groups its rows per head, [q_0 k_0 v_0 | q_1 ...];
* ``"thirds"``: contiguous thirds [Q | K | V], the paper's public helper's
  reading. Right for GPT-2, whose two splits agree; wrong for GPT-NeoX/Pythia,
  where the last third holds the q, k and v of the last heads. With it the
  course can say what the paper's code would report on the same mask.

Defined in Chapter 4 (where the subnetwork lives).
"""

from __future__ import annotations

import math

from .anatomy import maskable_matrices

__all__ = ["SPLITS", "query_key_value_output"]

#: How the fused q/k/v matrix can be cut: the true per-head layout, or contiguous thirds.
SPLITS = ("per_head", "thirds")


def _value_entries(kept, m, split: str) -> int:
    """Kept entries of the fused q/k/v matrix ``m`` that ``split`` calls values."""
    if split == "per_head":
        return int((kept & m.part("v")).sum())
    n_out = m.shape[m.out_axis]
    return int(kept.narrow(m.out_axis, 2 * n_out // 3, n_out // 3).sum())


def query_key_value_output(subnetwork, model, split: str = "per_head") -> dict:
    """The subnetwork's attention entries split into query/key and value/output.

    Returns ``query_key`` and ``value_output`` (kept entries), ``attention``
    (their sum: every kept entry of the q/k/v and o matrices), ``kept`` (the
    whole subnetwork), ``query_key_share`` and ``value_output_share`` (of the
    whole subnetwork, the paper's 6.3% and 11.6%) and
    ``query_key_of_attention`` (query/key's part of the attention entries; nan
    when the subnetwork keeps no attention entry)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} (the true per-head layout, or the "
                         f"paper's helper's contiguous thirds), not {split!r}")
    subnetwork.check(model)
    query_key = value_output = 0
    for m in maskable_matrices(model):
        kept = subnetwork[m.name]
        if m.role == "o":
            value_output += int(kept.sum())
        elif m.role == "qkv":
            values = _value_entries(kept, m, split)
            value_output += values
            query_key += int(kept.sum()) - values
    total = subnetwork.count()
    attention = query_key + value_output
    return {"query_key": query_key, "value_output": value_output, "attention": attention,
            "kept": total,
            "query_key_share": query_key / total if total else math.nan,
            "value_output_share": value_output / total if total else math.nan,
            "query_key_of_attention": query_key / attention if attention else math.nan}
