"""The seeded order in which training draws rows of a token tensor.

Both trainers of the course use it: the tiny LM's pretraining (Chapter 0) and
mask training (Chapter 3), so a run's data order depends on (seed, step) only
and a killed run resumes on the same batches. Defined in Chapter 0.
"""

from __future__ import annotations

import torch

__all__ = ["batch_indices"]


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> torch.Tensor:
    """Rows of the training set used at ``step``: consecutive slices of one seeded
    permutation per epoch, so the order depends on (seed, step) only."""
    per_epoch = n // batch_size
    epoch, i = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)[i * batch_size:(i + 1) * batch_size]
