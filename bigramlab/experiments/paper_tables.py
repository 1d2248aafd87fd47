"""The paper's Table 1 (and the two sizes that summaries of it fuse), Table 2,
and section 4.2's attention shares.

Chang & Bergen (2025) analyse one bigram subnetwork per model, at one lambda
per model (Table 1: the lambda, the active parameters, the total mask
parameters and the bigram correlation r). Two numbers from section 3.2 are
easy to confuse and are kept apart here:

* :data:`PLATEAU_ACTIVE` - about 10M active parameters: where the curves of r
  against active parameters flatten (Figure 1), whatever the model's size. It
  is not the size of any analysed subnetwork.
* :data:`SECTION_3_2` - Pythia 1B's analysed subnetwork (lambda 100): 1,378,087
  of its 805,306,368 mask parameters, 0.17%, r 0.959. The analysed subnetworks
  run from about 0.73M (GPT-2 large) to 7.2M (Pythia 160M) active parameters.

:func:`table1` gives one row per real profile: the total mask parameters are
counted on the profile's architecture (``count_maskable`` of a meta-device
model: attention and MLP weight matrices, which is what "non-embedding
parameters" means there); the analysed lambda, active count and r are the
paper's where the course's reference notes give them, derived from Table 3's
bigram share (3 significant digits) where only that is given, and None where
neither gives them. ``source`` says which. ``bigramlab.display.format_table1``
prints it.

:data:`TABLE2` is the paper's Table 2 in full: for three models, Pearson r
with the bigram surprisals of the full model, of the lambda = 0 bigram
subnetwork, and of that subnetwork's layer-0 output lens (a linear map fitted
from its state 0, the token embedding, to its last state, then its final
layer norm and unembedding). ``bigramlab.display.format_table2`` prints it.
:data:`SECTION_4_2` holds section 4.2's query/key and value/output shares of
Pythia 1B's bigram subnetwork (``methods.attention_roles`` computes them for
any subnetwork). Defined in Chapter 3 (Table 1), Chapter 4 (section 4.2) and
Chapter 6 (Table 2).
"""

from __future__ import annotations

from ..methods.anatomy import count_maskable
from ..plumbing.profiles import PROFILES
from ..worlds.models import make_meta_model

__all__ = ["PLATEAU_ACTIVE", "SECTION_3_2", "SECTION_4_2", "ANALYSED", "TABLE2",
           "TABLE2_COLUMNS", "table1"]

#: Section 3.2 / Figure 1: r plateaus at roughly 10M active parameters, whatever the size.
PLATEAU_ACTIVE = 10_000_000

#: Section 3.2 and Table 1: Pythia 1B's analysed subnetwork.
SECTION_3_2 = {"model": "pythia-1b", "lambda": 100.0, "active": 1_378_087,
               "total": 805_306_368, "percent": 0.17, "r": 0.959}

#: What the paper gives per model: (profile, analysed lambda, active, active share of Table 3, r).
#: Lambdas: section 5 names 10 for Pythia 160M and GPT-2 small, 100 for Pythia 1B and
#: GPT-2 large; the other released masks are lambda 10 (their analysed one is assumed to
#: be the released one). Shares: Table 3's "bigram" column (GPT-2 small: OpenAI's model,
#: not the authors' GPT-2 small*).
ANALYSED = (  # rows, not a dict: "gpt2" is a profile name here, not an architecture's
    ("pythia-14m", None, None, None, None),
    ("pythia-70m", 10.0, None, None, None),
    ("pythia-160m", 10.0, None, 0.0852, None),
    ("pythia-410m", 10.0, None, None, None),
    ("pythia-1b", 100.0, SECTION_3_2["active"], 0.00171, SECTION_3_2["r"]),
    ("gpt2", 10.0, None, 0.0107, None),
    ("gpt2-medium", 10.0, None, None, None),
    ("gpt2-large", 100.0, None, 0.00103, None),
)

#: Section 4.2: shares of Pythia 1B's bigram subnetwork (final checkpoint) in query/key and
#: in value/output entries. They sum to 17.9%, the attention part that "82% in MLPs"
#: leaves, so they are read as shares of the whole subnetwork (the paper's helper cuts
#: the fused q/k/v matrix into contiguous thirds: ``split="thirds"``).
SECTION_4_2 = {"model": "pythia-1b", "query_key_share": 0.063, "value_output_share": 0.116}

#: Table 2's columns: Pearson r with the bigram surprisals of ...
TABLE2_COLUMNS = ("full model", "lambda 0 subnetwork", "its layer-0 output lens")
#: Table 2 in full. GPT-2 small* is the authors' own GPT-2 small, trained with checkpoints.
TABLE2 = (
    {"model": "Pythia 160M", "full model": 0.69, "lambda 0 subnetwork": 0.964,
     "its layer-0 output lens": 0.615},
    {"model": "Pythia 1B", "full model": 0.632, "lambda 0 subnetwork": 0.987,
     "its layer-0 output lens": 0.936},
    {"model": "GPT-2 small*", "full model": 0.68, "lambda 0 subnetwork": 0.987,
     "its layer-0 output lens": 0.921},
)


def _source(lam, active, share, r) -> str:
    if active is not None:
        return "Table 1 / section 3.2"
    if share is not None:
        return "active = Table 3 share x total"
    if lam is not None:
        return "released lambda only"
    return "not in the course's notes"


def table1() -> list[dict]:
    """One row per real profile: ``model``, ``lambda`` (analysed), ``active``,
    ``total`` (mask parameters, counted), ``share`` (active / total), ``r`` and
    ``source`` (where the row's numbers come from); None where unknown."""
    rows = []
    for name, lam, active, share, r in ANALYSED:
        total = count_maskable(make_meta_model.unchecked(PROFILES[name]))
        source = _source(lam, active, share, r)
        if active is None and share is not None:
            active = round(share * total)
        rows.append({"model": name, "lambda": lam, "active": active, "total": total,
                     "share": None if active is None else active / total, "r": r,
                     "source": source})
    return rows
