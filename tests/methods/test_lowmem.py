"""methods.lowmem: the low-memory mask step against the default one and naive references."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.methods import sparsify as sp
from bigramlab.methods.anatomy import maskable_matrices
from bigramlab.methods.lowmem import (AdamWLowMoments, LowMemorySteps, MaskedWeight,
                                      recomputed_blocks)
from bigramlab.methods.masks import masked_logits
from bigramlab.methods.sparsify import SparsifyConfig, sparsify
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

WORLD = TinyWorld(n_layer=2, d_model=16, n_head=2, d_mlp=32)
V, SEQ = 32, 12
ARCHS = ["gpt_neox", "gpt2"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(arch="gpt_neox", seed=0):
    torch.manual_seed(seed)
    return make_model(arch, WORLD, V, SEQ).eval().requires_grad_(False)


def data(n=32, seed=0):
    return torch.randint(V, (n, SEQ), generator=torch.Generator().manual_seed(seed))


def hard_ce(logits, x, full_logits_fn=None):
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                                             x[:, 1:].reshape(-1))


def soft_ce(logits, x, full_logits_fn):  # needs the full model: FullModelTarget's shape
    p = torch.softmax(full_logits_fn().float(), -1)
    return -(p * torch.log_softmax(logits.float(), -1)).sum(-1).mean()


def cfg(**kw):
    return SparsifyConfig(**(dict(lam=1.0, lr=0.05, temp_growth=1.05, max_steps=6, batch_size=16,
                                  save_every=2, log_every=1) | kw))


def random_logits(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {m.name: torch.randn(m.shape, generator=g) for m in maskable_matrices(model)}


# ------------------------------------------------------------------ pieces
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.floats(0.5, 20.0), st.integers(0, 10_000))
def test_masked_weight_matches_autograd_of_the_naive_product(rows, cols, t, seed):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(rows, cols, generator=g, dtype=torch.float64)
    s = torch.randn(rows, cols, generator=g, dtype=torch.float64, requires_grad=True)
    up = torch.randn(rows, cols, generator=g, dtype=torch.float64)
    naive = s.detach().clone().requires_grad_(True)
    (w * torch.sigmoid(t * naive) * up).sum().backward()
    out = MaskedWeight.apply(w, s, t)
    assert torch.allclose(out, w * torch.sigmoid(t * s.detach()))
    (out * up).sum().backward()
    assert torch.allclose(s.grad, naive.grad, rtol=1e-10, atol=1e-12)


def test_adamw_with_fp32_moments_is_torchs_adamw():
    g = torch.Generator().manual_seed(0)
    c = cfg(lr=0.01)
    ours = [torch.randn(50, generator=g), torch.randn(3, 4, generator=g)]
    ref = [p.clone().requires_grad_(True) for p in ours]
    opt = torch.optim.AdamW(ref, lr=c.lr, betas=c.betas, eps=c.eps, weight_decay=c.weight_decay)
    mine = AdamWLowMoments(ours, c, moment_dtype=torch.float32)
    low = [p.clone() for p in ours]
    bf = AdamWLowMoments(low, c)  # bf16 moments
    for step in range(20):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        for p, q, r, gr in zip(ours, low, ref, grads):
            p.grad, q.grad, r.grad = gr.clone(), gr.clone(), gr.clone()
        opt.step()
        mine.step()
        bf.step()
    for p, q, r in zip(ours, low, ref):
        assert torch.allclose(p, r.detach(), rtol=1e-5, atol=1e-6)
        # bf16 moments: the same trajectory to within 10% of the most it can move (lr a step)
        assert (q - r.detach()).abs().max() < 0.1 * 20 * c.lr
    assert bf.m[0].dtype == torch.bfloat16 and mine.m[0].dtype == torch.float32


@pytest.mark.parametrize("arch", ARCHS)
def test_recomputed_blocks_give_the_masked_forward_and_its_gradients(arch):
    model, x, t = tiny(arch), data(8), 1.7
    logits = random_logits(model)
    ref = {n: s.clone().requires_grad_(True) for n, s in logits.items()}
    soft = {n: torch.sigmoid(t * s) for n, s in ref.items()}
    want = masked_logits(model, soft, x)
    hard_ce(want, x).backward()
    mine = {n: s.clone().requires_grad_(True) for n, s in logits.items()}
    blocks_before = list(model.modules())
    with recomputed_blocks(model, mine) as box:
        box["T"] = t
        got = model(x, use_cache=False).logits
        hard_ce(got, x).backward()
        box["masked"] = False
        with torch.no_grad():
            assert torch.allclose(model(x, use_cache=False).logits, masked_logits(model, {}, x),
                                  atol=1e-6)
    assert torch.allclose(got, want, atol=1e-5)
    for n in ref:
        assert torch.allclose(mine[n].grad, ref[n].grad, rtol=1e-4, atol=1e-7), n
    assert list(model.modules()) == blocks_before  # the blocks are put back


def test_recomputed_blocks_are_put_back_when_the_block_raises():
    model = tiny()
    before = list(model.modules())
    with pytest.raises(RuntimeError, match="boom"):
        with recomputed_blocks(model, random_logits(model)):
            raise RuntimeError("boom")
    assert list(model.modules()) == before


def test_only_block_matrices_can_be_masked_the_low_memory_way():
    model = tiny()
    with pytest.raises(ValueError, match="outside the Transformer blocks"):
        with recomputed_blocks(model, {"embed_out.weight": torch.zeros(V, 16)}):
            pass


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("target", [hard_ce, soft_ce], ids=["hard", "full-model"])
def test_one_low_memory_step_is_the_default_step(arch, target):
    """fp32 weights and moments: the same update as FlatSteps up to float rounding,
    micro-batches (16 = 8 + 8) and the closed-form penalty gradient included."""
    model, x, c = tiny(arch), data(16), cfg(lam=5.0)
    init = sp.init_mask_logits(model, None, c)
    flat = sp.FlatSteps(init, c)
    low = LowMemorySteps(init, c, micro_batch=8, moment_dtype=torch.float32)
    for t in (1.0, 1.05, 1.1025):
        ce_a, pen_a = flat.step(model, x, target, t)
        ce_b, pen_b = low.step(model, x, target, t)
        assert ce_b == pytest.approx(ce_a, rel=1e-5) and pen_b == pytest.approx(pen_a, rel=1e-5)
    a = sp.unflatten(flat.flat, flat.shapes)
    for n, s in low.final().items():
        assert torch.allclose(s, a[n], atol=1e-5), n
    assert low.kept() == flat.kept() and low.n_entries == flat.n_entries


def test_a_bf16_model_trains_low_and_keeps_its_dtype():
    model = tiny().to(torch.bfloat16)
    r = sparsify(model, data(), hard_ce, cfg(), progress=False, memory="low")
    assert r.steps == 6 and len(r.ce) == 6 and all(map(lambda v: v == v, r.ce))
    assert all(p.dtype == torch.bfloat16 and not p.requires_grad for p in model.parameters())
    assert all(s.dtype == torch.float32 for s in r.mask_logits.values())


def test_low_memory_resume_after_kill_is_bit_identical(tmp_path):
    model, x, c = tiny(), data(), cfg(max_steps=7, save_every=2)
    ref = sparsify(model, x, hard_ce, c, progress=False, memory="low")
    n = [0]

    def dies(logits, ids, f):
        n[0] += 1
        if n[0] == 2 * 5:  # two micro-batches a step: dies inside step 5
            raise KeyboardInterrupt
        return hard_ce(logits, ids)

    with pytest.raises(KeyboardInterrupt):
        sparsify(model, x, dies, c, state_dir=tmp_path, progress=False, memory="low")
    assert torch.load(tmp_path / sp.STATE_FILE, weights_only=True)["run"]["step"] == 4
    with pytest.raises(ValueError, match="memory='low', not 'default'"):
        sparsify(model, x, hard_ce, c, state_dir=tmp_path, progress=False)
    got = sparsify(model, x, hard_ce, c, state_dir=tmp_path, progress=False, memory="low")
    assert got.ce == ref.ce and got.kept == ref.kept
    assert all(torch.equal(got.mask_logits[k], ref.mask_logits[k]) for k in ref.mask_logits)


def test_unknown_memory_mode_is_refused():
    with pytest.raises(ValueError, match="unknown memory mode 'tiny'.*default.*low"):
        sparsify(tiny(), data(), hard_ce, cfg(), memory="tiny")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_a_half_stored_model_computes_in_fp32(arch, dtype):
    """Stored in bf16/fp16, computed in fp32: the fp32 model of the rounded weights
    (a naive reference: the whole model cast back to fp32), masked, gradients too."""
    import copy
    half = tiny(arch).to(dtype)
    ref_model = copy.deepcopy(half).float()
    x, t = data(8), 2.0
    logits = random_logits(ref_model)
    ref = {n: s.clone().requires_grad_(True) for n, s in logits.items()}
    want = masked_logits(ref_model, {n: torch.sigmoid(t * s) for n, s in ref.items()}, x)
    hard_ce(want, x).backward()
    mine = {n: s.clone().requires_grad_(True) for n, s in logits.items()}
    with recomputed_blocks(half, mine, torch.float32) as box:
        box["T"] = t
        got = half(x, use_cache=False).logits
        hard_ce(got, x).backward()
    assert got.dtype == torch.float32 and torch.allclose(got, want, atol=1e-5)
    for n in ref:
        assert torch.allclose(mine[n].grad, ref[n].grad, rtol=1e-4, atol=1e-7), n
    assert all(p.dtype == dtype for p in half.parameters())  # stored as it was
    assert type(half.get_output_embeddings()) is type(ref_model.get_output_embeddings())
