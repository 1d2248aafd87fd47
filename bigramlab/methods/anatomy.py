"""Model anatomy: which weight matrices can be masked, and how they split into heads.

Following the paper (METHOD.md section 2), the maskable parameters are the
four weight matrices of every Transformer block:

| kind            | GPT-NeoX / Pythia (Linear: out x in) | GPT-2 (Conv1D: in x out) |
|-----------------|--------------------------------------|--------------------------|
| q, k, v (fused) | ``attention.query_key_value``        | ``attn.c_attn``          |
| o               | ``attention.dense``                  | ``attn.c_proj``          |
| mlp_in          | ``mlp.dense_h_to_4h``                | ``mlp.c_fc``             |
| mlp_out         | ``mlp.dense_4h_to_h``                | ``mlp.c_proj``           |

Everything else (embeddings, unembedding, layer norms, all biases) is always kept.

The fused q/k/v matrices are laid out differently. GPT-NeoX's output rows are
grouped per head, ``[q_0 k_0 v_0 | q_1 k_1 v_1 | ...]`` (its attention views
the output as (heads, 3 * head_size) and chunks the last axis); GPT-2's output
columns are ``[q (all heads) | k | v]``. ``MaskableMatrix.part`` encodes both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

KINDS = ("q", "k", "v", "o", "mlp_in", "mlp_out")

# module suffix -> role of the whole matrix, per architecture
_LAYOUT = {
    "gpt_neox": {"attention.query_key_value": "qkv", "attention.dense": "o",
                 "mlp.dense_h_to_4h": "mlp_in", "mlp.dense_4h_to_h": "mlp_out"},
    "gpt2": {"attn.c_attn": "qkv", "attn.c_proj": "o", "mlp.c_fc": "mlp_in",
             "mlp.c_proj": "mlp_out"},
}
_PREFIX = {"gpt_neox": "gpt_neox.layers.", "gpt2": "transformer.h."}


class UnsupportedArchitectureError(ValueError):
    """A model whose architecture bigramlab does not know how to mask."""


def architecture(model) -> str:
    """'gpt_neox' or 'gpt2', from the model's config; anything else is rejected."""
    arch = getattr(getattr(model, "config", None), "model_type", None)
    if arch not in _LAYOUT:
        raise UnsupportedArchitectureError(
            f"bigramlab masks GPT-NeoX (Pythia) and GPT-2 models; got model_type {arch!r} "
            f"({type(model).__name__}). Load a supported model, e.g. with load_model('tiny').")
    return arch


@dataclass(frozen=True)
class MaskableMatrix:
    """One maskable weight matrix: its parameter name, layer, role and head layout."""

    name: str            # parameter name, e.g. 'gpt_neox.layers.0.mlp.dense_h_to_4h.weight'
    layer: int
    role: str            # 'qkv', 'o', 'mlp_in' or 'mlp_out'
    shape: tuple[int, int]
    arch: str
    n_heads: int
    head_size: int

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
            idx = self._qkv_outputs(kind, head)
            # Linear weights are (out, in); Conv1D weights are (in, out).
            if self.arch == "gpt_neox":
                out[idx, :] = True
            else:
                out[:, idx] = True
        elif self.role == "o" and head is not None:
            idx = torch.arange(head * self.head_size, (head + 1) * self.head_size)
            # the o matrix reads the concatenated heads: its input axis splits into heads
            if self.arch == "gpt_neox":
                out[:, idx] = True
            else:
                out[idx, :] = True
        else:
            out[:] = True
        return out

    def _qkv_outputs(self, kind: str | None, head: int | None) -> torch.Tensor:
        """Indices along the fused q/k/v output axis for ``kind`` and ``head``."""
        hs, nh = self.head_size, self.n_heads
        kinds = [kind] if kind else ["q", "k", "v"]
        heads = [head] if head is not None else range(nh)
        idx = []
        for h in heads:
            for kd in kinds:
                j = "qkv".index(kd)
                # GPT-NeoX: per head [q k v]; GPT-2: [all q | all k | all v]
                start = (h * 3 + j) * hs if self.arch == "gpt_neox" else (j * nh + h) * hs
                idx.append(torch.arange(start, start + hs))
        return torch.cat(idx)


def maskable_matrices(model) -> list[MaskableMatrix]:
    """The maskable weight matrices of a GPT-NeoX or GPT-2 model, in parameter order."""
    arch = architecture(model)
    cfg = model.config
    n_heads = cfg.num_attention_heads if arch == "gpt_neox" else cfg.n_head
    head_size = (cfg.hidden_size if arch == "gpt_neox" else cfg.n_embd) // n_heads
    out = []
    for name, p in model.named_parameters():
        if not (name.startswith(_PREFIX[arch]) and name.endswith(".weight")):
            continue
        layer_str, _, rest = name.removeprefix(_PREFIX[arch]).partition(".")
        role = _LAYOUT[arch].get(rest.removesuffix(".weight"))
        if role is not None:
            out.append(MaskableMatrix(name, int(layer_str), role, tuple(p.shape), arch,
                                      n_heads, head_size))
    return out


def parameter_groups(model) -> dict[str, int]:
    """Parameter counts by group: maskable (per kind), and always kept
    (embedding, unembedding, layer norms, biases, other)."""
    maskable = {m.name: m for m in maskable_matrices(model)}
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
        elif "embed_in" in name or name.endswith(("wte.weight", "wpe.weight")):
            counts["embedding"] += p.numel()
        elif "embed_out" in name or "lm_head" in name:
            counts["unembedding"] += p.numel()
        elif "norm" in name or ".ln_" in name:
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
