"""Masking weights: the one way bigramlab zeroes or scales weight entries, and soft masks.

Every masked model in the course is built from :func:`masked_weights`: each
weight W named in ``masks`` becomes

- ``W`` with the entries where a **bool** mask is False set to exactly 0
  (``masked_fill``: a kept entry is W's own value, bit for bit), or
- ``W * m`` for a **float** mask m (a soft mask; differentiable in m, cast
  to W's dtype so a bf16 model stays bf16).

Two ways to run a model with them, on that one computation:

- :func:`masked` (a context manager, no gradients): the parameters' ``.data``
  are swapped for the masked weights inside the ``with`` block and swapped
  back on exit, also when the block raises. The original tensors are never
  written to. ``Subnetwork.apply`` (Chapters 3-5) and ``residual.zeroed``
  (Chapter 2) are built on it.
- :func:`masked_logits` (differentiable): ``torch.func.functional_call`` with
  the masked weights, so they live only in that forward graph and gradients
  reach the soft mask; mask training (``sparsify``, Chapter 3) runs on it.

The soft mask of continuous sparsification is ``sigmoid(T * s)`` of mask
logits s (Chang & Bergen 2025, section 3.1, after Savarese et al. 2020):
:func:`soft_masks`, and the flat form training uses (:func:`flatten`,
:func:`soft_masks_flat`); :func:`density_penalty` is the L1 term. Defined in
Chapter 3.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from contextlib import contextmanager

import torch
from torch.func import functional_call

from .precision import upcast

__all__ = ["masked_weights", "masked", "masked_logits", "soft_masks", "flatten", "unflatten",
           "soft_masks_flat", "density_penalty"]


def masked_weights(model, masks: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """name -> the masked weight, on the weight's device (see the module docstring).
    A bool mask that keeps everything gives W itself (no copy)."""
    params = dict(model.named_parameters())
    out = {}
    for name, m in masks.items():
        w = params[name]
        if m.dtype == torch.bool:
            out[name] = w if bool(m.all()) else w.masked_fill(~m.to(w.device), 0)
        else:
            out[name] = w * m.to(w.dtype)
    return out


@contextmanager
def masked(model, masks: Mapping[str, torch.Tensor]):
    """Within the ``with`` block, ``model`` runs with :func:`masked_weights`; its own
    tensors come back unchanged (bit for bit) on exit, and edits made to the
    weights inside the block are discarded. Memory: one masked copy of each
    matrix that drops something."""
    params = dict(model.named_parameters())
    originals = {}
    try:
        with torch.no_grad():
            for name, w in masked_weights(model, masks).items():
                if w is not params[name]:
                    originals[name] = params[name].data
                    params[name].data = w.detach()
        yield model
    finally:
        for name, data in originals.items():
            params[name].data = data


def _call(model, params, input_ids):
    out = functional_call(model, params, (input_ids,))
    return out.logits if hasattr(out, "logits") else out


def masked_logits(model, soft, input_ids):
    """The model's output with every weight named in ``soft`` masked by it
    (:func:`masked_weights`), through ``functional_call``: the model's tensors are
    never edited or copied; gradients reach ``soft`` (hence the mask logits) and
    nothing else when the model is frozen."""
    return _call(model, masked_weights(model, soft), input_ids)


def soft_masks(mask_logits, temperature: float):
    """name -> sigmoid(T * s), the soft mask (in s's dtype, differentiable in s)."""
    # in place on the fresh product: one temporary per matrix, not two (on CPU
    # every large temporary costs page faults; multiplying by a Python float
    # saves nothing for backward, so the in-place sigmoid is safe)
    return {n: (s * temperature).sigmoid_() for n, s in mask_logits.items()}


def flatten(mask_logits):
    """All mask logits as ONE flat leaf tensor (float64 if they are, else float32) (requires grad) plus
    name -> shape. Training works on this: one sigmoid, one penalty sum, one
    gradient concat and one AdamW tensor for all matrices, instead of ~12
    small kernels per matrix (that launch overhead was 37% of a tiny model's
    step on a GPU)."""
    shapes = {n: s.shape for n, s in mask_logits.items()}
    flat = torch.cat([upcast(s.detach().reshape(-1)) for s in mask_logits.values()])
    return flat.requires_grad_(True), shapes


def unflatten(flat, shapes):
    """name -> mask logits (detached CPU copies) from a flat tensor."""
    parts = flat.detach().cpu().split([math.prod(s) for s in shapes.values()])
    return {n: p.reshape(shape).clone() for (n, shape), p in zip(shapes.items(), parts)}


def soft_masks_flat(flat, shapes, temperature: float):
    """(name -> soft-mask view, flat soft mask) = sigmoid(T * flat), split by matrix.
    The views share one graph node, so their gradients are gathered by a
    single concatenation in the backward."""
    soft_flat = (flat * temperature).sigmoid_()
    parts = soft_flat.split([math.prod(s) for s in shapes.values()])
    return {n: p.view(shape) for (n, shape), p in zip(shapes.items(), parts)}, soft_flat


def density_penalty(soft, lam: float) -> torch.Tensor:
    """lambda * sum(soft mask) / N: the density penalty (0 when lambda is 0)."""
    n = sum(m.numel() for m in soft.values())
    return sum(m.sum() for m in soft.values()) * (lam / n)
