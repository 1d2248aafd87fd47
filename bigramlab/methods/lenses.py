"""Lenses: reading a prediction, or the current token, off any state (Chapters 2 and 6).

Three lenses on the state ``h_l`` of a (possibly masked) network, as the paper's
section 5 describes them:

- **logit lens** {nostalgebraist 2020} (Chapter 2, ``residual.logit_lens``):
  ``unembed(ln_f(h_l))``, no fitted map;
- **output lens**: the network truncated after block l, the fitted map to the
  final state (``ResidualStats.maps()["output"]``), the final layer norm and
  the network's own unembedding. Scored by the Pearson r of its surprisals
  (bits) with those of the SAME network's own output (for a subnetwork: the
  subnetwork's output, not the full model's), +inf clipped to the largest
  finite value;
- **input lens**: the fitted map to the input embedding
  (``maps()["input"]``), no layer norm, logits = dot products with the INPUT
  embedding matrix; the label is the current token itself, scored by
  recall@k = share of positions whose token ranks among the top k.

Defined in Chapter 6.
"""

from __future__ import annotations

import math

import torch

from .precision import upcast
from .metrics import surprisal_correlation
from .residual import hidden_states, logit_lens
from .rotation import LinearMaps

__all__ = ["logit_lens", "lens_readings", "lens_correlation", "token_ranks", "recall_at_k"]


def token_ranks(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Rank of each label under ``logits`` (..., V): the number of tokens with a
    strictly larger logit (0 = top-1; ties go the label's way). int64, shape (...)."""
    own = logits.gather(-1, labels[..., None])
    return (logits > own).sum(-1)


def recall_at_k(ranks: torch.Tensor, ks=(1, 5, 10)) -> torch.Tensor:
    """``mean(rank < k)`` for each k: a float64 tensor of len(ks)."""
    return torch.stack([(ranks < k).double().mean() for k in ks])


def _bits(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """Surprisal in bits of the next token at positions 0..seq-2, on the CPU (float64 for float64
    logits, else float32): logsumexp minus the next token's logit (no normalised copy of the logits)."""
    logits = upcast(logits[:, :-1])
    nats = torch.logsumexp(logits, dim=-1) - logits.gather(-1, ids[:, 1:, None])[..., 0]
    return (nats / math.log(2)).cpu()


@torch.no_grad()
def lens_readings(model, input_ids: torch.Tensor, output_map: LinearMaps | None = None,
                  input_map: LinearMaps | None = None, ks=(1, 5, 10),
                  batch_size: int = 8) -> dict[str, torch.Tensor]:
    """Every lens at every state ``l = 0..L`` over ``input_ids`` (n_seqs, seq), one
    batch and one state at a time (memory: one batch of logits). Returns, on the CPU:

    - ``"model"``: (n_seqs, seq - 1) the network's own surprisal (bits) of each next token;
    - ``"logit_lens"``: (L + 1, n_seqs, seq - 1) surprisal (bits) under the logit lens;
    - ``"output_lens"``: the same under the output lens (only with ``output_map``);
    - ``"recall"``: (L + 1, len(ks)) input-lens recall@k of the current token at every
      position (only with ``input_map``).

    Apply a subnetwork around the call; ``output_map`` and ``input_map`` are that
    same network's fitted maps."""
    device = next(model.parameters()).device
    embed = model.get_input_embeddings().weight  # (V, d): the input lens's "unembedding"
    own, logit_bits, out_bits, hits, n_pos = [], [], [], None, 0
    for i in range(0, len(input_ids), batch_size):
        ids = input_ids[i:i + batch_size].to(device)
        states = hidden_states(model, ids)
        logit_bits.append(torch.stack([_bits(logit_lens(model, h), ids) for h in states]))
        own.append(logit_bits[-1][-1])  # the logit lens at h_L is the network's own output
        if output_map is not None:
            out_bits.append(torch.stack([_bits(logit_lens(model, output_map(h, layer)), ids)
                                         for layer, h in enumerate(states)]))
        if input_map is not None:
            ranks = [token_ranks(input_map(h, layer) @ embed.T, ids)
                     for layer, h in enumerate(states)]
            batch_hits = torch.stack([torch.stack([(r < k).sum() for k in ks])
                                      for r in ranks]).cpu()
            hits = batch_hits if hits is None else hits + batch_hits
            n_pos += ids.numel()
    out = {"model": torch.cat(own), "logit_lens": torch.cat(logit_bits, dim=1)}
    if output_map is not None:
        out["output_lens"] = torch.cat(out_bits, dim=1)
    if input_map is not None:
        out["recall"] = hits.double() / n_pos
    return out


def lens_correlation(lens_bits: torch.Tensor, reference_bits: torch.Tensor) -> torch.Tensor:
    """Pearson r per state between a lens's surprisals (L + 1, ...) and reference
    surprisals (...) at the same positions (the network's own, or the bigram
    model's), +inf clipped to the largest finite value of each array: (L + 1,) float64."""

    if lens_bits.shape[1:] != reference_bits.shape:
        raise ValueError(f"lens surprisals {tuple(lens_bits.shape)} and reference "
                         f"{tuple(reference_bits.shape)} cover different positions")
    return torch.tensor([surprisal_correlation(b, reference_bits, inf="max") for b in lens_bits],
                        dtype=torch.float64)
