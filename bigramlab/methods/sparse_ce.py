"""Cross-entropy from target distributions that are built row by row, in chunks.

The bigram model's loss (Chapter 1, and mask training's target in Chapter 3):
for every position i with target distribution P_i over the vocabulary,

    CE_i = logsumexp(logits_i) - sum_b P_i(b) * logits_i[b],

averaged over positions, in nats. The target is never built for the whole
batch: positions are taken a chunk at a time, and the caller's
``target_rows(rows, n_scattered)`` returns that chunk's (chunk, V) float32
target block (upcast to float64 for float64 logits: the computation follows the
logits, float32 for fp32 and half precision) (the bigram model copies or scatters it from its rows), so
temporary memory is a few chunk-sized blocks whatever the batch. Forward keeps
only the logsumexp of each position (n floats); backward recomputes softmax
chunk by chunk directly in the gradient buffer and subtracts the target:
d CE_i / d logits_i = (softmax(logits_i) - P_i) / n. Defined in Chapter 1.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .precision import compute_dtype

__all__ = ["chunked_cross_entropy", "CHUNK_ELEMENTS"]

#: Logits (positions x vocabulary) handled per chunk; the temporaries are 2-3
#: float32 blocks of this size.  CPU: 16 MiB, and at most 1/16 of the logits
#: (smaller blocks cost nothing there).  Accelerators: 128 MiB, because each
#: chunk costs ~25 kernel launches (~0.3 ms on an H200: 2**22-element chunks
#: made a 32 x 128 x 50,277 batch 5x slower).
CHUNK_ELEMENTS = {"cpu": 2**22, "other": 2**25}


def chunked_cross_entropy(logits: torch.Tensor, rows: torch.Tensor,
                          target_rows: Callable[[torch.Tensor, int], torch.Tensor],
                          vocab_size: int, scatter_sizes: torch.Tensor | None = None,
                          chunk_elements: int | None = None) -> torch.Tensor:
    """Mean CE (nats) of (n, V') ``logits`` (V' >= V; columns beyond V get target 0)
    against the targets ``target_rows(rows[s:e], n_scattered)`` of each chunk.

    ``scatter_sizes``: per position, how many non-zeros ``target_rows`` scatters
    for it (None: none); summed per chunk up front, in one device sync, so the
    chunk loop never waits for the device. Differentiable in ``logits``."""
    n, width = rows.numel(), logits.shape[-1]
    if chunk_elements is None:
        if logits.device.type == "cpu":
            chunk_elements = max(2**16, min(CHUNK_ELEMENTS["cpu"], logits.numel() // 16))
        else:
            chunk_elements = CHUNK_ELEMENTS["other"]
    step = max(1, chunk_elements // width)
    starts = list(range(0, n, step))
    if scatter_sizes is not None:
        ends = torch.tensor([min(n, s + step) - 1 for s in starts], device=rows.device)
        scatter = torch.cumsum(scatter_sizes, 0)[ends]
        scatter = torch.diff(scatter, prepend=scatter.new_zeros(1)).tolist()
    else:
        scatter = [0] * len(starts)
    chunks = [(s, min(n, s + step), k) for s, k in zip(starts, scatter)]
    return _ChunkedCrossEntropy.apply(logits, rows, target_rows, vocab_size, chunks)


class _ChunkedCrossEntropy(torch.autograd.Function):
    """Mean over positions of CE(target row, softmax(logits)), chunk by chunk."""

    @staticmethod
    def forward(ctx, logits, rows, target_rows, V, chunks):
        n, cdt = logits.shape[0], compute_dtype(logits.dtype)
        lse = torch.empty(n, device=logits.device, dtype=cdt)
        loss = torch.zeros((), device=logits.device, dtype=cdt)
        for s, e, n_scattered in chunks:
            x = logits[s:e].to(cdt)  # a view if already in cdt, else a copy
            lse[s:e] = torch.logsumexp(x, dim=1)
            target = target_rows(rows[s:e], n_scattered)
            # sum_b P(b | a_i) x_i[b]; in place on our own copy of the rows when they
            # have x's dtype (a float32 row times float64 logits is promoted in the
            # kernel: the same bits as a float64 copy, without the copy), and not as a
            # matmul, which may run in TF32 on GPUs.
            prod = target.mul_(x[:, :V]) if target.dtype == cdt else x[:, :V] * target
            dot = prod.sum(1)
            loss += (lse[s:e] - dot).sum()
        ctx.save_for_backward(logits, rows, lse)
        ctx.target_rows, ctx.V, ctx.chunks = target_rows, V, chunks
        return loss / n

    @staticmethod
    def backward(ctx, grad_loss):
        logits, rows, lse = ctx.saved_tensors
        n, V = logits.shape[0], ctx.V
        grad, cdt = torch.empty_like(logits), lse.dtype
        scale = grad_loss.to(cdt) / n
        for s, e, n_scattered in ctx.chunks:
            # Work in the forward's dtype: in the gradient buffer itself when it
            # has it, else in a chunk-sized scratch that is then cast.
            g = grad[s:e]
            if g.dtype != cdt:
                g = torch.empty(g.shape, device=g.device, dtype=cdt)
            torch.sub(logits[s:e], lse[s:e].unsqueeze(1), out=g)
            g.exp_()
            g[:, :V] -= ctx.target_rows(rows[s:e], n_scattered)
            g.mul_(scale)
            if g.dtype != grad.dtype:
                grad[s:e] = g
        return grad, None, None, None, None
