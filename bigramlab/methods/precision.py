"""The precision losses, softmaxes and surprisals are computed in.

Float64 stays float64: the tiny world computes in it, so that its masks and
every printed number are the same under every CPU kernel set (the book's appendix,
"Reproducibility"); everything else (fp32, and half precisions, upcast)
computes in float32. Defined in Chapter 3.
"""

from __future__ import annotations

import torch


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype to compute losses, softmaxes and surprisals in for tensors of ``dtype``:
    float64 stays float64 (the tiny world computes in it, so its numbers are the same
    under every CPU kernel set; the book's appendix, "Reproducibility"), everything else in float32
    (half-precision logits are upcast; fp32 stays fp32)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def upcast(x: torch.Tensor) -> torch.Tensor:
    """``x`` in :func:`compute_dtype` of its dtype (itself when it already is)."""
    return x.to(compute_dtype(x.dtype))
