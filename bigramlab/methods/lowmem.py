"""Mask training in less memory: how Pythia 1B's masks can fit a free T4.

The straightforward run (``sparsify``'s default, :class:`~.sparsify.FlatSteps`)
holds, besides the fp32 weights, four floats per mask entry (logit, gradient,
AdamW's two moments), and during each step the soft masks sigmoid(T s) and
the masked copies W * sigmoid(T s) of every matrix (autograd keeps both for
the backward pass) and the activations and logits of the whole batch. For
Pythia 1B (805M mask entries) that is well above a T4's 14.7 GiB.

:class:`LowMemorySteps` is the same optimisation with less held at once:

- the frozen weights are stored in bf16 or fp16 (the caller passes such a model)
  and computed in fp32, one block's copy at a time (a T4 has no bf16 arithmetic,
  and fp16 gradients would underflow without loss scaling);
- AdamW's two moments are stored in bf16 (:class:`AdamWLowMoments`; the update
  itself is computed in fp32 from them, the formula of ``torch.optim.AdamW``);
- one logit tensor per matrix (no flat tensor: the default's flat tensor makes
  its gradient a concatenation of every matrix's gradient, two full copies);
- each Transformer block is recomputed in the backward pass
  (``torch.utils.checkpoint``), its masked weights included, and the soft mask's
  derivative is recomputed from s (:class:`MaskedWeight`): neither the soft
  masks nor the masked copies of all matrices are ever held together;
- the batch runs in micro-batches whose gradients add up (same mean CE);
- the density penalty's gradient is added in closed form, one matrix at a time.

With fp32 weights and moments it computes the default's update up to float
rounding (``tests/methods/test_lowmem.py``); the book's appendix, "Masking in less memory", has the
measured memory and what the low-memory mode does to the tiny world's masks.
Defined in Chapter 3 (its setup note); Pythia 1B and GPT-2 large train with it.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call
from torch.utils.checkpoint import checkpoint

from .architectures import architecture
from .sparsify_config import SparsifyConfig

__all__ = ["MaskedWeight", "AdamWLowMoments", "LowMemorySteps", "recomputed_blocks"]


class MaskedWeight(torch.autograd.Function):
    """``W * sigmoid(T * s)`` (in W's dtype), differentiable in the logits s only.
    Saves W and s, which exist anyway, and recomputes the sigmoid in the backward
    pass instead of keeping a soft-mask copy of every matrix."""

    @staticmethod
    def forward(ctx, w, s, temperature: float):
        ctx.save_for_backward(w, s)
        ctx.temperature = temperature
        return w * torch.sigmoid(s * temperature).to(w.dtype)

    @staticmethod
    def backward(ctx, grad):
        w, s = ctx.saved_tensors
        y = torch.sigmoid(s * ctx.temperature)
        # d/ds [w * sigmoid(T s)] = w * T * y * (1 - y)
        return None, (grad * w).to(s.dtype) * (y * (1 - y)).mul_(ctx.temperature), None


def _cast(x, dtype):
    """``x`` with every floating tensor in it (also inside tuples, lists, dicts) in ``dtype``."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype) if x.is_floating_point() else x
    if isinstance(x, (tuple, list)):
        return type(x)(_cast(v, dtype) for v in x)
    if isinstance(x, dict):
        return {k: _cast(v, dtype) for k, v in x.items()}
    return x


def _upcast_call(module, weights: dict, dtype, args, kwargs):
    """``module(*args, **kwargs)`` with its parameters in ``dtype`` (``weights`` for some),
    inputs cast too: a bf16/fp16-stored module computed in fp32, one module's copy at a time."""
    params = {n: p.to(dtype) for n, p in module.named_parameters()} if dtype else {}
    return functional_call(module, params | weights, _cast(args, dtype) if dtype else args,
                           _cast(kwargs, dtype) if dtype else kwargs)


class _Recomputed(nn.Module):
    """A Transformer block computed in ``box["compute"]`` (None: as stored). While
    ``box["masked"]``, its masked weights are built inside the block and the whole block
    is recomputed in the backward pass (nothing of it is kept between the passes)."""

    def __init__(self, block: nn.Module, logits: dict, box: dict):
        super().__init__()
        self.block, self.logits, self.box = block, logits, box

    def forward(self, *args, **kwargs):
        if not self.box["masked"]:
            return _upcast_call(self.block, {}, self.box["compute"], args, kwargs)
        return checkpoint(self._masked_forward, *args, use_reentrant=False, **kwargs)

    def _masked_forward(self, *args, **kwargs):
        dtype, params = self.box["compute"], dict(self.block.named_parameters())
        weights = {n: MaskedWeight.apply(params[n].to(dtype) if dtype else params[n], s,
                                         self.box["T"]) for n, s in self.logits.items()}
        return _upcast_call(self.block, weights, dtype, args, kwargs)


class _Upcast(nn.Module):
    """A module (an embedding, the final norm, the unembedding) computed in ``dtype``."""

    def __init__(self, module: nn.Module, dtype):
        super().__init__()
        self.module, self.dtype = module, dtype

    def forward(self, *args, **kwargs):
        return _upcast_call(self.module, {}, self.dtype, args, kwargs)


def _swap(model, old: nn.Module, new: nn.Module) -> tuple:
    """Put ``new`` where ``old`` is in ``model``; returns (parent, attribute, old)."""
    for name, m in model.named_modules():
        if m is old:
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            setattr(parent, attr, new)
            return parent, attr, old
    raise ValueError(f"{type(old).__name__} is not a submodule of the model")


@contextmanager
def recomputed_blocks(model, logits_by_name: dict, compute_dtype=None):
    """Within the block, every Transformer block of ``model`` that holds a masked
    matrix is wrapped (:class:`_Recomputed`); with ``compute_dtype`` (e.g. fp32 for a
    bf16/fp16-stored model) the other blocks, the embeddings, the final norm and the
    unembedding compute in it too. Yields the shared ``box`` (``T``: the temperature, ``masked``:
    whether the blocks mask). Everything is put back on exit, also when the block
    raises; the model's tensors are never written to."""
    arch = architecture(model)
    blocks = arch.blocks_of(model)
    prefix = arch.blocks + "."
    local: dict[int, dict] = {}
    for name, s in logits_by_name.items():
        if not name.startswith(prefix):
            raise ValueError(f"{name} is outside the Transformer blocks ({arch.blocks}.*); "
                             "the low-memory run masks block matrices only")
        i, _, rest = name[len(prefix):].partition(".")
        local.setdefault(int(i), {})[rest] = s
    if compute_dtype == next(model.parameters()).dtype:
        compute_dtype = None  # stored as computed: no copies
    box = {"T": 1.0, "masked": True, "compute": compute_dtype}
    wrapped = range(len(blocks)) if compute_dtype else sorted(local)
    originals = {i: blocks[i] for i in wrapped}
    swapped = []
    try:
        for i, block in originals.items():
            blocks[i] = _Recomputed(block, local.get(i, {}), box)
        if compute_dtype:
            for m in (*arch.embeddings_of(model), arch.final_norm_of(model),
                      model.get_output_embeddings()):
                swapped.append(_swap(model, m, _Upcast(m, compute_dtype)))
        yield box
    finally:
        for i, block in originals.items():
            blocks[i] = block
        for parent, attr, old in reversed(swapped):
            setattr(parent, attr, old)


class AdamWLowMoments:
    """AdamW (``torch.optim.AdamW``'s update, decoupled weight decay, bias correction)
    with both moments stored in ``moment_dtype`` (bf16: 4 bytes per entry instead of 8).
    Each update is computed in fp32 from the stored moments, one tensor at a time."""

    def __init__(self, params: list, cfg: SparsifyConfig, moment_dtype=torch.bfloat16):
        self.params, self.cfg, self.t = list(params), cfg, 0
        self.m = [torch.zeros_like(p, dtype=moment_dtype) for p in self.params]
        self.v = [torch.zeros_like(p, dtype=moment_dtype) for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        cfg, (b1, b2) = self.cfg, self.cfg.betas
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, m_, v_ in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            g = p.grad
            p.mul_(1 - cfg.lr * cfg.weight_decay)
            m = m_.float().lerp_(g, 1 - b1)
            v = v_.float().mul_(b2).addcmul_(g, g, value=1 - b2)
            m_.copy_(m)
            v_.copy_(v)
            p.addcdiv_(m, v.sqrt().div_(math.sqrt(c2)).add_(cfg.eps), value=-cfg.lr / c1)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict:
        return {"t": self.t, "m": self.m, "v": self.v}

    def load_state_dict(self, state: dict) -> None:
        self.t = state["t"]
        for mine, saved in zip(self.m + self.v, state["m"] + state["v"]):
            mine.copy_(saved)


class LowMemorySteps:
    """The training step of ``sparsify(..., memory="low")`` (see the module docstring):
    the interface of ``sparsify.FlatSteps`` (``step``, ``kept``, ``logits``, ``state``,
    ``load``, ``final``). ``micro_batch``: sequences per forward pass; ``compute_dtype``:
    what a bf16/fp16-stored model computes in, one block's copy at a time (fp32: a T4
    has no bf16 arithmetic, and fp16 gradients would underflow without loss scaling)."""

    def __init__(self, init_logits: dict, cfg: SparsifyConfig, micro_batch: int = 8,
                 moment_dtype=torch.bfloat16, compute_dtype=torch.float32):
        self.cfg, self.micro_batch, self.compute_dtype = cfg, micro_batch, compute_dtype
        self.by_name = {n: s.detach().clone().requires_grad_(True)
                        for n, s in init_logits.items()}
        self.n_entries = sum(s.numel() for s in self.by_name.values())
        self.opt = AdamWLowMoments(list(self.by_name.values()), cfg, moment_dtype)

    def step(self, model, x, target, temperature: float) -> tuple[float, float]:
        """One optimizer step on batch ``x``; returns (target CE, penalty), nats."""
        ce_total = 0.0
        with recomputed_blocks(model, self.by_name, self.compute_dtype) as box:
            box["T"] = temperature
            for part in x.split(self.micro_batch):
                def full_logits_fn(part=part):
                    box["masked"] = False  # nothing masked: the full model
                    try:
                        with torch.no_grad():
                            return model(part, use_cache=False).logits.float()
                    finally:
                        box["masked"] = True

                logits = model(part, use_cache=False).logits.float()
                ce = target(logits, part, full_logits_fn) * (len(part) / len(x))
                ce.backward()
                ce_total += ce.item()
        penalty = self._penalty(temperature)
        self.opt.step()
        self.opt.zero_grad()
        return ce_total, penalty

    @torch.no_grad()
    def _penalty(self, temperature: float) -> float:
        """lambda * sum(sigmoid(T s)) / N; its gradient is added to each logit's."""
        scale, total = self.cfg.lam / self.n_entries, 0.0
        for s in self.by_name.values():
            y = torch.sigmoid(s * temperature)
            total += float(y.sum())
            if scale:
                grad = (y * (1 - y)).mul_(temperature * scale)
                s.grad = grad if s.grad is None else s.grad.add_(grad)
        return total * scale

    def logits(self) -> dict:
        return {n: s.detach() for n, s in self.by_name.items()}

    def kept(self) -> int:
        return sum(int((s > 0).sum()) for s in self.by_name.values())

    def state(self) -> dict:
        return {"logits": self.logits(), "opt": self.opt.state_dict()}

    def load(self, state: dict) -> None:
        with torch.no_grad():
            for n, s in self.by_name.items():
                s.copy_(state["logits"][n])
        self.opt.load_state_dict(state["opt"])

    def final(self) -> dict:
        return {n: s.detach().cpu().clone() for n, s in self.by_name.items()}
