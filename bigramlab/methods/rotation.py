"""Linear maps across the residual stream, and how far each one rotates (Chapter 6).

The paper's section 5 (Chang & Bergen 2025) fits, for every state
``h_l`` (l = 0..L, ``h_L`` before the final layer norm) of a possibly masked
model, a ridge regression (alpha 1, with intercept) ``y = A h_l + b`` to three
targets at the same position:

- ``"input"``: the current token's bare input embedding
  (``model.get_input_embeddings()``, no position embedding);
- ``"output"``: the final state ``h_L``;
- ``"penultimate"``: the state ``h_{L-1}`` (the paper computes it, never reports it).

A ridge fit with intercept only needs sums and Gram matrices, so
:class:`ResidualStats` accumulates them in float64 over batches of positions
in ONE pass: each state with itself and with the three targets, once per
batch. Memory is fixed by the width and the number of states, never by the
number of positions. The same statistics give each layer's covariance
(Chapter 7, ``methods.covariance``).

The rotation of a map is the median of ``|arg(eigenvalue)|`` of ``A`` over all
its eigenvalues, in degrees: a positive real eigenvalue counts 0, a negative
one 180, each complex-conjugate pair twice (:func:`median_rotation`).

Defined in Chapter 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..plumbing.progress import progress_bar
from .residual import hidden_states

TARGETS = ("input", "output", "penultimate")
_BLOCK = 192  # columns per block of a Gram matrix (0.6 of a full product at width 768)


def _stats_device(device: torch.device) -> torch.device:
    # MPS has no float64; everything else (CPU, CUDA) accumulates where the model runs.
    return torch.device("cpu") if device.type == "mps" else device


@dataclass(frozen=True)
class LinearMaps:
    """One affine map per state: ``y = coef[l] @ x + intercept[l]``.

    ``coef``: (n_states, d_out, d_in) float64; ``intercept``: (n_states, d_out) float64."""

    coef: torch.Tensor
    intercept: torch.Tensor

    def __call__(self, x: torch.Tensor, layer: int) -> torch.Tensor:
        """The map of state ``layer`` applied to ``x`` (..., d_in), computed in float64
        and returned in ``x``'s dtype on ``x``'s device."""
        coef = self.coef[layer].to(x.device)
        out = x.double() @ coef.T + self.intercept[layer].to(x.device)
        return out.to(x.dtype)


class ResidualStats:
    """Sufficient statistics of the states and the three targets, float64, one pass.

    Feed batches with :meth:`update`; then :meth:`maps` gives the ridge maps to
    each target and :meth:`covariance` the covariance of every state.

    Per batch it computes only products that carry new information: each
    state's Gram matrix on and above the diagonal in blocks of ``_BLOCK``
    columns (the rest is its transpose: about 0.6 of a full product, as BLAS's
    ``syrk`` does), each state with the input embedding, and the states with
    ``h_L`` and ``h_{L-1}`` except the products that are already Gram matrices
    (``h_L`` with itself, ``h_{L-1}`` with itself) or transposes of one
    another (``h_L`` with ``h_{L-1}``). Values are shifted by the first batch's
    mean before they are multiplied (a shifted-data algorithm), so the large
    constant components of residual streams cost no precision."""

    def __init__(self, n_states: int, d_model: int, device: torch.device | str = "cpu"):
        if n_states < 2:
            raise ValueError(f"need at least 2 states (h_0 and h_L), got {n_states}")
        self.n_states, self.d_model = n_states, d_model
        self.device = _stats_device(torch.device(device))
        S, d, f64 = n_states, d_model, dict(dtype=torch.float64, device=self.device)
        self.n = 0
        self.shift_x = self.shift_e = None  # (S, d) and (d,): the first batch's means
        self.sum_x = torch.zeros(S, d, **f64)             # sums of shifted states
        self.sum_e = torch.zeros(d, **f64)                # sum of shifted input embeddings
        self.xx = torch.zeros(S, d, d, **f64)             # Gram blocks on and above the diagonal
        self.x_in = torch.zeros(S * d, d, **f64)          # states 0..L with the input embedding
        self.x_out = torch.zeros((S - 1) * d, d, **f64)   # states 0..L-1 with h_L
        self.x_pen = torch.zeros((S - 2) * d, d, **f64)   # states 0..L-2 with h_{L-1}

    def update(self, states: torch.Tensor, inputs: torch.Tensor) -> None:
        """Add a batch: ``states`` (n_states, ..., d_model) as :func:`hidden_states`
        gives them, ``inputs`` (..., d_model) the current token's input embedding
        at the same positions."""
        S, d = self.n_states, self.d_model
        if states.shape[0] != S or states.shape[-1] != d:
            raise ValueError(f"states have shape {tuple(states.shape)}; expected ({S}, ..., {d}): "
                             "build ResidualStats with the model's number of states and width")
        if inputs.shape != states.shape[1:]:
            raise ValueError(f"inputs have shape {tuple(inputs.shape)}, the states' positions "
                             f"{tuple(states.shape[1:])}: pass the input embedding of the same ids")
        states = states.reshape(S, -1, d).to(self.device)
        inputs = inputs.reshape(-1, d).to(self.device)
        if self.shift_x is None:
            self.shift_x = states.mean(1, dtype=torch.float64)
            self.shift_e = inputs.mean(0, dtype=torch.float64)
        # One pass into float64, shifted, positions first: (P, S, d), so each state is a
        # strided (P, d) view and all states together a (P, S*d) matrix, both without copies.
        x = torch.empty(states.shape[1], S, d, dtype=torch.float64, device=self.device)
        torch.sub(states.transpose(0, 1), self.shift_x, out=x)
        e = inputs.double() - self.shift_e
        self.n += x.shape[0]
        self.sum_x += x.sum(0)
        self.sum_e += e.sum(0)
        self.add_products(x, e)

    def add_products(self, x: torch.Tensor, e: torch.Tensor) -> None:
        """The products of one batch, float64: ``x`` (P, S, d) shifted states, ``e``
        (P, d) shifted input embeddings (all :meth:`update` does beyond sums and copies)."""
        S, d = self.n_states, self.d_model
        for s in range(S):
            xs = x[:, s]
            for i in range(0, d, _BLOCK):
                self.xx[s, i:i + _BLOCK, i:].addmm_(xs[:, i:i + _BLOCK].T, xs[:, i:])
        flat = x.reshape(-1, S * d)
        self.x_in.addmm_(flat.T, e)
        self.x_out.addmm_(flat[:, :(S - 1) * d].T, x[:, -1])
        if S > 2:
            self.x_pen.addmm_(flat[:, :(S - 2) * d].T, x[:, -2])

    def _centred_gram(self, mx: torch.Tensor) -> torch.Tensor:
        """The centred scatter matrices (S, d, d): the blocks below the diagonal taken from
        above it, then ``- n mx mx^T`` as an in-place rank-1 update (no (S, d, d) temporary)."""
        block = torch.arange(self.d_model, device=self.device) // _BLOCK
        gram = torch.where(block[:, None] <= block[None, :], self.xx, self.xx.transpose(1, 2))
        return gram.baddbmm_(mx[:, :, None], mx[:, None, :], alpha=-self.n)

    def _centred_cross(self, gram: torch.Tensor, mx: torch.Tensor, mt: torch.Tensor):
        """Each state with the three targets, centred, (S, d, 3 * d): the skipped products
        filled in from the (centred) Gram matrices and from each other."""
        S, d = self.n_states, self.d_model
        cross = torch.zeros(S, d, 3, d, dtype=torch.float64, device=self.device)
        x_out = self.x_out.view(S - 1, d, d)
        cross[:, :, 0] = self.x_in.view(S, d, d)
        cross[:-1, :, 1] = x_out
        cross[:-2, :, 2] = self.x_pen.view(S - 2, d, d)
        cross[-1, :, 2] = x_out[-1].T  # h_L with h_{L-1}: the transpose of h_{L-1} with h_L
        cross = cross.view(S, d, 3 * d)
        cross[:, :, :d].baddbmm_(mx[:, :, None], mt[0].expand(S, 1, d), alpha=-self.n)
        out_pen = mt[1:].reshape(1, 1, 2 * d).expand(S - 1, 1, 2 * d)
        cross[:-1, :, d:].baddbmm_(mx[:-1, :, None], out_pen, alpha=-self.n)
        cross[-1, :, 2 * d:] -= self.n * torch.outer(mx[-1], mt[2])
        cross[-1, :, d:2 * d] = gram[-1]  # h_L with itself, already centred
        cross[-2, :, 2 * d:] = gram[-2]   # h_{L-1} with itself (overwrites its centring above)
        return cross

    def _means(self):
        if self.n < 2:
            raise ValueError(f"{self.n} positions accumulated; a fit needs at least 2")
        mx = self.sum_x / self.n
        mt = torch.stack([self.sum_e / self.n, mx[-1], mx[-2]])  # shifted means of the targets
        return mx, mt

    def maps(self, alpha: float = 1.0) -> dict[str, LinearMaps]:
        """Ridge regression with intercept from every state to each target
        (:data:`TARGETS`), as sklearn's ``Ridge(alpha, fit_intercept=True)``:
        minimise ``|Y - X W - b|^2 + alpha |W|^2`` (the intercept not penalised),
        so ``W = (Xc^T Xc + alpha I)^-1 Xc^T Yc`` on centred data and
        ``b = mean(y) - A mean(x)``. Solved by Cholesky, all states at once."""
        if not alpha > 0:
            raise ValueError(f"alpha must be positive (the paper uses 1.0), got {alpha}")
        S, d, n = self.n_states, self.d_model, self.n
        mx, mt = self._means()
        gram = self._centred_gram(mx)
        cxt = self._centred_cross(gram, mx, mt)
        gram.diagonal(dim1=1, dim2=2).add_(alpha)  # in place: the temporaries are the peak
        chol = torch.linalg.cholesky(gram)
        del gram
        w = torch.cholesky_solve(cxt, chol).view(S, d, 3, d)
        del cxt, chol
        mean_x = self.shift_x + mx
        mean_t = torch.stack([self.shift_e, self.shift_x[-1], self.shift_x[-2]]) + mt
        out = {}
        for k, name in enumerate(TARGETS):
            coef = w[:, :, k].transpose(1, 2).contiguous()  # (S, d_out, d_in)
            intercept = mean_t[k] - torch.einsum("soi,si->so", coef, mean_x)
            out[name] = LinearMaps(coef, intercept)
        return out

    def covariance(self) -> torch.Tensor:
        """The sample covariance of every state (divided by n - 1), (S, d, d) float64."""
        return self._centred_gram(self._means()[0]).div_(self.n - 1)


@torch.no_grad()
def residual_stats(model, input_ids: torch.Tensor, batch_size: int = 8,
                   progress: bool = False) -> ResidualStats:
    """One streamed pass over every position of ``input_ids`` (n_seqs, seq):
    :func:`hidden_states` and the input embedding per batch of ``batch_size``
    sequences, accumulated into a :class:`ResidualStats` on the model's device.
    Apply a subnetwork around the call (``with sub.apply(model): ...``)."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be (sequences, positions), got {tuple(input_ids.shape)}")
    device = next(model.parameters()).device
    embed = model.get_input_embeddings()
    stats = None
    for i in progress_bar(range(0, len(input_ids), batch_size), enabled=progress,
                          desc="residual stats"):
        ids = input_ids[i:i + batch_size].to(device)
        states = hidden_states(model, ids)
        if stats is None:
            stats = ResidualStats(states.shape[0], states.shape[-1], device)
        stats.update(states, embed(ids))
    if stats is None:
        raise ValueError("input_ids holds no sequences")
    return stats


def eigen_angles(coef: torch.Tensor) -> torch.Tensor:
    """``|arg(lambda)|`` in degrees, in [0, 180], of every eigenvalue of each square
    matrix in ``coef`` (..., d, d): a (..., d) float64 tensor (conjugate pairs
    appear twice, as the eigenvalues do)."""
    if coef.dim() < 2 or coef.shape[-1] != coef.shape[-2]:
        raise ValueError(f"eigen-angles need square matrices (..., d, d), got {tuple(coef.shape)}")
    eig = torch.linalg.eigvals(coef.double())
    return eig.angle().abs() * (180 / math.pi)


def median_rotation(coef: torch.Tensor) -> torch.Tensor:
    """The paper's rotation of a map: the median over all d eigenvalues of
    ``|arg(lambda)|`` in degrees (the mean of the two middle values when d is
    even, as ``numpy.median``), one value per matrix of ``coef`` (..., d, d)."""
    return torch.quantile(eigen_angles(coef), 0.5, dim=-1)


def rotations(maps: dict[str, LinearMaps]) -> dict[str, torch.Tensor]:
    """{target: (n_states,) median rotation in degrees of each state's map}."""
    return {name: median_rotation(m.coef) for name, m in maps.items()}
