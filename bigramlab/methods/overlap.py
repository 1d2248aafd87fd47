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

The paper's own null (its code, ``compute_circuit_overlaps.py``) is another
one: each layer is cut into six blocks (q, k and v as three contiguous
thirds of the fused matrix, o, MLP in, MLP out), every block stored as
(out, in) (GPT-2's Conv1D weights transposed first), and the ROWS of every
block of both masks are shuffled, 10,000 times; p is the share of shuffles
whose overlap reaches the observed one. A row shuffle keeps each row's
pattern, hence each block's count per input column: when both masks keep
entries in the same input columns, chance is higher under it than under
uniform placement. (For GPT-NeoX the thirds are not q, k and v, whose rows
are interleaved per head; the shuffle is still a valid null within each
third.) Its mean and variance have closed forms:

Fix one block: masks A, B in {0,1}^(n x c), n rows. Shuffling the rows of
both, A' = A[alpha], B' = B[beta], the overlap is
X = sum_i sum_k A[alpha(i), k] B[beta(i), k] = sum_i C[i, pi(i)], with
C = A B^T (C[i, j] = columns where row i of A and row j of B are both kept)
and pi = beta o alpha^-1, uniform on the permutations of n rows whatever
alpha is. X is Hoeffding's combinatorial statistic (Hoeffding 1951): with
P(pi(i) = j) = 1/n and P(pi(i) = j, pi(i') = j') = 1/(n (n-1)) (i != i',
j != j'),

    E X   = (1/n) sum_ij C[i, j] = (1/n) sum_k colsum_A(k) colsum_B(k),
    Var X = 1/(n-1) sum_ij d[i, j]^2,   d = C - r_i - s_j + g,

r_i, s_j, g being C's row means, column means and grand mean
(r_i = A[i] . colsum_B / n, s_j = B[j] . colsum_A / n, g = E X / n); the
sum of squares expands to sum C^2 - n sum r^2 - n sum s^2 + n^2 g^2, and
sum C^2 = ||A B^T||_F^2 = <A^T A, B^T B>_F (whichever product is smaller).
Blocks are shuffled independently, so the total's mean and variance are the
sums over blocks, and by Hoeffding's combinatorial central limit theorem the
total is close to normal for large blocks. The p-value has no closed form
here: :func:`row_shuffle_samples` draws the paper's shuffles vectorised (all
samples of a block at once, as argsorts of random keys) on any device.

* :func:`row_blocks` - the paper's blocks of a mask, as (out, in) matrices.
* :func:`row_shuffle_null` - the exact mean and variance of the overlap.
* :func:`row_shuffle_samples` - overlaps of vectorised row shuffles.
* :func:`overlap_table` - the paper's Table 3 row under both nulls.

Defined in Chapter 4; the row-shuffle null in Chapter 8.
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
import torch
from scipy import signal, stats

from ..plumbing.inputs import check_int
from .anatomy import maskable_matrices

__all__ = ["ChanceOverlap", "chance_overlap", "overlap_stats", "row_blocks", "RowShuffleNull",
           "row_shuffle_null", "row_shuffle_samples", "overlap_table"]

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


# -- the paper's null: row shuffles within blocks (Chapter 8) -----------------------------

def row_blocks(masks, model) -> list[tuple[str, torch.Tensor]]:
    """(name, (rows, cols) bool) for the paper's six blocks of every layer of ``masks``
    (a Subnetwork or dict name -> mask of ``model``'s maskable matrices): each
    matrix as (out, in) (the architecture table says how it is stored), the
    fused q/k/v matrix cut into three contiguous thirds of its rows, named
    ``<parameter>:q``, ``:k``, ``:v``."""
    out = []
    for m in maskable_matrices(model):
        if m.name not in masks:
            raise ValueError(f"the mask has no entry for {m.name}: pass a mask of this model "
                             "(Subnetwork.full(model) has every matrix)")
        x = torch.as_tensor(masks[m.name]).bool()
        if tuple(x.shape) != m.shape:
            raise ValueError(f"mask {m.name} has shape {tuple(x.shape)}, the model's parameter "
                             f"{m.shape}: pass a mask of this model")
        x = x.T if m.out_axis == 1 else x  # rows = output features
        if m.role == "qkv":
            third = x.shape[0] // 3
            out += [(f"{m.name}:{kind}", x[j * third:(j + 1) * third])
                    for j, kind in enumerate("qkv")]
        else:
            out.append((m.name, x))
    return out


@dataclass(frozen=True)
class RowShuffleNull:
    """The exact mean and variance (in entries) of the overlap of two masks when the
    rows of every block of both are shuffled (the paper's null); ``entries``: all
    mask entries, to turn counts into the paper's shares."""

    mean: float
    var: float
    entries: int

    @property
    def sd(self) -> float:
        return math.sqrt(self.var)


def _pairs(a, b, model):
    ba, bb = row_blocks(a, model), row_blocks(b, model)
    return [(xa, xb) for (_, xa), (_, xb) in zip(ba, bb)]


def _block_moments(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """Mean and variance of sum_i C[i, pi(i)], C = a b^T, pi a uniform permutation."""
    n = a.shape[0]
    ca, cb = a.sum(0, dtype=torch.float64), b.sum(0, dtype=torch.float64)
    mean = float(ca @ cb) / n
    if n < 2 or mean == 0:
        return mean, 0.0
    cols = (ca > 0) & (cb > 0)  # only shared columns contribute to C
    ia, ib = a[:, cols].any(1), b[:, cols].any(1)
    x, y = a[ia][:, cols].float(), b[ib][:, cols].float()  # 0/1: float32 products are exact
    p, q, k = len(x), len(y), int(cols.sum())
    if p * q <= k * k:
        sum_c2 = float(((x @ y.T).double() ** 2).sum())
    else:
        sum_c2 = float(((x.T @ x).double() * (y.T @ y).double()).sum())
    r = a[:, cols].double() @ cb[cols] / n  # row means of C
    s = b[:, cols].double() @ ca[cols] / n  # column means of C
    g = mean / n
    ss = sum_c2 - n * float((r * r).sum()) - n * float((s * s).sum()) + n * n * g * g
    return mean, max(ss, 0.0) / (n - 1)


def row_shuffle_null(a, b, model) -> RowShuffleNull:
    """The exact mean and variance of the overlap of ``a`` and ``b`` (Subnetworks or
    dicts of ``model``'s masks) under the paper's row-shuffle null (see the module
    docstring for the derivation)."""
    mean = var = 0.0
    entries = 0
    for xa, xb in _pairs(a, b, model):
        m, v = _block_moments(xa, xb)
        mean, var, entries = mean + m, var + v, entries + xa.numel()
    return RowShuffleNull(mean=mean, var=var, entries=entries)


def row_shuffle_samples(a, b, model, n_samples: int = 10_000, seed: int = 0,
                        device=None) -> torch.Tensor:
    """Overlaps (entries, int64, on the CPU) of ``n_samples`` row shuffles of every block
    of ``a`` and ``b``, the paper's Monte-Carlo null, drawn vectorised on ``device``
    (default: the CPU): per block, C = A B^T between the rows of A that keep
    anything and all rows of B, and for all samples at once a uniform permutation
    per sample (the argsort of float64 random keys) picks C[i, pi(i)]. Seeded: the
    same seed gives the same samples on one device."""
    check_int("n_samples", n_samples, 1, where="row_shuffle_samples: ")
    check_int("seed", seed, 0, where="row_shuffle_samples: ")
    device = torch.device(device or "cpu")
    g = torch.Generator(device).manual_seed(seed)
    total = torch.zeros(n_samples, dtype=torch.int64, device=device)
    for xa, xb in _pairs(a, b, model):
        xa, xb = xa.to(device), xb.to(device)
        ia = xa.any(1).nonzero().squeeze(1)
        if not len(ia) or not bool(xb.any()):
            continue  # nothing can overlap in this block
        n = xa.shape[0]
        # exact in float32: the entries are counts of 0/1 products, far below 2^24
        c = (xa[ia].float() @ xb.float().T).round().to(torch.int32)  # (kept rows of A, n)
        base = torch.arange(len(ia), device=device) * n
        chunk = max(1, (1 << 22) // n)
        for s0 in range(0, n_samples, chunk):
            cs = min(chunk, n_samples - s0)
            perm = torch.rand(cs, n, generator=g, device=device, dtype=torch.float64).argsort(1)
            rows = perm if len(ia) == n else perm[:, ia]
            total[s0:s0 + cs] += c.view(-1)[rows + base].sum(1, dtype=torch.int64)
    return total.cpu()


def overlap_table(a, b, model, n_samples: int = 10_000, seed: int = 0, device=None) -> list[dict]:
    """The paper's Table 3 row for masks ``a`` (the bigram subnetwork) and ``b`` (the
    optimal one) under both nulls, as shares of all mask entries:

    ``null`` ('row shuffle (paper)' or 'uniform'), ``a`` and ``b`` (kept shares),
    ``overlap`` (|a and b| / entries), ``expected`` (the null's mean), ``x_chance``
    (overlap / expected), ``z`` ((overlap - mean) / sd), ``p`` (row shuffle: the
    share of ``n_samples`` shuffles at or above the observed overlap, as the paper
    computes it; uniform: exact), ``contained`` (|a and b| / |a|)."""
    st = overlap_stats(a, b)
    n, both = st["entries"], st["both"]
    null = row_shuffle_null(a, b, model)
    samples = row_shuffle_samples(a, b, model, n_samples, seed, device)
    common = {"a": st["kept_a"] / n, "b": st["kept_b"] / n, "overlap": both / n,
              "contained": st["share_of_a"]}

    def row(name, mean, sd, p):
        return {"null": name, **common, "expected": mean / n,
                "x_chance": both / mean if mean else float("nan"),
                "z": (both - mean) / sd if sd else float("nan"), "p": p}
    return [row("row shuffle (paper)", null.mean, null.sd,
                float((samples >= both).double().mean())),
            row("uniform", st["chance"], st["chance_sd"], st["p_value"])]
