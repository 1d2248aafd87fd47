"""Measures: surprisal, cross-entropy, correlation (and a Zipf fit), in one place.

Surprisal of token t_{i+1} is -log2 p(t_{i+1} | t_0..t_i), in bits. The
cross-entropy of a model on a text is its mean surprisal, reported in nats
(x ln 2) where the paper and PyTorch do. How bigram-like a model is, is the
Pearson correlation of its surprisals with the bigram model's (Chang & Bergen
2025, section 3.1), and how far its whole next-token distribution is from the
bigram one, the cross-entropy from the bigram rows to it. Every measure over a
text shares one batching loop, :func:`lm_logits`. Defined in Chapter 1.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

from .precision import upcast
from ..plumbing.inputs import check_causal_lm, check_no_nan, check_token_ids
from ..plumbing.progress import progress_bar
from .bigrams import BigramModel

__all__ = ["LN2", "lm_logits", "lm_surprisal", "logits_surprisal", "cross_entropy_nats",
           "surprisal_correlation", "lm_bigram_cross_entropy", "batch_bigram_cross_entropy",
           "zipf_fit"]

LN2 = math.log(2.0)


def lm_logits(model, input_ids: torch.Tensor, batch_size: int = 32, progress: bool = False,
              desc: str = "LM"):
    """An iterator of ``(x, logits)`` for ``input_ids`` (batch, seq) in batches of
    ``batch_size`` rows, both on the model's device (no gradients): the one loop
    every measure over a text shares. The inputs are checked at once, not at the
    first batch."""
    vocab = check_causal_lm(model, where=f"{desc}: ")
    check_token_ids(input_ids, vocab, where=f"{desc}: ")
    return _batches(model, input_ids, batch_size, progress, desc)


@torch.no_grad()
def _batches(model, input_ids, batch_size, progress, desc):
    device = next(model.parameters()).device
    # leave=False: a finished bar goes away (chapters measure many models in a row)
    for i in progress_bar(range(0, len(input_ids), batch_size), enabled=progress, desc=desc,
                          leave=False):
        x = input_ids[i:i + batch_size].to(device)
        yield x, model(input_ids=x).logits


def lm_surprisal(model, input_ids: torch.Tensor, batch_size: int = 32,
                 progress: bool = False) -> torch.Tensor:
    """(n, seq-1) surprisal in bits of every next token under ``model`` (a causal
    LM), computed in batches on the model's device; returned on the CPU (float64 for a
    float64 model, else float32).
    ``input_ids``: (n, seq) integer ids of the model's vocabulary, n >= 1."""
    vocab = check_causal_lm(model, where="lm_surprisal: ")
    check_token_ids(input_ids, vocab, where="lm_surprisal: ")
    if len(input_ids) == 0:
        raise ValueError("lm_surprisal: input_ids has no rows: pass at least one sequence")
    return torch.cat([logits_surprisal(logits, x).cpu() for x, logits in
                      lm_logits(model, input_ids, batch_size, progress, "surprisal")])


def logits_surprisal(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """(n, seq-1) surprisal in bits of each next token, from (n, seq, V) logits, on
    the logits' device (float64 for float64 logits, else float32)."""
    nll = F.cross_entropy(upcast(logits[:, :-1]).transpose(1, 2), input_ids[:, 1:],
                          reduction="none")
    return nll / LN2


def cross_entropy_nats(surprisal_bits: torch.Tensor) -> float:
    """Mean cross-entropy in nats/token from surprisals in bits, over finite entries."""
    finite = surprisal_bits[torch.isfinite(surprisal_bits)]
    return float(finite.double().mean() * LN2)


def surprisal_correlation(model_bits, bigram_bits, inf: str = "max") -> float:
    """Pearson r between a model's and the bigram model's per-token surprisals.

    This is the paper's measure of how "bigram-like" a model or subnetwork is.
    Bigram surprisals are infinite where the bigram probability is 0, so
    infinities are handled as in the paper's code (``train_circuits.py``):

    * ``inf="max"``: every infinite value is replaced by the largest finite
      value of the same array (for both arrays);
    * ``inf="drop"`` (the paper's "dropinf"): positions with an infinite
      bigram surprisal are dropped; infinite model surprisals (rare: float
      underflow) are still replaced by the model's largest finite value.

    Inputs: tensors or arrays of the same shape (flattened). Uses
    ``scipy.stats.pearsonr`` in float64.
    """
    def flat(x):
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().double().numpy()
        return np.asarray(x, dtype=np.float64).reshape(-1)

    m, b = flat(model_bits), flat(bigram_bits)
    for name, x in (("model_bits", m), ("bigram_bits", b)):  # pearsonr would return nan
        check_no_nan(name, x, "NaN surprisals come from NaN logits or weights; fix those, or "
                     "drop the NaN positions from both inputs", where="surprisal_correlation: ")
    if m.shape != b.shape:
        raise ValueError(f"surprisals differ in size: {m.size} model vs {b.size} bigram")
    if inf not in ("max", "drop"):
        raise ValueError(f"inf must be 'max' or 'drop', got {inf!r}")

    def fill(x):
        bad = np.isinf(x)
        if bad.any():
            if bad.all():
                raise ValueError("every surprisal is infinite: nothing to correlate")
            x = x.copy()
            x[bad] = x[~bad].max()
        return x

    m = fill(m)
    if inf == "max":
        b = fill(b)
    else:
        keep = ~np.isinf(b)
        m, b = m[keep], b[keep]
    if m.size < 2:
        raise ValueError("need at least two finite positions to correlate")
    return float(stats.pearsonr(m, b)[0])


@torch.no_grad()
def lm_bigram_cross_entropy(model, bigram: BigramModel, input_ids: torch.Tensor,
                            batch_size: int = 32, progress: bool = True) -> float:
    """Mean cross-entropy, in nats, from the bigram distribution to the LM's output.

    For every position i of every sequence (all of them, as in the paper's
    ``compute_correlation_metrics``), CE_i = -sum_b P_bigram(b | x_i) log
    p_LM(b | x_0..x_i): how well the LM's whole next-token distribution
    matches the bigram row, not only at the token that came.  This is the
    loss that mask training minimizes (Chapter 3); for the full model it is
    the starting point.  The LM runs on its own device in batches; each
    batch's logits go to the bigram model's device (no copy when they share
    one).  Returns a float.  Shows a progress bar over the batches
    (``progress=False``: none).
    """
    total, n = 0.0, 0
    for x, logits in lm_logits(model, input_ids, batch_size, progress, "bigram cross-entropy"):
        total += batch_bigram_cross_entropy(bigram, logits, x) * x.numel()
        n += x.numel()
    if n == 0:
        raise ValueError("lm_bigram_cross_entropy of no sequences")
    return total / n


def batch_bigram_cross_entropy(bigram: BigramModel, logits: torch.Tensor,
                               input_ids: torch.Tensor) -> float:
    """Mean cross-entropy (nats) from the bigram rows of ``input_ids`` to one batch of
    LM ``logits``; the logits move to the bigram model's device (no copy when they agree)."""
    return float(bigram.cross_entropy(logits.to(bigram.device), input_ids.to(bigram.device)))


def zipf_fit(counts: torch.Tensor, lo: int = 10, hi: int = 1000) -> tuple[float, float]:
    """Fit log(count) = slope * log(rank) + intercept over ranks ``lo..hi``.

    ``counts``: any 1-D tensor of non-negative frequencies (order irrelevant);
    they are sorted in decreasing order, zeros dropped, and ranked from 1.
    Ranks beyond the number of non-zero counts are ignored.  Zipf's law says
    the slope is about -1.  Returns ``(slope, intercept)`` of the least-squares
    line in natural logs (``scipy.stats.linregress``).
    """
    c = torch.as_tensor(counts).detach().double().cpu().reshape(-1)
    c = torch.sort(c[c > 0], descending=True).values
    if not 1 <= lo < hi:
        raise ValueError(f"need 1 <= lo < hi, got lo={lo}, hi={hi}")
    if c.numel() < lo + 1:
        raise ValueError(f"only {c.numel()} non-zero counts: cannot fit ranks {lo}..{hi}")
    ranks = torch.arange(1, c.numel() + 1, dtype=torch.float64)
    sel = slice(lo - 1, min(hi, c.numel()))
    fit = stats.linregress(ranks[sel].log().numpy(), c[sel].log().numpy())
    return float(fit.slope), float(fit.intercept)
