"""Model anatomy: which weight matrices can be masked, and how they split into heads.

Following the paper (Chang & Bergen 2025, section 3.1), the maskable
parameters are the four weight matrices of every Transformer block:

| kind            | GPT-NeoX / Pythia (Linear: out x in) | GPT-2 (Conv1D: in x out) |
|-----------------|--------------------------------------|--------------------------|
| q, k, v (fused) | ``attention.query_key_value``        | ``attn.c_attn``          |
| o               | ``attention.dense``                  | ``attn.c_proj``          |
| mlp_in          | ``mlp.dense_h_to_4h``                | ``mlp.c_fc``             |
| mlp_out         | ``mlp.dense_4h_to_h``                | ``mlp.c_proj``           |

Everything else (embeddings, unembedding, layer norms, all biases) is always kept.
Where the matrices are and how they are laid out comes from the architecture
table (``architectures``); ``MaskableMatrix.part`` turns that layout into the
entries of one kind and head. Defined in Chapter 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .architectures import ARCHITECTURES, Architecture, UnsupportedArchitectureError, architecture

__all__ = ["KINDS", "MaskableMatrix", "UnsupportedArchitectureError", "architecture",
           "maskable_matrices", "parameter_groups", "count_maskable", "anatomy_table"]

KINDS = ("q", "k", "v", "o", "mlp_in", "mlp_out")


@dataclass(frozen=True)
class MaskableMatrix:
    """One maskable weight matrix: its parameter name, layer, role and head layout."""

    name: str            # parameter name, e.g. 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight'
    layer: int
    role: str            # 'qkv', 'o', 'mlp_in' or 'mlp_out'
    shape: tuple[int, int]
    arch: str            # a key of architectures.ARCHITECTURES
    n_heads: int
    head_size: int

    @property
    def spec(self) -> Architecture:
        """The architecture table's entry for this matrix's model."""
        return ARCHITECTURES[self.arch]

    @property
    def out_axis(self) -> int:
        """Axis of the stored weight that indexes output features (0: Linear, 1: Conv1D)."""
        return self.spec.out_axis

    @property
    def in_axis(self) -> int:
        """Axis of the stored weight that indexes input features."""
        return self.spec.in_axis

    @property
    def kinds(self) -> tuple[str, ...]:
        return ("q", "k", "v") if self.role == "qkv" else (self.role,)

    @property
    def numel(self) -> int:
        return self.shape[0] * self.shape[1]

    def part(self, kind: str | None = None, head: int | None = None) -> torch.Tensor:
        """Bool tensor of this matrix's shape: the entries that belong to ``kind``
        (one of ``self.kinds``; None = all) and attention ``head`` (None = all heads)."""
        if kind is not None and kind not in self.kinds:
            raise ValueError(f"{self.name} holds {self.kinds}, not {kind!r}")
        if head is not None and not (0 <= head < self.n_heads and self.role in ("qkv", "o")):
            raise ValueError(f"{self.name} has no attention head {head}")
        out = torch.zeros(self.shape, dtype=torch.bool)
        if self.role == "qkv":
            # the fused matrix's outputs split into kinds and heads
            out.index_fill_(self.out_axis, self._qkv_outputs(kind, head), True)
        elif self.role == "o" and head is not None:
            # the o matrix reads the concatenated heads: its input axis splits into heads
            idx = torch.arange(head * self.head_size, (head + 1) * self.head_size)
            out.index_fill_(self.in_axis, idx, True)
        else:
            out[:] = True
        return out

    def _qkv_outputs(self, kind: str | None, head: int | None) -> torch.Tensor:
        """Indices along the fused q/k/v output axis for ``kind`` and ``head``."""
        hs, nh = self.head_size, self.n_heads
        kinds = [kind] if kind else ["q", "k", "v"]
        heads = [head] if head is not None else range(nh)
        starts = [self.spec.qkv_start(kd, h, nh, hs) for h in heads for kd in kinds]
        return torch.cat([torch.arange(start, start + hs) for start in starts])


def maskable_matrices(model) -> list[MaskableMatrix]:
    """The maskable weight matrices of a supported model, in parameter order."""
    spec = architecture(model)
    n_heads, head_size = spec.n_heads(model.config), spec.head_size(model.config)
    prefix = spec.blocks + "."
    out = []
    for name, p in model.named_parameters():
        if not (name.startswith(prefix) and name.endswith(".weight")):
            continue
        layer_str, _, rest = name.removeprefix(prefix).partition(".")
        role = spec.matrices.get(rest.removesuffix(".weight"))
        if role is not None:
            out.append(MaskableMatrix(name, int(layer_str), role, tuple(p.shape), spec.name,
                                      n_heads, head_size))
    return out


def parameter_groups(model) -> dict[str, int]:
    """Parameter counts by group: maskable (per kind), and always kept
    (embedding, unembedding, layer norms, biases, other)."""
    maskable = {m.name: m for m in maskable_matrices(model)}
    spec = architecture(model)

    def ids(modules):
        return {id(p) for module in modules for p in module.parameters()}
    embedding = ids(spec.embeddings_of(model))
    unembedding = ids([model.get_output_embeddings()])
    layer_norm = ids(m for m in model.modules() if isinstance(m, nn.LayerNorm))
    counts = {k: 0 for k in KINDS} | {"embedding": 0, "unembedding": 0, "layer_norm": 0,
                                      "bias": 0, "other": 0}
    seen = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        # GPT-2 ties its unembedding to the embedding: the same Parameter object.
        # (Not data_ptr(): every tensor on the meta device reports 0.)
        if id(p) in seen:
            continue
        seen.add(id(p))
        if name in maskable:
            m = maskable[name]
            for kind in m.kinds:
                counts[kind] += int(m.part(kind).sum()) if m.role == "qkv" else m.numel
        elif id(p) in embedding:
            counts["embedding"] += p.numel()
        elif id(p) in unembedding:
            counts["unembedding"] += p.numel()
        elif id(p) in layer_norm:
            counts["layer_norm"] += p.numel()
        elif name.endswith(".bias"):
            counts["bias"] += p.numel()
        else:
            counts["other"] += p.numel()
    return counts


def count_maskable(model) -> int:
    """Number of maskable weight entries (the paper's 'non-embedding parameters' in masks)."""
    return sum(m.numel for m in maskable_matrices(model))


def anatomy_table(model) -> list[dict]:
    """One row per maskable matrix: name, layer, role, shape, entries, heads."""
    return [dict(layer=m.layer, role=m.role, name=m.name, shape="x".join(map(str, m.shape)),
                 entries=m.numel, heads=m.n_heads if m.role in ("qkv", "o") else 0)
            for m in maskable_matrices(model)]
