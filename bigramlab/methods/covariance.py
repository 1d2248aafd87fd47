"""How alike the residual stream's covariance is from layer to layer (Chapter 7).

Following the tuned lens {Belrose et al. 2023} as the paper does (Chang &
Bergen 2025, section 5): take each state's covariance (of the mean-centred states, e.g.
``ResidualStats.covariance()``), remove its top principal components (set the
largest ``k`` eigenvalues to zero; the paper removes one, Belrose et al. two
for Pythia 12B), and compare layers i and j of ONE network by the Frobenius
cosine ``<C_i, C_j>_F / (|C_i|_F |C_j|_F)``: an (L+1) x (L+1) matrix of
numbers in [-1, 1] (in [0, 1] for covariances, whose Frobenius products are
never negative). It is not CKA, and it never compares two networks.

Defined in Chapter 7.
"""

from __future__ import annotations

import torch


def remove_top_components(cov: torch.Tensor, k: int = 1) -> torch.Tensor:
    """``cov`` (..., d, d), symmetric, with its ``k`` largest eigenvalues set to zero
    (the top ``k`` principal directions removed), in float64."""
    d = cov.shape[-1]
    if cov.dim() < 2 or cov.shape[-2] != d:
        raise ValueError(f"covariances must be square (..., d, d), got {tuple(cov.shape)}")
    if not 0 <= k <= d:
        raise ValueError(f"k (components removed) must lie in 0..{d}, got {k}")
    cov = cov.double()
    if k == 0:
        return cov
    vals, vecs = torch.linalg.eigh(cov)  # ascending: the top k are the last k
    top = vecs[..., d - k:]
    return cov - (top * vals[..., None, d - k:]) @ top.transpose(-1, -2)


def frobenius_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``<a, b>_F / (|a|_F |b|_F)`` over the last two dimensions (float64)."""
    a, b = a.double(), b.double()
    return (a * b).sum((-2, -1)) / (torch.linalg.matrix_norm(a) * torch.linalg.matrix_norm(b))


def covariance_similarity(covs: torch.Tensor, k: int = 1) -> torch.Tensor:
    """The (n, n) matrix of Frobenius cosines between the ``n`` covariances in
    ``covs`` (n, d, d) of one network's states, each with its top ``k`` principal
    components removed first (:func:`remove_top_components`). Float64, on
    ``covs``'s device; 1 on the diagonal, symmetric, unchanged when any one
    covariance is scaled."""
    if covs.dim() != 3:
        raise ValueError(f"covs must be (states, d, d), got {tuple(covs.shape)}")
    flat = remove_top_components(covs, k).flatten(1)
    flat = flat / torch.linalg.vector_norm(flat, dim=1, keepdim=True)
    sim = flat @ flat.T
    return (sim + sim.T) / 2  # exactly symmetric (the product is, up to rounding)


def off_diagonal(sim: torch.Tensor) -> torch.Tensor:
    """The entries of a square matrix off its diagonal, as a 1-D tensor."""
    n = sim.shape[0]
    return sim[~torch.eye(n, dtype=torch.bool, device=sim.device)]
