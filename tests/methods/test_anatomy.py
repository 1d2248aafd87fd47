"""Anatomy: maskable matrices and head layouts, for GPT-NeoX and GPT-2.

The head layout is verified functionally: zeroing head h's entries through
``MaskableMatrix.part`` must equal zeroing head h's output with a hook.
"""

import pytest
import torch

from bigramlab.methods.anatomy import (KINDS, UnsupportedArchitectureError, anatomy_table,
                                       architecture, count_maskable, maskable_matrices,
                                       parameter_groups)
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

WORLD = TinyWorld(n_layer=2, d_model=32, n_head=4, d_mlp=64)
ROLES = {"gpt_neox": {"attention.query_key_value": "qkv", "attention.dense": "o",
                      "mlp.dense_h_to_4h": "mlp_in", "mlp.dense_4h_to_h": "mlp_out"},
         "gpt2": {"attn.c_attn": "qkv", "attn.c_proj": "o", "mlp.c_fc": "mlp_in",
                  "mlp.c_proj": "mlp_out"}}


def tiny_model(arch):
    torch.manual_seed(0)
    return make_model(arch, WORLD, vocab_size=50, seq_len=16).eval()


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_maskable_matrices_are_the_four_block_weights(arch):
    model = tiny_model(arch)
    mats = maskable_matrices(model)
    assert len(mats) == 4 * WORLD.n_layer
    # naive reference: walk the modules by name
    expected = []
    for name, p in model.named_parameters():
        for suffix, role in ROLES[arch].items():
            if name.endswith(suffix + ".weight"):
                layer = int(name.split(".")[2])
                expected.append((name, layer, role, tuple(p.shape)))
    assert [(m.name, m.layer, m.role, m.shape) for m in mats] == expected
    assert count_maskable(model) == sum(p.numel() for n, p in model.named_parameters()
                                        if n in {m.name for m in mats})
    assert not any("bias" in m.name or "embed" in m.name or "norm" in m.name for m in mats)
    assert len(anatomy_table(model)) == len(mats)


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_parameter_groups_cover_every_parameter_once(arch):
    model = tiny_model(arch)
    groups = parameter_groups(model)
    unique = {p.data_ptr(): p.numel() for p in model.parameters()}
    assert sum(groups.values()) == sum(unique.values())
    d, m = WORLD.d_model, WORLD.d_mlp
    for kind in ("q", "k", "v", "o"):
        assert groups[kind] == WORLD.n_layer * d * d
    assert groups["mlp_in"] == groups["mlp_out"] == WORLD.n_layer * d * m
    assert groups["embedding"] >= 50 * d and groups["other"] == 0


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_parts_partition_each_matrix(arch):
    for m in maskable_matrices(tiny_model(arch)):
        total = torch.zeros(m.shape, dtype=torch.int64)
        for kind in m.kinds:
            total += m.part(kind).long()
            if m.role == "qkv":
                heads = sum(m.part(kind, h).long() for h in range(m.n_heads))
                assert torch.equal(heads.bool(), m.part(kind))
                assert int(heads.max()) == 1
        assert bool((total == 1).all())


def _zero_bias(model):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") and ("attention" in name or "attn" in name):
                p.zero_()


def _o_module(model, arch, layer):
    return (model.gpt_neox.layers[layer].attention.dense if arch == "gpt_neox"
            else model.transformer.h[layer].attn.c_proj)


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
@pytest.mark.parametrize("layer,head", [(0, 0), (0, 3), (1, 2)])
@pytest.mark.parametrize("via", ["qkv", "o"])
def test_head_layout_matches_a_hook(arch, layer, head, via):
    """Dropping head h through its weight entries == zeroing head h's output."""
    model = tiny_model(arch)
    _zero_bias(model)  # with q/k/v biases, a head with zero weights still outputs its v-bias
    x = torch.randint(0, 50, (2, 16))
    hs = WORLD.d_model // WORLD.n_head

    def zero_head(module, args):
        h = args[0].clone()
        h[..., head * hs:(head + 1) * hs] = 0
        return (h,)

    handle = _o_module(model, arch, layer).register_forward_pre_hook(zero_head)
    with torch.no_grad():
        want = model(x).logits
    handle.remove()
    with torch.no_grad():
        reference = model(x).logits
        mat = next(m for m in maskable_matrices(model) if m.layer == layer and m.role == via)
        param = dict(model.named_parameters())[mat.name]
        param[mat.part(None, head) if via == "o" else mat.part("v", head)] = 0
        got = model(x).logits
    assert not torch.allclose(want, reference)  # the head mattered
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_qkv_kind_layout(arch):
    """Zeroing the q and k rows of a head makes its attention uniform (scores 0):
    compare with a model whose q/k weights for that head are zeroed by hand
    from the reference layout of each architecture."""
    model = tiny_model(arch)
    mat = maskable_matrices(model)[0]
    d, hs, nh = WORLD.d_model, WORLD.d_model // WORLD.n_head, WORLD.n_head
    for kind in "qkv":
        for h in range(nh):
            j = "qkv".index(kind)
            mask = torch.zeros(mat.shape, dtype=torch.bool)
            if arch == "gpt_neox":  # rows: per head [q k v]
                mask[(3 * h + j) * hs:(3 * h + j + 1) * hs, :] = True
            else:  # columns: [q all heads | k | v]
                mask[:, j * d + h * hs:j * d + (h + 1) * hs] = True
            assert torch.equal(mat.part(kind, h), mask)


def test_part_rejects_wrong_kind_and_head():
    mats = maskable_matrices(tiny_model("gpt_neox"))
    with pytest.raises(ValueError, match="not 'q'"):
        mats[2].part("q")
    with pytest.raises(ValueError, match="no attention head"):
        mats[0].part("q", 99)
    assert set(KINDS) == {k for m in mats for k in m.kinds}


def test_unsupported_architecture_is_named():
    from transformers import LlamaConfig, LlamaForCausalLM
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2))
    with pytest.raises(UnsupportedArchitectureError, match="llama.*load_model"):
        architecture(model)


@pytest.mark.parametrize("name", ["pythia-70m", "gpt2"])
def test_parameter_groups_on_meta_models(name):
    """Real shapes on the meta device (no weights): groups still add up."""
    from bigramlab import get_profile
    from bigramlab.worlds.models import make_meta_model
    model = make_meta_model(get_profile(name))
    groups = parameter_groups(model)
    assert sum(groups.values()) == sum(p.numel() for p in model.parameters())
    assert sum(groups[k] for k in KINDS) == count_maskable(model)
    if name == "pythia-70m":
        assert count_maskable(model) == 18_874_368
        assert groups["embedding"] == groups["unembedding"] == 50304 * 512
