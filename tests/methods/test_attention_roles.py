"""Query/key versus value/output shares (section 4.2), against a naive reference.

The reference slices each architecture's stored weights by hand: GPT-NeoX's
fused ``query_key_value`` is a Linear (3d, d) whose rows are grouped per head,
(heads, [q, k, v], head_size); GPT-2's ``c_attn`` is a Conv1D (d, 3d) whose
columns are [q | k | v]. The "thirds" reading cuts the output axis into three
contiguous blocks whatever the architecture. No ``MaskableMatrix.part``, no
``counts_by_kind``.
"""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods.attention_roles import query_key_value_output
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

WORLD = TinyWorld(n_layer=2, d_model=32, n_head=4, d_mlp=64)
D, NH, HS = WORLD.d_model, WORLD.n_head, WORLD.d_model // WORLD.n_head
ARCHS = ["gpt_neox", "gpt2"]
MODELS = {arch: make_model(arch, WORLD, vocab_size=50, seq_len=16).eval() for arch in ARCHS}


def naive(sub: Subnetwork, arch: str, split: str) -> tuple[int, int]:
    """(query/key, value/output) kept entries, sliced by hand."""
    qk = vo = 0
    for name, kept in sub.items():
        if name.endswith(("attention.dense.weight", "attn.c_proj.weight")):
            vo += int(kept.sum())
        elif name.endswith("query_key_value.weight"):  # Linear (3d, d)
            if split == "thirds":
                qk, vo = qk + int(kept[:2 * D].sum()), vo + int(kept[2 * D:].sum())
            else:
                per_head = kept.reshape(NH, 3, HS, D)
                qk, vo = qk + int(per_head[:, :2].sum()), vo + int(per_head[:, 2].sum())
        elif name.endswith("attn.c_attn.weight"):  # Conv1D (d, 3d): both splits agree
            qk, vo = qk + int(kept[:, :2 * D].sum()), vo + int(kept[:, 2 * D:].sum())
    return qk, vo


def random_subnetwork(arch, density, seed):
    full = Subnetwork.full(MODELS[arch])
    g = torch.Generator().manual_seed(seed)
    return Subnetwork({n: torch.rand(m.shape, generator=g) < density for n, m in full.items()})


@settings(max_examples=25, deadline=None)
@given(arch=st.sampled_from(ARCHS), split=st.sampled_from(["per_head", "thirds"]),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 2**31 - 1))
def test_counts_equal_the_hand_sliced_reference(arch, split, density, seed):
    sub = random_subnetwork(arch, density, seed)
    got = query_key_value_output(sub, MODELS[arch], split=split)
    assert (got["query_key"], got["value_output"]) == naive(sub, arch, split)
    attention = sum(int(m.sum()) for n, m in sub.items()
                    if "mlp" not in n)  # every kept entry outside the MLPs
    assert got["attention"] == got["query_key"] + got["value_output"] == attention
    assert got["kept"] == sub.count()
    if got["kept"]:
        assert math.isclose(got["query_key_share"], got["query_key"] / sub.count())
        assert math.isclose(got["value_output_share"], got["value_output"] / sub.count())
    if got["attention"]:
        assert math.isclose(got["query_key_of_attention"], got["query_key"] / attention)


def test_one_heads_values_per_head_and_as_thirds():
    """GPT-NeoX: head 1's v rows are value entries, but the [Q|K|V] reading puts
    them (rows 40-47 of 96) in its "K" third; head 3's q rows (72-79) it calls values."""
    model = MODELS["gpt_neox"]
    empty = Subnetwork.empty(model)
    name = "gpt_neox.layers.0.attention.query_key_value.weight"
    masks = dict(empty)
    masks[name] = empty[name].clone()
    masks[name][(3 * 1 + 2) * HS:(3 * 1 + 3) * HS] = True  # head 1's v
    masks[name][(3 * 3 + 0) * HS:(3 * 3 + 1) * HS] = True  # head 3's q
    sub = Subnetwork(masks)
    right = query_key_value_output(sub, model)
    thirds = query_key_value_output(sub, model, split="thirds")
    assert (right["query_key"], right["value_output"]) == (HS * D, HS * D)
    assert (thirds["query_key"], thirds["value_output"]) == (HS * D, HS * D)
    masks[name][(3 * 3 + 0) * HS:(3 * 3 + 1) * HS] = False  # now only head 1's v
    sub = Subnetwork(masks)
    assert query_key_value_output(sub, model)["value_output"] == HS * D
    assert query_key_value_output(sub, model, split="thirds")["query_key"] == HS * D


def test_gpt2_splits_agree_and_mlp_entries_count_for_neither():
    model = MODELS["gpt2"]
    sub = random_subnetwork("gpt2", 0.3, 7)
    assert query_key_value_output(sub, model) == query_key_value_output(sub, model, "thirds")
    mlp_only = Subnetwork({n: m if "mlp" in n else torch.zeros_like(m) for n, m in sub.items()})
    got = query_key_value_output(mlp_only, model)
    assert (got["query_key"], got["value_output"], got["attention"]) == (0, 0, 0)
    assert got["query_key_share"] == 0 and math.isnan(got["query_key_of_attention"])


def test_empty_subnetwork_and_bad_input():
    model = MODELS["gpt_neox"]
    got = query_key_value_output(Subnetwork.empty(model), model)
    assert got["kept"] == 0 and math.isnan(got["query_key_share"])
    with pytest.raises(ValueError, match="per_head"):
        query_key_value_output(Subnetwork.full(model), model, split="rows")
    with pytest.raises(ValueError, match="made for"):
        query_key_value_output(Subnetwork.full(MODELS["gpt2"]), model)
