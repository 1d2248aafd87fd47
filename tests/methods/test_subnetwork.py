"""Subnetworks: file formats, validation, apply/restore, counts, edits, released downloads.

References are naive: masks are applied by zeroing a deep copy of the model,
heads and MLP units are dropped with hooks, counts are taken by slicing each
architecture's layout by hand (not through ``MaskableMatrix.part``).
"""

import copy
import os
import pickle
import re
import time

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods.anatomy import UnsupportedArchitectureError, maskable_matrices
from bigramlab.methods.subnetwork import Subnetwork, SubnetworkFileError, UnsafePickleError
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds import hub
from bigramlab.worlds.hub import HubUnavailableError, load_released_subnetwork
from bigramlab.worlds.models import make_model

WORLD = TinyWorld(n_layer=2, d_model=32, n_head=4, d_mlp=64)
D, NH, HS, L = WORLD.d_model, WORLD.n_head, WORLD.d_model // WORLD.n_head, WORLD.n_layer
ARCHS = ["gpt_neox", "gpt2"]
SETTINGS = settings(max_examples=15, deadline=None)


def tiny_model(arch):
    """A tiny random model whose biases are random too: freshly initialised
    models have all-zero biases, which would hide any bias-related bug."""
    torch.manual_seed(0)
    model = make_model(arch, WORLD, vocab_size=50, seq_len=16).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.5)
    return model


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models run fastest on one thread; on a busy machine, several threads
    made each forward pass ~50x slower (OpenMP waiting on busy cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


MODELS = {arch: tiny_model(arch) for arch in ARCHS}  # read-only; copy before editing
X = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(1))


def logits(model):
    with torch.no_grad():
        return model(X).logits


def random_sub(model, p=0.5, seed=0, name="test/model"):
    g = torch.Generator().manual_seed(seed)
    return Subnetwork({m.name: torch.rand(m.shape, generator=g) < p
                       for m in maskable_matrices(model)}, name)


def zeroed_copy(model, sub):
    """Naive reference: a deep copy with every dropped entry set to zero."""
    model = copy.deepcopy(model)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name in sub:
                p[~sub[name]] = 0
    return model


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def assert_bitwise_equal(model, snap):
    for n, p in model.named_parameters():
        assert torch.equal(p, snap[n]), n


def o_module(model, arch, layer):
    return (model.gpt_neox.layers[layer].attention.dense if arch == "gpt_neox"
            else model.transformer.h[layer].attn.c_proj)


def mlp_out_module(model, arch, layer):
    return (model.gpt_neox.layers[layer].mlp.dense_4h_to_h if arch == "gpt_neox"
            else model.transformer.h[layer].mlp.c_proj)


def logits_with_input_zeroed(model, module, index):
    """Logits with ``module``'s input zeroed at ``index`` of its last axis."""
    def hook(mod, args):
        h = args[0].clone()
        h[..., index] = 0
        return (h,)
    handle = module.register_forward_pre_hook(hook)
    try:
        return logits(model)
    finally:
        handle.remove()


# -- files ----------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("suffix", [".safetensors", ".pickle", ".pkl"])
@pytest.mark.parametrize("name", ["EleutherAI/pythia-70m", None])
def test_round_trip(tmp_path, arch, suffix, name):
    sub = random_sub(MODELS[arch], 0.3, seed=2, name=name)
    sub.save(tmp_path / f"s{suffix}")
    back = Subnetwork.load(tmp_path / f"s{suffix}")
    assert back == sub and back.orig_model_name == name
    assert back != random_sub(MODELS[arch], 0.3, seed=3, name=name)
    assert all(m.dtype == torch.bool and m.device.type == "cpu" for m in back.values())


def test_saved_pickle_is_the_released_format(tmp_path):
    sub = random_sub(MODELS["gpt_neox"], name="EleutherAI/pythia-70m")
    sub.save(tmp_path / "s.pickle")
    with open(tmp_path / "s.pickle", "rb") as f:
        raw = pickle.load(f)
    assert type(raw) is dict and raw.pop("orig_model_name") == "EleutherAI/pythia-70m"
    assert list(raw) == [m.name for m in maskable_matrices(MODELS["gpt_neox"])]
    for name, arr in raw.items():
        assert type(arr) is np.ndarray and arr.dtype == np.bool_
        assert np.array_equal(arr, sub[name].numpy())


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("arch", ARCHS)
def test_hand_written_released_pickle_loads(tmp_path, protocol, arch):
    rng = np.random.default_rng(protocol)
    data = {m.name: rng.random(m.shape) < 0.2 for m in maskable_matrices(MODELS[arch])}
    data["orig_model_name"] = "openai-community/gpt2"
    with open(tmp_path / "r.pickle", "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    sub = Subnetwork.load(tmp_path / "r.pickle")
    assert sub.orig_model_name == "openai-community/gpt2"
    assert set(sub) == set(data) - {"orig_model_name"}
    for name, mask in sub.items():
        assert np.array_equal(mask.numpy(), data[name])
    sub.check(MODELS[arch])


def test_numeric_binary_masks_are_accepted_and_others_rejected(tmp_path):
    mats = maskable_matrices(MODELS["gpt2"])
    data = {m.name: np.ones(m.shape, dtype=np.uint8) for m in mats}
    with open(tmp_path / "u.pickle", "wb") as f:
        pickle.dump(data, f)
    assert Subnetwork.load(tmp_path / "u.pickle") == Subnetwork.full(MODELS["gpt2"])
    data[mats[0].name][0, 0] = 2
    with open(tmp_path / "u.pickle", "wb") as f:
        pickle.dump(data, f)
    with pytest.raises(SubnetworkFileError, match="not binary"):
        Subnetwork.load(tmp_path / "u.pickle")


def test_unknown_suffix_names_both_formats(tmp_path):
    for call in (lambda p: Subnetwork.load(p), lambda p: Subnetwork.full(MODELS["gpt2"]).save(p)):
        with pytest.raises(ValueError, match=r"\.pickle.*\.safetensors"):
            call(tmp_path / "s.pt")


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evals:
    def __reduce__(self):
        return (eval, ("__import__('os').getcwd()",))


@pytest.mark.parametrize("payload", ["system", "eval", "nested"])
def test_malicious_pickle_is_refused(tmp_path, payload):
    marker = tmp_path / "pwned"
    evil = {"system": _RunsCode(marker), "eval": _Evals(),
            # hidden inside an otherwise valid subnetwork dict
            "nested": {"a.weight": np.ones((2, 2), bool), "orig_model_name": _RunsCode(marker)}}
    with open(tmp_path / "evil.pickle", "wb") as f:
        pickle.dump(evil[payload], f)
    with pytest.raises(UnsafePickleError, match="refusing to load"):
        Subnetwork.load(tmp_path / "evil.pickle")
    assert not marker.exists()


def test_pickle_of_something_else_is_rejected(tmp_path):
    for obj, msg in [([1, 2], "not a dict"), ({"a.weight": 3}, "unexpected"),
                     ({"a.weight": np.ones(2, bool), "orig_model_name": 7}, "unexpected")]:
        with open(tmp_path / "x.pickle", "wb") as f:
            pickle.dump(obj, f)
        with pytest.raises(SubnetworkFileError, match=msg):
            Subnetwork.load(tmp_path / "x.pickle")


@pytest.mark.parametrize("suffix", [".pickle", ".safetensors"])
@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_file_says_download_again(tmp_path, suffix, damage):
    path = tmp_path / f"s{suffix}"
    random_sub(MODELS["gpt_neox"]).save(path)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2] if damage == "truncate" else b"\x00garbage" * 9)
    with pytest.raises(SubnetworkFileError, match="damaged.*download it again"):
        Subnetwork.load(path)


# -- checking -------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_check_names_the_first_mismatch(arch):
    model = MODELS[arch]
    full = Subnetwork.full(model)
    names = list(full)
    full.check(model)
    missing = Subnetwork({n: m for n, m in full.items() if n not in names[1:3]}, "x")
    with pytest.raises(ValueError, match=f"no mask for {names[1]}.*made for x"):
        missing.check(model)
    extra = Subnetwork(dict(full) | {"lm_head.weight": torch.ones(2, 2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="mask for lm_head.weight.*Subnetwork.full"):
        extra.check(model)
    shape = dict(full) | {names[2]: torch.ones(3, 5, dtype=torch.bool),
                          names[3]: torch.ones(1, 1, dtype=torch.bool)}
    expected = tuple(full[names[2]].shape)
    with pytest.raises(ValueError, match=re.escape(f"{names[2]} has shape (3, 5), the model's "
                                                   f"parameter has shape {expected}")):
        Subnetwork(shape).check(model)
    other = MODELS["gpt2" if arch == "gpt_neox" else "gpt_neox"]
    before = snapshot(other)
    with pytest.raises(ValueError, match=f"no mask for {maskable_matrices(other)[0].name}"):
        with full.apply(other):
            pass
    assert_bitwise_equal(other, before)


def test_unsupported_architecture_is_rejected():
    from transformers import LlamaConfig, LlamaForCausalLM
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2,
                                         num_key_value_heads=2))
    sub = Subnetwork.full(MODELS["gpt2"])
    for call in (sub.check, sub.counts_by_layer, Subnetwork.full):
        with pytest.raises(UnsupportedArchitectureError):
            call(model)


# -- apply ------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
@SETTINGS
@given(p=st.sampled_from([0.05, 0.5, 0.95]), seed=st.integers(0, 2**16))
def test_apply_equals_zeroing_a_copy_and_restores_exactly(arch, p, seed):
    model = MODELS[arch]
    sub = random_sub(model, p, seed)
    before = snapshot(model)
    want = logits(zeroed_copy(model, sub))
    with sub.apply(model) as m:
        assert m is model
        got = logits(model)
        for name, param in model.named_parameters():
            # dropped entries are zero; kept entries, biases, embeddings, norms untouched
            expect = before[name].masked_fill(~sub[name], 0) if name in sub else before[name]
            assert torch.equal(param, expect), name
    torch.testing.assert_close(got, want)
    assert_bitwise_equal(model, before)
    assert not torch.allclose(got, logits(model))  # the mask mattered


@pytest.mark.parametrize("arch", ARCHS)
def test_apply_restores_after_an_exception(arch):
    model = MODELS[arch]
    before = snapshot(model)
    ptrs = {n: p.data_ptr() for n, p in model.named_parameters()}
    with pytest.raises(RuntimeError, match="boom"):
        with Subnetwork.empty(model).apply(model):
            assert logits(model).abs().sum() > 0
            raise RuntimeError("boom")
    assert_bitwise_equal(model, before)
    assert ptrs == {n: p.data_ptr() for n, p in model.named_parameters()}


@pytest.mark.parametrize("arch", ARCHS)
def test_full_is_the_model_and_empty_zeroes_every_block_matrix(arch):
    model = MODELS[arch]
    with Subnetwork.full(model).apply(model):
        assert torch.equal(logits(model), logits(copy.deepcopy(model)))
    zeroed = copy.deepcopy(model)
    with torch.no_grad():
        for m in maskable_matrices(zeroed):
            zeroed.get_parameter(m.name).zero_()
    with Subnetwork.empty(model).apply(model):
        torch.testing.assert_close(logits(model), logits(zeroed))
    assert Subnetwork.empty(model).count() == 0


def test_apply_works_under_inference_mode_and_with_gradients():
    model = copy.deepcopy(MODELS["gpt_neox"])
    sub = random_sub(model, 0.5, 4)
    before = snapshot(model)
    want = logits(zeroed_copy(model, sub))
    with torch.inference_mode(), sub.apply(model):
        torch.testing.assert_close(model(X).logits, want)
    with sub.apply(model):
        model(X).logits.sum().backward()  # gradients flow through the masked weights
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert_bitwise_equal(model, before)


@pytest.mark.parametrize("arch", ARCHS)
def test_nested_apply_keeps_the_intersection(arch):
    model = MODELS[arch]
    a, b = random_sub(model, 0.7, 1), random_sub(model, 0.7, 2)
    before = snapshot(model)
    with a.apply(model), b.apply(model):
        got = logits(model)
    torch.testing.assert_close(got, logits(zeroed_copy(model, a & b)))
    assert_bitwise_equal(model, before)


# -- set operations and random subnetworks -------------------------------------------------

@SETTINGS
@given(p=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_complement_partitions(p, seed):
    model = MODELS["gpt_neox"]
    sub = random_sub(model, p, seed)
    rest = sub.complement()
    total = sum(m.numel for m in maskable_matrices(model))
    assert sub.count() + rest.count() == total and sub.overlap(rest) == 0
    assert all(bool(m.all()) for m in (sub | rest).values())
    assert ~rest == sub and (sub & rest).count() == 0


@SETTINGS
@given(p=st.floats(0, 1), q=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_overlap_and_union_match_naive_counts(p, q, seed):
    model = MODELS["gpt2"]
    a, b = random_sub(model, p, seed), random_sub(model, q, seed + 1)
    both = sum(int(np.logical_and(a[n].numpy(), b[n].numpy()).sum()) for n in a)
    either = sum(int(np.logical_or(a[n].numpy(), b[n].numpy()).sum()) for n in a)
    assert a.overlap(b) == both and (a | b).count() == either


def test_combining_subnetworks_of_different_models_fails():
    with pytest.raises(ValueError, match="different matrices"):
        Subnetwork.full(MODELS["gpt2"]).overlap(Subnetwork.full(MODELS["gpt_neox"]))


@pytest.mark.parametrize("arch", ARCHS)
@SETTINGS
@given(p=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_random_like_keeps_each_matrix_count(arch, p, seed):
    model = MODELS[arch]
    sub = random_sub(model, p, seed)
    r1 = Subnetwork.random_like(sub, model, seed=7)
    assert {n: int(m.sum()) for n, m in r1.items()} == {n: int(m.sum()) for n, m in sub.items()}
    assert r1 == Subnetwork.random_like(sub, model, seed=7)
    if 50 < sub.count() < sub.complement().count() + sub.count() - 50:
        assert r1 != Subnetwork.random_like(sub, model, seed=8)
        assert r1 != sub


def test_random_like_of_full_and_empty():
    model = MODELS["gpt2"]
    for sub in (Subnetwork.full(model), Subnetwork.empty(model)):
        assert Subnetwork.random_like(sub, model, seed=0) == sub


# -- counts -----------------------------------------------------------------------------

def naive_kind_masks(arch, name, mask):
    """{kind: mask restricted to that kind}, by slicing each layout by hand."""
    if "query_key_value" in name:  # rows per head [q k v]
        view = mask.view(NH, 3, HS, D)
        return {k: view[:, j] for j, k in enumerate("qkv")}
    if "c_attn" in name:  # columns [q | k | v]
        return {k: mask[:, j * D:(j + 1) * D] for j, k in enumerate("qkv")}
    kind = ("o" if ("attention.dense" in name or "attn.c_proj" in name) else
            "mlp_in" if ("h_to_4h" in name or "c_fc" in name) else "mlp_out")
    return {kind: mask}


def naive_head_counts(arch, sub):
    out = torch.zeros(L, NH, dtype=torch.int64)
    for name, mask in sub.items():
        layer = int(name.split(".")[2])
        for h in range(NH):
            if "query_key_value" in name:
                out[layer, h] += int(mask.view(NH, 3, HS, D)[h].sum())
            elif "c_attn" in name:
                out[layer, h] += int(mask.view(D, 3, NH, HS)[:, :, h].sum())
            elif "attention.dense" in name:  # Linear (out, in): head h = input columns
                out[layer, h] += int(mask[:, h * HS:(h + 1) * HS].sum())
            elif "attn.c_proj" in name:  # Conv1D (in, out): head h = input rows
                out[layer, h] += int(mask[h * HS:(h + 1) * HS, :].sum())
    return out


@pytest.mark.parametrize("arch", ARCHS)
@SETTINGS
@given(p=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_counts_match_naive_loops(arch, p, seed):
    model = MODELS[arch]
    sub = random_sub(model, p, seed)
    by_layer, by_kind, by_layer_kind = {}, {}, {}
    for name, mask in sub.items():
        layer = int(name.split(".")[2])
        by_layer[layer] = by_layer.get(layer, 0) + int(mask.sum())
        for kind, part in naive_kind_masks(arch, name, mask).items():
            by_kind[kind] = by_kind.get(kind, 0) + int(part.sum())
            by_layer_kind[layer, kind] = int(part.sum())
    assert sub.counts_by_layer(model) == by_layer
    assert sub.counts_by_kind(model) == by_kind
    assert sub.counts_by_layer_kind(model) == by_layer_kind
    assert torch.equal(sub.counts_by_head(model), naive_head_counts(arch, sub))
    assert sum(by_layer.values()) == sub.count() == sum(r["kept"] for r in sub.table(model))
    total = sum(m.numel() for m in sub.values())
    assert sub.share(model) == sub.count() / total
    for row in sub.table(model):
        mask = sub[row["name"]]
        assert row["kept"] == int(mask.sum()) and row["total"] == mask.numel()


def test_counts_by_head_of_a_full_model_and_single_kinds():
    model = MODELS["gpt_neox"]
    full = Subnetwork.full(model)
    assert bool((full.counts_by_head(model) == 4 * HS * D).all())
    assert bool((full.counts_by_head(model, kinds=("o",)) == HS * D).all())
    one = Subnetwork.empty(model).keep_head(model, 1, 2, kinds=("v",))
    want = torch.zeros(L, NH, dtype=torch.int64)
    want[1, 2] = HS * D
    assert torch.equal(one.counts_by_head(model), want)
    assert one.counts_by_kind(model) == {"q": 0, "k": 0, "v": HS * D, "o": 0, "mlp_in": 0,
                                         "mlp_out": 0}


# -- edits: functional equivalence with hooks ----------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("layer,head", [(0, 0), (0, 3), (1, 2)])
@pytest.mark.parametrize("variant", ["all", "o_only", "qkv_zero_bias"])
def test_dropping_a_head_equals_zeroing_its_output(arch, layer, head, variant):
    model = copy.deepcopy(MODELS[arch])
    if variant == "qkv_zero_bias":
        # q/k/v biases are never masked: with a head's q/k/v weights dropped but its o
        # entries kept, the head still outputs softmax-weighted v-bias. Zero the
        # fused q/k/v bias so that dropping the weights silences the head.
        with torch.no_grad():
            model.get_parameter(maskable_matrices(model)[4 * layer].name[:-6] + "bias").zero_()
    kinds = {"all": ("q", "k", "v", "o"), "o_only": ("o",), "qkv_zero_bias": ("q", "k", "v")}
    want = logits_with_input_zeroed(model, o_module(model, arch, layer),
                                    slice(head * HS, (head + 1) * HS))
    assert not torch.allclose(want, logits(model))  # the head mattered
    sub = Subnetwork.full(model).drop_head(model, layer, head, kinds=kinds[variant])
    with sub.apply(model):
        torch.testing.assert_close(logits(model), want)


@pytest.mark.parametrize("arch", ARCHS)
def test_dropping_only_qkv_leaks_the_v_bias(arch):
    """The pitfall the zero-bias variant avoids: with random biases it is not equal."""
    model = MODELS[arch]
    want = logits_with_input_zeroed(model, o_module(model, arch, 0), slice(0, HS))
    with Subnetwork.full(model).drop_head(model, 0, 0, kinds=("q", "k", "v")).apply(model):
        assert not torch.allclose(logits(model), want, atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("layer,dims", [(0, 0), (1, [3, 17, 40, 63]), (0, list(range(0, 64, 2)))])
def test_dropping_mlp_dims_equals_zeroing_their_activations(arch, layer, dims):
    model = MODELS[arch]
    want = logits_with_input_zeroed(model, mlp_out_module(model, arch, layer), dims)
    assert not torch.allclose(want, logits(model))
    with Subnetwork.full(model).drop_mlp_dims(model, layer, dims).apply(model):
        torch.testing.assert_close(logits(model), want)
    kept = Subnetwork.empty(model).keep_mlp_dims(model, layer, dims)
    assert kept.count() == 2 * np.size(dims) * D
    assert kept.counts_by_kind(model)["mlp_in"] == kept.counts_by_kind(model)["mlp_out"]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("layer", [0, 1])
def test_drop_and_keep_layer(arch, layer):
    model = MODELS[arch]
    sub = random_sub(model, 0.8, seed=layer)
    dropped = sub.drop_layer(model, layer)
    reference = Subnetwork({n: m & (int(n.split(".")[2]) != layer) for n, m in sub.items()},
                           sub.orig_model_name)
    assert dropped == reference
    with dropped.apply(model):
        torch.testing.assert_close(logits(model), logits(zeroed_copy(model, reference)))
    counts = Subnetwork.empty(model).keep_layer(model, layer).counts_by_layer(model)
    per_layer = 4 * D * D + 2 * D * WORLD.d_mlp
    assert counts == {i: per_layer if i == layer else 0 for i in range(L)}


@pytest.mark.parametrize("arch", ARCHS)
def test_keep_is_the_complement_of_drop_and_edits_are_new_objects(arch):
    model = MODELS[arch]
    full, empty = Subnetwork.full(model), Subnetwork.empty(model)
    assert empty.keep_head(model, 1, 3) == ~full.drop_head(model, 1, 3)
    assert empty.keep_mlp_dims(model, 0, [5, 6]) == ~full.drop_mlp_dims(model, 0, [5, 6])
    assert empty.keep_layer(model, 0) == ~full.drop_layer(model, 0)
    assert empty.keep_head(model, 1, 3).count() == 4 * HS * D
    sub = random_sub(model)
    before = {n: m.clone() for n, m in sub.items()}
    sub.drop_head(model, 0, 1).keep_mlp_dims(model, 1, [2]).drop_layer(model, 1)
    assert all(torch.equal(sub[n], m) for n, m in before.items())


def test_edit_arguments_are_checked():
    model = MODELS["gpt2"]
    full = Subnetwork.full(model)
    with pytest.raises(ValueError, match="layer 5 is not a layer"):
        full.drop_layer(model, 5)
    with pytest.raises(ValueError, match="no attention head 4"):
        full.drop_head(model, 0, 4)
    with pytest.raises(ValueError, match="MLP dimensions must lie in 0..63"):
        full.drop_mlp_dims(model, 0, [64])


# -- mask logits ------------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.sampled_from([0.0, -0.0, 1e-30, -1e-30, 3.0, -7.5, float("inf"),
                                 float("-inf")]) | st.floats(allow_nan=False, width=32),
                min_size=6, max_size=6))
def test_from_mask_logits_keeps_exactly_the_positive_logits(values):
    s = torch.tensor(values, dtype=torch.float32).view(2, 3)
    sub = Subnetwork.from_mask_logits({"w": s, "u": s.numpy() * -1}, "m")
    assert sub["w"].tolist() == [[v > 0 for v in row] for row in s.tolist()]
    assert sub["u"].tolist() == [[-v > 0 for v in row] for row in s.tolist()]
    assert sub.orig_model_name == "m"


def test_from_mask_logits_at_init_keeps_nothing():
    # s starts at 0.0 (soft mask 0.5): the strict threshold s > 0 drops it
    model = MODELS["gpt_neox"]
    sub = Subnetwork.from_mask_logits({m.name: torch.zeros(m.shape, requires_grad=True)
                                       for m in maskable_matrices(model)})
    assert sub == Subnetwork.empty(model)


# -- released subnetworks from the Hub ---------------------------------------------------------

@pytest.mark.parametrize("name,lam,repo,filename", [
    ("EleutherAI/pythia-70m", 10, "tylerachang/bigram-subnetworks-pythia-70m",
     "subnetwork_dict_lambda1e1.pickle"),
    ("pythia-160m", 1, "tylerachang/bigram-subnetworks-pythia-160m",
     "subnetwork_dict_lambda1.pickle"),
    ("pythia-1b", None, "tylerachang/bigram-subnetworks-pythia-1b",
     "subnetwork_dict_lambda1e2.pickle"),
    ("gpt2", 10, "tylerachang/bigram-subnetworks-gpt2-small", "subnetwork_dict_lambda1e1.pickle"),
    ("openai-community/gpt2", None, "tylerachang/bigram-subnetworks-gpt2-small",
     "subnetwork_dict_lambda1e1.pickle"),
    ("openai-community/gpt2-large", 100.0, "tylerachang/bigram-subnetworks-gpt2-large",
     "subnetwork_dict_lambda1e2.pickle"),
])
def test_load_released_subnetwork_asks_for_the_right_file(tmp_path, monkeypatch, name, lam,
                                                         repo, filename):
    import huggingface_hub
    rng = np.random.default_rng(0)
    data = {m.name: rng.random(m.shape) < 0.1 for m in maskable_matrices(MODELS["gpt2"])}
    data["orig_model_name"] = name
    path = tmp_path / filename
    with open(path, "wb") as f:
        pickle.dump(data, f)
    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename, kwargs))
        return str(path)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    sub = load_released_subnetwork(name, lam)
    assert calls == [(repo, filename, {"local_files_only": True})]
    assert sub.orig_model_name == name and set(sub) == set(data) - {"orig_model_name"}
    assert all(np.array_equal(sub[n].numpy(), data[n]) for n in sub)


def test_load_released_subnetwork_downloads_when_not_cached(tmp_path, monkeypatch):
    import huggingface_hub
    from huggingface_hub.utils import LocalEntryNotFoundError  # also there in huggingface_hub 0.20
    Subnetwork.full(MODELS["gpt_neox"]).save(tmp_path / "s.pickle")
    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append(kwargs)
        if kwargs.get("local_files_only"):
            raise LocalEntryNotFoundError("not cached")
        return str(tmp_path / "s.pickle")
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(hub, "hub_reachable", lambda timeout=3.0: True)
    assert load_released_subnetwork("pythia-70m") == Subnetwork.full(MODELS["gpt_neox"])
    assert calls == [{"local_files_only": True}, {}]


def test_load_released_subnetwork_rejects_unreleased_models_and_lambdas():
    supported = "pythia-70m, pythia-160m, pythia-410m, pythia-1b, gpt2, gpt2-medium, gpt2-large"
    for name in ("EleutherAI/pythia-14m", "pythia-70m-deduped", "someone/gpt2", "llama"):
        with pytest.raises(ValueError, match=f"released for: {supported}"):
            load_released_subnetwork(name, 10)
    with pytest.raises(ValueError, match="released lambdas: 10, 1$"):
        load_released_subnetwork("pythia-70m", 100)
    with pytest.raises(ValueError, match="released lambdas: 100, 10, 1$"):
        load_released_subnetwork("gpt2-large", 5)


def test_load_released_subnetwork_without_network_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    t = time.perf_counter()
    want = "bigram-subnetworks-pythia-70m/subnetwork_dict_lambda1e1.*not reachable"
    with pytest.raises(HubUnavailableError, match=want):
        load_released_subnetwork("EleutherAI/pythia-70m", 10)
    assert time.perf_counter() - t < 60
