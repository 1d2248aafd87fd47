"""Chapter 2 exercise checks: they pass right answers, say 'not implemented yet'
for stubs, name the problem for plausible wrong answers, and never raise."""

import torch

from bigramlab import checks
from bigramlab.methods.residual import final_layer_norm, unembedding
from tests.helpers.checks import contract_tests

MASKED = {"gpt_neox": ("attention.query_key_value", "attention.dense", "mlp.dense_h_to_4h",
                       "mlp.dense_4h_to_h"),
          "gpt2": ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")}


def _block_params(model, suffix):
    prefix = "gpt_neox.layers." if model.config.model_type == "gpt_neox" else "transformer.h."
    return [p for n, p in model.named_parameters()
            if n.startswith(prefix) and n.endswith(suffix)
            and n.removesuffix(suffix).split(".", 3)[-1] in MASKED[model.config.model_type]]


# --- Exercise 2.1 -------------------------------------------------------------

def count_right(model):
    return sum(p.numel() for p in _block_params(model, ".weight"))


def count_with_biases(model):
    return count_right(model) + sum(p.numel() for p in _block_params(model, ".bias"))


def count_everything(model):
    return sum(p.numel() for p in model.parameters())


def count_linear(model):
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def count_attention_only(model):
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(".weight")
               and any(k in n for k in ("query_key_value", "attention.dense", "attn.c_attn",
                                        "attn.c_proj")))


def count_mlp_only(model):
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(".weight")
               and any(k in n for k in ("dense_h_to_4h", "dense_4h_to_h", "mlp.c_fc",
                                        "mlp.c_proj")))


def count_first_block(model):
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith(".weight")
               and (".layers.0." in n or ".h.0." in n)
               and n.removesuffix(".weight").split(".", 3)[-1] in MASKED[model.config.model_type])


def count_with_embeddings(model):
    return count_right(model) + model.get_input_embeddings().weight.numel()


def count_with_layer_norms(model):
    return count_right(model) + sum(p.numel() for n, p in model.named_parameters()
                                    if ("norm" in n or ".ln_" in n)
                                    and (".layers." in n or ".h." in n))


def count_linear_blocks_only(model):
    """nn.Linear weights outside the unembedding: GPT-NeoX's blocks, nothing of GPT-2's."""
    return sum(m.weight.numel() for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and "lm_head" not in n
               and "embed_out" not in n) or count_linear(model)


# --- Exercise 2.2 -------------------------------------------------------------

def slice_right(weight, head, kind, n_heads):
    hs = weight.shape[1] // n_heads
    start = (3 * head + "qkv".index(kind)) * hs
    return weight[start:start + hs]


def slice_qkv_blocks(weight, head, kind, n_heads):  # the [Q|K|V] mistake
    d = weight.shape[1]
    hs = d // n_heads
    start = "qkv".index(kind) * d + head * hs
    return weight[start:start + hs]


def slice_transposed(weight, head, kind, n_heads):
    return slice_right(weight, head, kind, n_heads).T


def slice_kqv_order(weight, head, kind, n_heads):  # per head, but [k q v]
    hs = weight.shape[1] // n_heads
    start = (3 * head + "kqv".index(kind)) * hs
    return weight[start:start + hs]


def slice_head_size_from_rows(weight, head, kind, n_heads):
    hs = weight.shape[0] // n_heads  # 3 * head_size
    start = (3 * head + "qkv".index(kind)) * (weight.shape[1] // n_heads)
    return weight[start:start + hs]


def slice_whole_head(weight, head, kind, n_heads):
    hs = weight.shape[1] // n_heads
    return weight[3 * head * hs:3 * (head + 1) * hs]


def slice_columns(weight, head, kind, n_heads):
    hs = weight.shape[1] // n_heads
    start = "qkv".index(kind) * hs
    return weight[:, head * hs:(head + 1) * hs] if start == 0 else weight[:, start:start + hs]


def slice_head_one_based(weight, head, kind, n_heads):
    return slice_right(weight, (head + 1) % n_heads, kind, n_heads)


def slice_view_wrong_order(weight, head, kind, n_heads):
    """view(n_heads, head_size, 3, d): the [q k v] axis put last (rows interleaved)."""
    d = weight.shape[1]
    return weight.view(n_heads, d // n_heads, 3, d)[head, :, "qkv".index(kind)]


def slice_view_blocks(weight, head, kind, n_heads):
    """view(3, n_heads, head_size, d): the [Q|K|V] layout again, by reshaping."""
    d = weight.shape[1]
    return weight.view(3, n_heads, d // n_heads, d)["qkv".index(kind), head]


# --- Exercise 2.3 -------------------------------------------------------------

def lens_right(model, input_ids, layer, position):
    with torch.no_grad():
        states = model(input_ids, output_hidden_states=True).hidden_states
        h = states[layer][0, position]
        if layer < len(states) - 1:  # the last state is already normalised
            h = final_layer_norm(model)(h)
        return unembedding(model)(h)


def lens_norm_twice(model, input_ids, layer, position):
    with torch.no_grad():
        h = model(input_ids, output_hidden_states=True).hidden_states[layer][0, position]
        return unembedding(model)(final_layer_norm(model)(h))


def lens_no_norm(model, input_ids, layer, position):
    with torch.no_grad():
        states = model(input_ids, output_hidden_states=True).hidden_states
        if layer == len(states) - 1:
            return model(input_ids).logits[0, position]
        return unembedding(model)(states[layer][0, position])


def lens_probs(model, input_ids, layer, position):
    return torch.softmax(lens_right(model, input_ids, layer, position), -1)


def lens_off_by_one(model, input_ids, layer, position):
    n = model.config.num_hidden_layers if hasattr(model.config, "num_hidden_layers") else 0
    return lens_right(model, input_ids, min(layer + 1, n), position)


def lens_previous_position(model, input_ids, layer, position):
    return lens_right(model, input_ids, layer, max(position - 1, 0) if position else 1)


def lens_all_positions(model, input_ids, layer, position):
    with torch.no_grad():
        states = model(input_ids, output_hidden_states=True).hidden_states
        h = states[layer][0]
        if layer < len(states) - 1:
            h = final_layer_norm(model)(h)
        return unembedding(model)(h)


def lens_model_logits(model, input_ids, layer, position):
    with torch.no_grad():
        return model(input_ids).logits[0, position]


def lens_batch_dim(model, input_ids, layer, position):
    return lens_right(model, input_ids, layer, position)[None]


CHECKS = {
    "count": (checks.check_count_maskable, count_right),
    "slice": (checks.check_head_slice, slice_right),
    "lens": (checks.check_logit_lens_at, lens_right),
}

WRONG = [
    ("count", count_with_biases, "biases"),
    ("count", count_everything, "every parameter"),
    ("count", count_linear, "unembedding"),        # GPT-NeoX: lm_head is an nn.Linear
    ("count", count_attention_only, "attention matrices only"),
    ("count", count_mlp_only, "MLP matrices only"),
    ("count", count_first_block, "you counted one block"),
    ("count", count_with_embeddings, "never masked"),  # GPT-NeoX: as large as lm_head
    ("count", count_with_layer_norms, "layer norms"),
    ("count", count_linear_blocks_only, "Conv1D"),
    ("slice", slice_qkv_blocks, "[Q all heads | K | V]"),
    ("slice", slice_transposed, "transpose"),
    ("slice", slice_kqv_order, "instead of head"),
    ("slice", slice_head_size_from_rows, "head_size is d_model / n_heads"),
    ("slice", slice_whole_head, "3 * head_size"),
    ("slice", slice_columns, "you sliced columns"),
    ("slice", slice_head_one_based, "instead of head"),
    ("slice", slice_view_wrong_order, "values differ"),
    ("slice", slice_view_blocks, "[Q all heads | K | V]"),
    ("lens", lens_norm_twice, "final layer norm twice"),
    ("lens", lens_no_norm, "apply the final layer norm"),
    ("lens", lens_probs, "not (log-)probabilities"),
    ("lens", lens_off_by_one, "you read layer"),
    ("lens", lens_previous_position, "you read position"),
    ("lens", lens_all_positions, "every position"),
    ("lens", lens_model_logits, "the model's own output logits"),
    ("lens", lens_batch_dim, "right values, but return shape"),
]


# a number or tensor is expected: "seven" is said to be wrong, not raised
test_right_stub_and_crash, test_wrong_answers_are_named = contract_tests(CHECKS, WRONG,
                                                                         not_a_number=True)


def test_gpt2_conv1d_mistake_is_named(capsys):
    """Counting nn.Linear weights passes GPT-NeoX's blocks (plus its unembedding)
    but misses GPT-2's Conv1D blocks entirely."""
    def linear_blocks_only(model):
        return sum(m.weight.numel() for n, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and "lm_head" not in n
                   and "embed_out" not in n) or count_linear(model)
    assert checks.check_count_maskable(linear_blocks_only).correct is False
    out = capsys.readouterr().out
    assert "Conv1D" in out, out
