"""Per-token surprisal of a language model, in bits.

Surprisal of token t_{i+1} is -log2 p(t_{i+1} | t_0..t_i). The cross-entropy
of a model on a text is its mean surprisal, reported in nats (x ln 2) where
the paper and PyTorch do.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .inputs import check_causal_lm, check_token_ids
from .progress import progress_bar

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
    LM), computed in batches on the model's device; returned on the CPU as float32.
    ``input_ids``: (n, seq) integer ids of the model's vocabulary, n >= 1."""
    vocab = check_causal_lm(model, where="lm_surprisal: ")
    check_token_ids(input_ids, vocab, where="lm_surprisal: ")
    if len(input_ids) == 0:
        raise ValueError("lm_surprisal: input_ids has no rows: pass at least one sequence")
    return torch.cat([logits_surprisal(logits, x).cpu() for x, logits in
                      lm_logits(model, input_ids, batch_size, progress, "surprisal")])


def logits_surprisal(logits: torch.Tensor, input_ids: torch.Tensor) -> torch.Tensor:
    """(n, seq-1) surprisal in bits of each next token, from (n, seq, V) logits, on
    the logits' device (float32)."""
    nll = F.cross_entropy(logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:],
                          reduction="none")
    return nll / LN2


def cross_entropy_nats(surprisal_bits: torch.Tensor) -> float:
    """Mean cross-entropy in nats/token from surprisals in bits, over finite entries."""
    finite = surprisal_bits[torch.isfinite(surprisal_bits)]
    return float(finite.double().mean() * LN2)
