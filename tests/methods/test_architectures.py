"""The architecture table (bigramlab.methods.architectures) against each model's own
modules and configs, read by hand."""

import pytest
import torch
from torch import nn

from bigramlab.methods.architectures import (ARCHITECTURES, UnsupportedArchitectureError,
                                             architecture)
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

WORLD = TinyWorld(n_layer=3, d_model=24, n_head=4, d_mlp=40)
# where each architecture keeps its parts, written out by hand from transformers' modules
BY_HAND = {
    "gpt_neox": lambda m: (m.gpt_neox.layers, lambda b: b.attention.dense, lambda b: b.mlp,
                           m.gpt_neox.final_layer_norm, [m.gpt_neox.embed_in]),
    "gpt2": lambda m: (m.transformer.h, lambda b: b.attn.c_proj, lambda b: b.mlp,
                       m.transformer.ln_f, [m.transformer.wte, m.transformer.wpe]),
}


def test_every_entry_is_checked_here():
    assert set(ARCHITECTURES) == set(BY_HAND)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_paths_point_at_the_models_modules(name):
    model = make_model(name, WORLD, 50, 16)
    spec = architecture(model)
    assert spec is ARCHITECTURES[name] and spec.name == model.config.model_type
    blocks, attn_out, mlp, final, embeddings = BY_HAND[name](model)
    assert spec.blocks_of(model) is blocks and len(blocks) == WORLD.n_layer
    for block in blocks:
        assert spec.attn_out_of(block) is attn_out(block)
        assert spec.mlp_of(block) is mlp(block)
    assert spec.final_norm_of(model) is final and isinstance(final, nn.LayerNorm)
    assert all(a is b for a, b in zip(spec.embeddings_of(model), embeddings, strict=True))
    assert (spec.n_heads(model.config), spec.head_size(model.config)) == (4, 6)
    # every maskable matrix exists, and its stored shape follows stores_in_out
    for path, role in spec.matrices.items():
        w = blocks[0].get_submodule(path).weight
        out_features = {"qkv": 3 * 24, "o": 24, "mlp_in": 40, "mlp_out": 24}[role]
        assert w.shape[spec.out_axis] == out_features


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_qkv_layout_matches_the_attention_split(name):
    """Where each head's q, k, v sit along the fused output axis, split the way each
    attention module splits it (test_anatomy checks the same functionally, with hooks)."""
    spec = ARCHITECTURES[name]
    nh, hs, d = 4, 6, 24
    out_index = torch.arange(3 * d)
    # how transformers splits the fused output (its own code, reproduced on indices)
    if spec.qkv_per_head:
        split = out_index.view(nh, 3 * hs).split(hs, dim=-1)  # GPT-NeoX
        where = {k: split[j] for j, k in enumerate("qkv")}
    else:
        split = out_index.split(d)  # GPT-2: [q | k | v], then heads
        where = {k: split[j].view(nh, hs) for j, k in enumerate("qkv")}
    for kind in "qkv":
        for h in range(nh):
            start = spec.qkv_start(kind, h, nh, hs)
            assert torch.equal(torch.arange(start, start + hs), where[kind][h])


def test_unsupported_model_names_the_supported_ones():
    from transformers import LlamaConfig, LlamaForCausalLM
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2))
    with pytest.raises(UnsupportedArchitectureError, match="gpt_neox, gpt2.*'llama'"):
        architecture(model)
    with pytest.raises(UnsupportedArchitectureError, match="gpt_neox, gpt2"):
        make_model("llama", WORLD, 50, 16)
