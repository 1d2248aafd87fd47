"""Which lambda of a sweep to analyse: the paper's rule and the course's.

A lambda sweep gives one subnetwork per lambda: its kept (active) entries and
its bigram correlation r. Two rules pick the one to study further:

* :func:`analysed_lambda` - the paper's (Chang & Bergen 2025, Appendix A.3):
  the sparsest subnetwork whose r is within 0.04 of the lambda = 0
  subnetwork's r (lambda 0 trains with no density pressure: its r is the best
  the mask reaches). Sparsest = fewest kept entries; on a tie, the larger
  lambda.
* :func:`course_lambda` - the tiny profile's own rule (Chapter 3): the
  smallest lambda whose subnetwork reaches r >= 0.95 (the paper's headline)
  with at most 5% of the maskable entries. The tiny profile's default, 3, is
  this rule on the tested values 1, 2, 3, 10 plus one step of margin (2 meets
  it too); on Chapter 3's sweep (0, 1, 3, 10, 100) the rule itself gives 3,
  where the paper's gives 10.

:func:`lambda_choices` sets both side by side. A sweep is a sequence of rows
(mappings) with a lambda, a kept count and an r; the key names are arguments,
so Chapter 3's table rows (``"r (drop inf)"``) go in as they are. The
endpoints -inf (the full model) and +inf (the empty one) are not trained
subnetworks: both rules skip them. Defined in Chapter 3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ..plumbing.inputs import check_int, check_real, check_type

__all__ = ["analysed_lambda", "course_lambda", "lambda_choices", "PAPER_TOLERANCE",
           "COURSE_MIN_R", "COURSE_MAX_SHARE"]

#: Appendix A.3: the analysed subnetwork's r is within this of lambda 0's.
PAPER_TOLERANCE = 0.04
#: The course's rule (tiny profile, Chapter 3): r at least this ...
COURSE_MIN_R = 0.95
#: ... with at most this share of the maskable entries kept.
COURSE_MAX_SHARE = 0.05


def _rows(rows, lam_key: str, kept_key: str, r_key: str, where: str) -> list[tuple]:
    """(lambda, kept, r) of every finite-lambda row, checked."""
    check_type("rows", rows, Sequence, "pass a list of rows (dicts) with a lambda, a kept "
               "count and an r, e.g. Chapter 3's sweep table", where=where)
    if isinstance(rows, (str, bytes)):
        raise TypeError(f"{where}rows is a string: pass a list of dicts")
    if not rows:
        raise ValueError(f"{where}the sweep is empty: pass one row per trained lambda "
                         "(train_subnetwork(profile, lam) for each of profile.lambdas)")
    out, seen = [], set()
    for i, row in enumerate(rows):
        check_type(f"rows[{i}]", row, Mapping, "each row is a dict", where=where)
        missing = [k for k in (lam_key, kept_key, r_key) if k not in row]
        if missing:
            raise KeyError(f"{where}rows[{i}] has no {missing[0]!r} (its keys: "
                           f"{', '.join(map(str, row))}); name the column with "
                           f"lam_key=, kept_key= or r_key=")
        lam = row[lam_key]
        check_real(f"rows[{i}][{lam_key!r}]", lam, 0, math.inf, also=(-math.inf,), where=where,
                   why="a lambda (-inf and inf are the endpoints)")
        if math.isinf(lam):
            continue
        if float(lam) in seen:
            raise ValueError(f"{where}lambda {lam:g} appears twice: keep one row per lambda")
        seen.add(float(lam))
        check_int(f"rows[{i}][{kept_key!r}]", row[kept_key], 0, where=where)
        check_real(f"rows[{i}][{r_key!r}]", row[r_key], -1, 1, where=where,
                   why="a Pearson correlation")
        out.append((float(lam), int(row[kept_key]), float(row[r_key])))
    return out


def analysed_lambda(rows: Sequence[Mapping], *, lam_key: str = "lambda",
                    kept_key: str = "kept", r_key: str = "r",
                    tolerance: float = PAPER_TOLERANCE) -> float:
    """The paper's analysed lambda (Appendix A.3): among the sweep's subnetworks
    whose r is at least (lambda 0's r) - ``tolerance``, the one with the fewest
    kept entries (a tie: the larger lambda). The sweep must contain lambda 0."""
    where = "analysed_lambda: "
    check_real("tolerance", tolerance, 0, 2, where=where)
    sweep = _rows(rows, lam_key, kept_key, r_key, where)
    r0 = [r for lam, _, r in sweep if lam == 0.0]
    if not r0:
        raise ValueError(f"{where}the sweep has no lambda 0 (its lambdas: "
                         f"{', '.join(f'{lam:g}' for lam, _, _ in sweep) or 'only endpoints'}"
                         "): the paper's rule measures r against lambda 0's; train it too, "
                         "e.g. train_subnetwork(profile, 0.0)")
    # r >= r0 - tolerance, not r0 - r <= tolerance: in binary 0.99 - 0.95 > 0.04, while
    # 0.99 - 0.04 == 0.95, so a sweep quoted to two or three decimals meets the boundary
    close = [(kept, -lam) for lam, kept, r in sweep if r >= r0[0] - tolerance]
    return -min(close)[1]


def course_lambda(rows: Sequence[Mapping], n_entries: int, *, lam_key: str = "lambda",
                  kept_key: str = "kept", r_key: str = "r", min_r: float = COURSE_MIN_R,
                  max_share: float = COURSE_MAX_SHARE) -> float | None:
    """The course's rule (Chapter 3): the smallest lambda whose subnetwork has
    r >= ``min_r`` and keeps at most ``max_share`` of the ``n_entries`` maskable
    entries; None when no lambda of the sweep meets both."""
    where = "course_lambda: "
    check_int("n_entries", n_entries, 1, where=where)
    check_real("min_r", min_r, -1, 1, where=where)
    check_real("max_share", max_share, 0, 1, where=where)
    sweep = _rows(rows, lam_key, kept_key, r_key, where)
    too_many = [lam for lam, kept, _ in sweep if kept > n_entries]
    if too_many:
        raise ValueError(f"{where}lambda {too_many[0]:g} keeps more than n_entries = "
                         f"{n_entries:,}: pass the number of maskable entries "
                         "(count_maskable(model), or a result's n_entries)")
    ok = [lam for lam, kept, r in sweep if r >= min_r and kept <= max_share * n_entries]
    return min(ok) if ok else None


def lambda_choices(rows: Sequence[Mapping], n_entries: int, *, lam_key: str = "lambda",
                   kept_key: str = "kept", r_key: str = "r") -> dict:
    """Both rules on one sweep: ``paper`` (A.3's analysed lambda), ``course`` (the
    course's rule, or None), ``r0`` (lambda 0's r) and ``threshold`` (r0 - 0.04)."""
    keys = dict(lam_key=lam_key, kept_key=kept_key, r_key=r_key)
    paper = analysed_lambda(rows, **keys)
    r0 = next(float(row[r_key]) for row in rows if float(row[lam_key]) == 0.0)
    return {"paper": paper, "course": course_lambda(rows, n_entries, **keys), "r0": r0,
            "threshold": r0 - PAPER_TOLERANCE}
