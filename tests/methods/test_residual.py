"""Reading the residual stream: hidden states, block writes, the logit lens.

Every function is compared with a naive reference written here: hooks on each
block's output and the embeddings computed by hand for the hidden states, the
layer norm formula and a matrix product for the lens, a Python loop for the
surprisals.
"""

import math

import pytest
import torch

from bigramlab.methods.anatomy import UnsupportedArchitectureError, maskable_matrices
from bigramlab.methods.residual import (blocks, final_layer_norm, hidden_states, lens_stats,
                                        lens_surprisal, lens_top_tokens, logit_lens,
                                        residual_writes, unembedding, zero_head_output, zeroed)
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

WORLD = TinyWorld(n_layer=3, d_model=32, n_head=4, d_mlp=64)
VOCAB, SEQ = 50, 16
ARCHS = ["gpt_neox", "gpt2"]


def model_of(arch, seed=0):
    """A small random model whose layer norms and biases are random too (fresh ones are
    weight 1 / bias 0, which would hide a missing or doubled layer norm)."""
    torch.manual_seed(seed)
    model = make_model(arch, WORLD, VOCAB, SEQ).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                p.copy_(1 + 0.3 * torch.randn_like(p) if name.endswith("weight")
                        else 0.3 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))
    return model


def ids_of(batch=2, seed=1):
    return torch.randint(0, VOCAB, (batch, SEQ), generator=torch.Generator().manual_seed(seed))


def naive_hidden_states(model, ids):
    """h_0 by hand from the embedding tables, h_{l+1} = output of block l (hooks)."""
    arch = model.config.model_type
    if arch == "gpt_neox":
        h0 = model.gpt_neox.embed_in(ids)
    else:
        h0 = model.transformer.wte(ids) + model.transformer.wpe(torch.arange(ids.shape[1]))[None]
    outs = []
    handles = [b.register_forward_hook(
        lambda m, a, o: outs.append(o[0] if isinstance(o, tuple) else o)) for b in blocks(model)]
    with torch.no_grad():
        model(ids)
    for h in handles:
        h.remove()
    return torch.stack([h0.detach(), *outs])


def naive_lens(model, h):
    ln = final_layer_norm(model)
    mu = h.mean(-1, keepdim=True)
    var = ((h - mu) ** 2).mean(-1, keepdim=True)
    normed = (h - mu) / torch.sqrt(var + ln.eps) * ln.weight + ln.bias
    return normed @ unembedding(model).weight.T


@pytest.mark.parametrize("arch", ARCHS)
def test_hidden_states_match_block_outputs(arch):
    model, ids = model_of(arch), ids_of()
    got = hidden_states(model, ids)
    assert got.shape == (WORLD.n_layer + 1, 2, SEQ, WORLD.d_model)
    torch.testing.assert_close(got, naive_hidden_states(model, ids), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_last_state_is_before_the_final_layer_norm(arch):
    """Hugging Face's last hidden state is ln_f(h_L); ours is h_L itself."""
    model, ids = model_of(arch), ids_of()
    with torch.no_grad():
        hf = model(ids, output_hidden_states=True).hidden_states
    ours = hidden_states(model, ids)
    for layer in range(WORLD.n_layer):  # all but the last agree
        torch.testing.assert_close(ours[layer], hf[layer])
    assert not torch.allclose(ours[-1], hf[-1], atol=1e-2)
    with torch.no_grad():
        torch.testing.assert_close(final_layer_norm(model)(ours[-1]), hf[-1])


@pytest.mark.parametrize("arch", ARCHS)
def test_logit_lens_is_layer_norm_then_unembedding(arch):
    model, ids = model_of(arch), ids_of()
    hidden = hidden_states(model, ids)
    lens = logit_lens(model, hidden)
    assert lens.shape == (WORLD.n_layer + 1, 2, SEQ, VOCAB)
    with torch.no_grad():
        torch.testing.assert_close(lens, naive_lens(model, hidden), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(lens[-1], model(ids).logits, rtol=1e-5, atol=1e-5)


def test_one_dimensional_input_is_a_batch_of_one():
    model, ids = model_of("gpt_neox"), ids_of(1)
    torch.testing.assert_close(hidden_states(model, ids[0]), hidden_states(model, ids))


def test_attention_mask_is_passed_on():
    model, ids = model_of("gpt_neox"), ids_of(2)
    ones = torch.ones_like(ids)
    torch.testing.assert_close(hidden_states(model, ids, ones), hidden_states(model, ids))
    half = ones.clone()
    half[:, : SEQ // 2] = 0  # left padding changes what the rest attends to
    assert not torch.allclose(hidden_states(model, ids, half)[-1, :, -1],
                              hidden_states(model, ids)[-1, :, -1])


@pytest.mark.parametrize("arch", ARCHS)
def test_residual_writes_add_up(arch):
    model, ids = model_of(arch), ids_of()
    hidden = hidden_states(model, ids)
    writes = residual_writes(model, ids)
    for key in ("attn", "mlp", "mlp_in"):
        assert writes[key].shape == (WORLD.n_layer, 2, SEQ, WORLD.d_model)
    torch.testing.assert_close(hidden[1:], hidden[:-1] + writes["attn"] + writes["mlp"],
                               rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        for layer, block in enumerate(blocks(model)):
            if arch == "gpt_neox":  # parallel: the MLP reads h_l, not h_l + attn
                want = block.post_attention_layernorm(hidden[layer])
            else:                   # sequential: the MLP reads h_l + attn
                want = block.ln_2(hidden[layer] + writes["attn"][layer])
            torch.testing.assert_close(writes["mlp_in"][layer], want)


@pytest.mark.parametrize("arch", ARCHS)
def test_lens_surprisal_matches_a_loop(arch):
    model, ids = model_of(arch), ids_of(3)
    got = lens_surprisal(model, ids, batch_size=2)
    assert got.shape == (WORLD.n_layer + 1, 3, SEQ - 1)
    lens = logit_lens(model, hidden_states(model, ids))
    want = torch.empty_like(got)
    for layer in range(WORLD.n_layer + 1):
        for b in range(3):
            for i in range(SEQ - 1):
                p = torch.softmax(lens[layer, b, i].double(), -1)[ids[b, i + 1]]
                want[layer, b, i] = -math.log2(float(p))
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(lens_surprisal(model, ids, batch_size=8), got)


@pytest.mark.parametrize("arch", ARCHS)
def test_lens_stats_match_a_loop(arch):
    model, ids = model_of(arch), ids_of(3)
    rows = lens_stats(model, ids, batch_size=2)
    assert [r["layer"] for r in rows] == list(range(WORLD.n_layer + 1))
    lens = naive_lens(model, naive_hidden_states(model, ids)).detach()
    with torch.no_grad():
        final_top = model(ids).logits.argmax(-1)
    for layer, row in enumerate(rows):
        bits, hits, agree, n = 0.0, 0, 0, 0
        for b in range(3):
            for i in range(SEQ - 1):
                logits = lens[layer, b, i].double()
                bits += -math.log2(float(torch.softmax(logits, -1)[ids[b, i + 1]]))
                hits += int(logits.argmax()) == int(ids[b, i + 1])
                agree += int(logits.argmax()) == int(final_top[b, i])
                n += 1
        assert row["surprisal_bits"] == pytest.approx(bits / n, rel=1e-4)
        assert row["top1_acc"] == pytest.approx(hits / n)
        assert row["agrees_with_model"] == pytest.approx(agree / n)
    assert rows[-1]["agrees_with_model"] == 1.0


class _Tok:
    def decode(self, ids):
        return "".join(f"<{i}>" for i in ids)


def test_lens_top_tokens_rows():
    model, ids = model_of("gpt_neox"), ids_of(1)
    rows = lens_top_tokens(model, _Tok(), ids)
    assert len(rows) == SEQ
    with torch.no_grad():
        final = model(ids).logits[0].argmax(-1)
    lens = logit_lens(model, hidden_states(model, ids))[:, 0].argmax(-1)
    for pos, row in enumerate(rows):
        assert row["token"] == repr(f"<{int(ids[0, pos])}>")
        assert row["next"] == (repr(f"<{int(ids[0, pos + 1])}>") if pos + 1 < SEQ else "")
        assert row[f"L{WORLD.n_layer}"] == repr(f"<{int(final[pos])}>")
        assert row["L0"] == repr(f"<{int(lens[0, pos])}>")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("layer,head", [(0, 1), (2, 3)])
def test_zeroing_v_rows_and_bias_equals_zeroing_the_head(arch, layer, head):
    model, ids = model_of(arch), ids_of()
    qkv = next(m for m in maskable_matrices(model) if m.layer == layer and m.role == "qkv")
    bias = qkv.name.removesuffix("weight") + "bias"
    v = qkv.part("v", head)
    v_bias = v[:, 0] if arch == "gpt_neox" else v[0, :]  # Linear (out, in) / Conv1D (in, out)
    with torch.no_grad():
        before = model(ids).logits
        with zero_head_output(model, layer, head):
            want = model(ids).logits
        with zeroed(model, {qkv.name: v, bias: v_bias}):
            got = model(ids).logits
        with zeroed(model, {qkv.name: v}):  # the v bias still flows through the head
            bias_left = model(ids).logits
        after = model(ids).logits
    assert not torch.allclose(want, before, atol=1e-3)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(bias_left, want, atol=1e-4)
    torch.testing.assert_close(after, before)  # hooks removed, weights restored


def test_zeroed_rejects_a_wrong_shape_and_restores():
    model = model_of("gpt_neox")
    name = maskable_matrices(model)[0].name
    before = dict(model.named_parameters())[name].detach().clone()
    with pytest.raises(ValueError, match="shape"):
        with zeroed(model, {name: torch.ones(3, 3, dtype=torch.bool)}):
            pass
    torch.testing.assert_close(dict(model.named_parameters())[name], before)


def test_unsupported_architecture_is_named():
    from transformers import LlamaConfig, LlamaForCausalLM
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2))
    with pytest.raises(UnsupportedArchitectureError, match="llama"):
        hidden_states(model, torch.zeros(1, 4, dtype=torch.long))
