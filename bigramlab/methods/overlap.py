"""Overlap of two subnetworks, and how much of it chance would give (Chang & Bergen 2025,
section 6.2).

Two masks over the same model overlap in the entries both keep. Whether that
overlap means anything depends on chance: two masks that each keep half of a
matrix share a quarter of it at random. The paper's chance level places each
subnetwork's kept entries at random *within each weight matrix* (so both keep
their per-matrix counts). Under that placement the overlap in one matrix of
``N`` entries, with ``a`` and ``b`` kept, is hypergeometric (draw ``b`` of
``N`` entries of which ``a`` are marked), and the matrices are independent, so
the total overlap is a sum of independent hypergeometric variables: its mean,
standard deviation and upper tail are computed exactly here (the reference
implementation estimates them with 10,000 shuffles).

* :func:`chance_overlap` - the exact distribution of the overlap under random
  placement: mean, standard deviation, and the tail probability.
* :func:`overlap_stats` - the observed overlap of two subnetworks next to it.

Defined in Chapter 4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal, stats

__all__ = ["ChanceOverlap", "chance_overlap", "overlap_stats"]

# Each matrix's hypergeometric pmf is kept within this many standard deviations of its
# mean: the hypergeometric tail is sub-Gaussian, so the mass left out is far below the
# 1e-15 that double precision (and the FFT convolution) resolves anyway.
_WIDTH_SD = 25.0
# Probabilities below this share of the largest one are numerical noise of the FFT.
_RESOLUTION = 1e-15


@dataclass(frozen=True)
class ChanceOverlap:
    """The overlap of two masks when each keeps its per-matrix count at random places.

    ``mean`` and ``sd`` are in entries; ``support``/``pmf`` give the distribution
    (``pmf[i]`` is the probability that the overlap equals ``support[i]``)."""

    mean: float
    sd: float
    support: np.ndarray
    pmf: np.ndarray

    def p_at_least(self, observed: int) -> float:
        """P(overlap >= observed) under random placement (one-sided p-value), exact to
        about 1e-15: a smaller p-value comes out as 0."""
        return float(np.clip(self.pmf[self.support >= observed].sum(), 0.0, 1.0))


def _counts(a, b) -> list[tuple[int, int, int]]:
    """(entries, kept by a, kept by b) per matrix; the two masks must cover the same matrices."""
    if set(a) != set(b):
        missing = sorted(set(a) ^ set(b))[0]
        raise ValueError(f"the two subnetworks do not mask the same matrices: {missing!r} is "
                         "in only one of them; compare subnetworks of the same model")
    out = []
    for name in a:
        if a[name].shape != b[name].shape:
            raise ValueError(f"{name}: shapes differ, {tuple(a[name].shape)} vs "
                             f"{tuple(b[name].shape)}; compare subnetworks of the same model")
        out.append((a[name].numel(), int(a[name].sum()), int(b[name].sum())))
    return out


def _moments(n: int, ka: int, kb: int) -> tuple[float, float]:
    """Mean and variance of one matrix's hypergeometric overlap."""
    if n <= 1:
        return (ka * kb / n if n else 0.0), 0.0
    p = ka / n
    return kb * p, kb * p * (1 - p) * (n - kb) / (n - 1)


def _matrix_pmf(n: int, ka: int, kb: int, mean: float, sd: float) -> tuple[int, np.ndarray]:
    """(lowest overlap kept, pmf from there) of one matrix's hypergeometric overlap."""
    lo = max(0, ka + kb - n, int(np.floor(mean - _WIDTH_SD * sd)))
    hi = min(ka, kb, int(np.ceil(mean + _WIDTH_SD * sd)))
    return lo, stats.hypergeom(n, ka, kb).pmf(np.arange(lo, hi + 1))  # n entries, ka marked, kb drawn


def chance_overlap(a, b) -> ChanceOverlap:
    """The exact distribution of the overlap of ``a`` and ``b`` (dicts or Subnetworks:
    name -> bool mask) when each keeps its count of every matrix at random places."""
    mean = var = 0.0
    offset, pmf = 0, np.ones(1)
    for n, ka, kb in _counts(a, b):
        m, v = _moments(n, ka, kb)
        mean, var = mean + m, var + v
        lo, p = _matrix_pmf(n, ka, kb, m, v ** 0.5)
        offset += lo
        # the distribution of a sum of independent variables is the convolution of theirs
        # (scipy picks direct or FFT convolution by size)
        pmf = np.clip(signal.convolve(pmf, p), 0, None)
        keep = np.flatnonzero(pmf > _RESOLUTION * pmf.max())  # trim the noise at the ends
        offset, pmf = offset + keep[0], pmf[keep[0]:keep[-1] + 1]
    pmf = pmf / pmf.sum()
    return ChanceOverlap(mean=mean, sd=float(np.sqrt(var)),
                         support=np.arange(offset, offset + len(pmf)), pmf=pmf)


def overlap_stats(a, b) -> dict:
    """How much subnetworks ``a`` and ``b`` (of the same model) overlap, against chance.

    Returns a dict of entries counts and shares:
    ``kept_a``, ``kept_b``, ``both``, ``only_a``, ``only_b``, ``entries`` (all
    maskable entries); ``share_of_all`` (both / entries, the paper's overlap),
    ``share_of_a`` / ``share_of_b`` (both / kept_a, both / kept_b), ``jaccard``
    (both / kept by either); ``chance`` (expected overlap under random
    placement within each matrix), ``chance_sd``, ``ratio`` (both / chance) and
    ``p_value`` (probability of at least this overlap by chance)."""
    counts = _counts(a, b)
    both = sum(int((a[n] & b[n]).sum()) for n in a)
    kept_a, kept_b = sum(c[1] for c in counts), sum(c[2] for c in counts)
    entries = sum(c[0] for c in counts)
    either = kept_a + kept_b - both
    chance = chance_overlap(a, b)
    return {"kept_a": kept_a, "kept_b": kept_b, "both": both, "only_a": kept_a - both,
            "only_b": kept_b - both, "entries": entries, "share_of_all": both / entries,
            "share_of_a": both / kept_a if kept_a else 0.0,
            "share_of_b": both / kept_b if kept_b else 0.0,
            "jaccard": both / either if either else 0.0,
            "chance": chance.mean, "chance_sd": chance.sd,
            "ratio": both / chance.mean if chance.mean else float("nan"),
            "p_value": chance.p_at_least(both)}
