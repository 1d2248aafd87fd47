"""What a mask is trained for: the targets of continuous sparsification, and a toy.

Contract: ``target(logits, input_ids, full_logits_fn) -> scalar loss tensor``.

- ``logits``: the masked model's output, (batch, seq, vocab), differentiable;
- ``input_ids``: the batch, (batch, seq), on the model's device;
- ``full_logits_fn``: a zero-argument callable returning the UNMASKED model's
  logits for the same batch under no_grad (computed only when called, so
  targets that do not need it pay nothing).

The loss is what the mask is trained to minimize, in nats, averaged over
positions; ``sparsify`` adds the density penalty. The bigram subnetwork and
the "optimal" subnetwork are Chang & Bergen 2025, sections 3.1 and 6.2; the
trigram target (:class:`TrigramTarget`) is Chapter 9's, ours, not the paper's.
Defined in Chapter 3.
"""

from __future__ import annotations

import torch

from .precision import upcast

__all__ = ["BigramTarget", "TrigramTarget", "FullModelTarget", "planted_toy"]


class BigramTarget:
    """CE from the bigram distribution of the current token to the masked model,
    via the sparse ``BigramModel.cross_entropy`` (no dense target is built).
    Every position is scored, the last one included (as the paper does)."""

    def __init__(self, bigram):
        self.bigram = bigram

    def __call__(self, logits, input_ids, full_logits_fn=None):
        dev = self.bigram.device
        return self.bigram.cross_entropy(logits.to(dev), input_ids.to(dev))


class TrigramTarget:
    """CE from the trigram distribution of the previous two tokens (back-off applied,
    the start placeholder before the start) to the masked model, via the sparse
    ``TrigramModel.cross_entropy`` (no dense target is built). Every position is
    scored, the last one included, as for :class:`BigramTarget`."""

    def __init__(self, trigram):
        self.trigram = trigram

    def __call__(self, logits, input_ids, full_logits_fn=None):
        dev = self.trigram.device
        return self.trigram.cross_entropy(logits.to(dev), input_ids.to(dev))


class FullModelTarget:
    """Soft-target CE against the full (unmasked) model's own next-token
    distribution: the "optimal" / distillation subnetwork. CE(p, q) =
    -sum_b p(b) log q(b), p = softmax(full logits) under no_grad, mean over
    positions, nats. At the full mask it equals the model's own entropy.
    Memory: two dense (batch, seq, vocab) blocks (float64 for float64 logits,
    else float32)."""

    def __call__(self, logits, input_ids, full_logits_fn):
        with torch.no_grad():
            p = torch.softmax(upcast(full_logits_fn()), dim=-1)
        return -(p * torch.log_softmax(upcast(logits), dim=-1)).sum(-1).mean()


def planted_toy(d_in: int = 24, d_out: int = 12, density: float = 0.3, n: int = 2048,
                seed: int = 0):
    """A toy with a known answer (Chapter 3): a bias-free linear layer W
    (d_out x d_in) and a teacher that uses only the planted entries M of W.

    Returns ``(model, inputs, planted, target)``: ``inputs`` is (n, d_in)
    Gaussian; ``target`` is the soft-target CE against softmax(x (W*M)^T), so
    the best mask is M (any other mask changes the output distribution).
    Float64, like the tiny world, so a seed gives the same mask on every CPU."""
    g = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(d_in, d_out, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(torch.randn(d_out, d_in, generator=g, dtype=torch.float64))
    planted = torch.rand(d_out, d_in, generator=g) < density
    teacher = model.weight.detach() * planted
    inputs = torch.randn(n, d_in, generator=g, dtype=torch.float64)

    def target(logits, x, full_logits_fn=None):
        p = torch.softmax(x @ teacher.to(x.device).T, dim=-1)
        return -(p * torch.log_softmax(logits, dim=-1)).sum(-1).mean()

    return model, inputs, {"weight": planted}, target
