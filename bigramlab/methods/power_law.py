"""Power laws of r against active parameters, one per checkpoint (section 4.1).

The paper (Chang & Bergen 2025, section 4.1, Figure 2 left) trains a lambda
sweep at each pretraining checkpoint, plots each subnetwork's bigram
correlation r against its active (kept) parameters, and draws a power-law fit
per checkpoint. Its reading: after about step 4K the same number of
parameters buys less r (500K parameters: r 0.949 at step 4K, 0.919 at the
final step 143K), as if the bigram parameters were "partially exapted".

* :func:`fit_power_law` - r = a * N ** b, fitted by least squares on
  log r = log a + b log N (``scipy.stats.linregress``). The paper gives no
  formula for its curves; this is the plain power law in log-log space, the
  form a straight line on the figure's log axes draws.
* :func:`fit_per_checkpoint` - one fit per checkpoint of a sweep table.
* :func:`compare_at` - each fit evaluated at one common parameter count (by
  default the geometric middle of the range every checkpoint's sweep covers,
  so no fit extrapolates), the comparison the paper makes, and whether the
  final checkpoint's r at that count is below the best earlier one.

Points with no active parameters (the +inf endpoint) or r <= 0 have no
logarithm: they are refused with the reason, as are the -inf endpoint's rows
(the full model is not a subnetwork of the sweep). Defined in Chapter 5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..plumbing.inputs import check_real, check_type

__all__ = ["PowerLaw", "fit_power_law", "fit_per_checkpoint", "compare_at"]


@dataclass(frozen=True)
class PowerLaw:
    """r = a * N ** b, fitted on ``n_points`` subnetworks of n_min..n_max active
    parameters; ``r2``: the fit's R^2 in log-log space."""

    a: float
    b: float
    r2: float
    n_min: int
    n_max: int
    n_points: int

    def __call__(self, n) -> np.ndarray | float:
        """The fitted r at ``n`` active parameters (a number or an array)."""
        out = self.a * np.asarray(n, dtype=float) ** self.b
        return float(out) if out.ndim == 0 else out

    def covers(self, n: float) -> bool:
        """Whether ``n`` lies inside the fitted range (no extrapolation)."""
        return self.n_min <= n <= self.n_max


def fit_power_law(active: Sequence, r: Sequence) -> PowerLaw:
    """The least-squares power law r = a * N ** b in log-log space, through the
    points (``active[i]``, ``r[i]``): at least two distinct counts, every count
    >= 1 and every r > 0."""
    where = "fit_power_law: "
    n = np.asarray(active, dtype=float)
    y = np.asarray(r, dtype=float)
    if n.ndim != 1 or n.shape != y.shape:
        raise ValueError(f"{where}active and r must be two lists of one length, got shapes "
                         f"{n.shape} and {y.shape}")
    if not (np.isfinite(n).all() and np.isfinite(y).all()):
        raise ValueError(f"{where}active and r must be finite numbers (no NaN or inf)")
    if (n < 1).any():
        raise ValueError(f"{where}a subnetwork with {n[n < 1][0]:g} active parameters has no "
                         "logarithm: leave out the empty endpoint (lambda = +inf)")
    if (y <= 0).any():
        raise ValueError(f"{where}r = {y[y <= 0][0]:g} has no logarithm: a power law fits "
                         "positive correlations only; leave that subnetwork out")
    if np.unique(n).size < 2:
        raise ValueError(f"{where}a power law needs at least two different active counts, "
                         f"got {n.size} point(s) with {np.unique(n).size} distinct: train "
                         "more lambdas")
    fit = stats.linregress(np.log(n), np.log(y))
    return PowerLaw(a=float(math.exp(fit.intercept)), b=float(fit.slope),
                    r2=float(fit.rvalue ** 2), n_min=int(n.min()), n_max=int(n.max()),
                    n_points=int(n.size))


def fit_per_checkpoint(rows: Sequence[Mapping], *, checkpoint_key: str = "checkpoint",
                       lam_key: str = "lambda", kept_key: str = "kept",
                       r_key: str = "r") -> dict[str, PowerLaw]:
    """One :func:`fit_power_law` per checkpoint of a sweep table (rows with a
    checkpoint, a lambda, a kept count and an r), in the order the checkpoints
    first appear (oldest first, as the paper lists them). Rows at lambda +-inf
    (the endpoints, not trained subnetworks) are skipped."""
    where = "fit_per_checkpoint: "
    check_type("rows", rows, Sequence, "pass a list of dicts, e.g. collect_sweep(...)'s rows",
               where=where)
    if not rows:
        raise ValueError(f"{where}the sweep is empty: pass one row per (checkpoint, lambda)")
    points: dict[str, list] = {}
    for i, row in enumerate(rows):
        check_type(f"rows[{i}]", row, Mapping, "each row is a dict", where=where)
        missing = [k for k in (checkpoint_key, lam_key, kept_key, r_key) if k not in row]
        if missing:
            raise KeyError(f"{where}rows[{i}] has no {missing[0]!r} (its keys: "
                           f"{', '.join(map(str, row))}); name the column with "
                           "checkpoint_key=, lam_key=, kept_key= or r_key=")
        check_real(f"rows[{i}][{lam_key!r}]", row[lam_key], 0, math.inf,
                   also=(-math.inf,), where=where)
        if math.isinf(row[lam_key]):
            continue
        points.setdefault(str(row[checkpoint_key]), []).append((row[kept_key], row[r_key]))
    fits = {}
    for ckpt, pts in points.items():
        try:
            fits[ckpt] = fit_power_law(*zip(*pts))
        except ValueError as e:
            raise ValueError(f"{where}checkpoint {ckpt}: {str(e).split(': ', 1)[1]}") from None
    if not fits:
        raise ValueError(f"{where}every row is an endpoint (lambda +-inf): nothing to fit")
    return fits


def compare_at(fits: Mapping[str, PowerLaw], n: float | None = None) -> dict:
    """Each checkpoint's fitted r at ``n`` active parameters (default: the geometric
    middle of the range every fit covers), oldest checkpoint first.

    Returns ``n``, ``rows`` (checkpoint, r at n, whether n is inside that
    checkpoint's fitted range), ``peak`` (the earlier checkpoint with the highest
    r at n, the final one excluded), ``final`` (the last checkpoint) and
    ``later_buys_less``: whether the final checkpoint's r at n is below the peak's
    (the paper's reading of Figure 2 left); None with a single checkpoint."""
    where = "compare_at: "
    check_type("fits", fits, Mapping, "pass fit_per_checkpoint(...)'s dict", where=where)
    if not fits:
        raise ValueError(f"{where}no fits: pass fit_per_checkpoint(rows) of a non-empty sweep")
    lo = max(f.n_min for f in fits.values())
    hi = min(f.n_max for f in fits.values())
    if n is None:
        if lo > hi:
            raise ValueError(f"{where}the checkpoints' sweeps cover no common range of active "
                             f"parameters ({lo:,} > {hi:,}): pass n= explicitly (the fits "
                             "then extrapolate) or add lambdas that overlap")
        n = math.sqrt(lo * hi)
    check_real("n", n, 1, math.inf, hi_open=True, where=where, why="active parameters")
    rows = [{"checkpoint": c, "r_at_n": f(n), "in_range": f.covers(n)} for c, f in fits.items()]
    final = rows[-1]
    earlier = rows[:-1]
    peak = max(earlier, key=lambda row: row["r_at_n"]) if earlier else None
    return {"n": float(n), "rows": rows, "peak": peak, "final": final,
            "later_buys_less": None if peak is None else final["r_at_n"] < peak["r_at_n"]}
