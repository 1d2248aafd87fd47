"""The architecture table: where each supported Transformer keeps its parts.

Every piece of bigramlab that reaches into a model (which matrices can be
masked, how the fused q/k/v matrix splits into heads, where the residual
stream is read, where a head's output is zeroed) asks this table instead of
branching on the architecture's name. Supporting a third architecture means
adding one entry to ``ARCHITECTURES``.

| field            | GPT-NeoX / Pythia                   | GPT-2                        |
|------------------|-------------------------------------|------------------------------|
| blocks           | ``gpt_neox.layers``                 | ``transformer.h``            |
| attention output | ``attention.dense``                 | ``attn.c_proj``              |
| MLP              | ``mlp``                             | ``mlp``                      |
| final norm       | ``gpt_neox.final_layer_norm``       | ``transformer.ln_f``         |
| weights stored   | (out, in): ``nn.Linear``            | (in, out): transformers' ``Conv1D`` |
| fused q/k/v      | per head ``[q_0 k_0 v_0 | q_1 ...]`` | ``[q (all heads) | k | v]``  |

GPT-NeoX's attention views the fused output as (heads, 3 * head_size) and
chunks the last axis, hence its per-head grouping; GPT-2 splits the output
into three thirds first. Defined in Chapter 2 (inside the Transformer).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn


class UnsupportedArchitectureError(ValueError):
    """A model whose architecture bigramlab does not know how to read or mask."""


@dataclass(frozen=True)
class Architecture:
    """Where one architecture keeps its parts (paths are attribute paths, dot-separated)."""

    name: str                 # the Hugging Face config's model_type
    blocks: str               # model -> the ModuleList of Transformer blocks
    attn_out: str             # block -> the attention output projection (reads the heads)
    mlp: str                  # block -> the MLP
    final_norm: str           # model -> the final layer norm (before the unembedding)
    embeddings: tuple[str, ...]  # model -> the embedding modules (token, position)
    matrices: dict[str, str]  # block -> each maskable matrix's module: its role
    stores_in_out: bool       # weights stored (in, out) (Conv1D), not (out, in) (Linear)
    qkv_per_head: bool        # fused q/k/v output grouped per head, not [q | k | v]
    n_heads_key: str          # config attribute: the number of attention heads
    d_model_key: str          # config attribute: the width of the residual stream

    # -- reading a model ----------------------------------------------------------
    def blocks_of(self, model) -> nn.ModuleList:
        return _get(model, self.blocks)

    def attn_out_of(self, block) -> nn.Module:
        return _get(block, self.attn_out)

    def mlp_of(self, block) -> nn.Module:
        return _get(block, self.mlp)

    def final_norm_of(self, model) -> nn.Module:
        return _get(model, self.final_norm)

    def embeddings_of(self, model) -> list[nn.Module]:
        return [_get(model, path) for path in self.embeddings]

    def n_heads(self, config) -> int:
        return getattr(config, self.n_heads_key)

    def head_size(self, config) -> int:
        """Width of one attention head: d_model / n_heads (the one place it is computed)."""
        return getattr(config, self.d_model_key) // self.n_heads(config)

    # -- weight layout ------------------------------------------------------------
    @property
    def out_axis(self) -> int:
        """Axis of a stored block weight that indexes its output features."""
        return 1 if self.stores_in_out else 0

    @property
    def in_axis(self) -> int:
        """Axis of a stored block weight that indexes its input features."""
        return 1 - self.out_axis

    def qkv_start(self, kind: str, head: int, n_heads: int, head_size: int) -> int:
        """First index, along the fused q/k/v output axis, of ``kind``'s rows for ``head``."""
        j = "qkv".index(kind)
        return ((head * 3 + j) if self.qkv_per_head else (j * n_heads + head)) * head_size


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in [
    Architecture(
        name="gpt_neox", blocks="gpt_neox.layers", attn_out="attention.dense", mlp="mlp",
        final_norm="gpt_neox.final_layer_norm", embeddings=("gpt_neox.embed_in",),
        matrices={"attention.query_key_value": "qkv", "attention.dense": "o",
                  "mlp.dense_h_to_4h": "mlp_in", "mlp.dense_4h_to_h": "mlp_out"},
        stores_in_out=False, qkv_per_head=True,
        n_heads_key="num_attention_heads", d_model_key="hidden_size"),
    Architecture(
        name="gpt2", blocks="transformer.h", attn_out="attn.c_proj", mlp="mlp",
        final_norm="transformer.ln_f", embeddings=("transformer.wte", "transformer.wpe"),
        matrices={"attn.c_attn": "qkv", "attn.c_proj": "o", "mlp.c_fc": "mlp_in",
                  "mlp.c_proj": "mlp_out"},
        stores_in_out=True, qkv_per_head=False, n_heads_key="n_head", d_model_key="n_embd"),
]}


def architecture(model) -> Architecture:
    """The table entry of ``model`` (by its config's model_type); an unsupported
    model gets one clear error naming the supported architectures."""
    name = getattr(getattr(model, "config", None), "model_type", None)
    if name not in ARCHITECTURES:
        raise UnsupportedArchitectureError(
            f"bigramlab supports the architectures {', '.join(ARCHITECTURES)} (Pythia is "
            f"gpt_neox); got model_type {name!r} ({type(model).__name__}). Load a supported "
            "model, e.g. with load_model('tiny').")
    return ARCHITECTURES[name]


def _get(obj, path: str):
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj
