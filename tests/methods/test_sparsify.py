"""Continuous sparsification (bigramlab.methods.sparsify) on tiny random models.

References are naive: soft masks and penalties from float64 formulas,
masked forwards from a deep copy whose weights are overwritten with W * m,
undecided counts by Python loops, entropies by explicit sums.
"""

import copy
import math

import pytest
import torch

from bigramlab.methods import sparsify as sp
from bigramlab.methods.anatomy import maskable_matrices
from bigramlab.methods.bigrams import BigramModel
from bigramlab.methods.sparsify import (BigramTarget, FullModelTarget, SparsifyConfig,
                                        density_penalty, flatten, init_mask_logits, is_stable,
                                        masked_logits, planted_toy, should_stop, soft_masks,
                                        soft_masks_flat,
                                        sparsify, undecided_counts)
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

WORLD = TinyWorld(n_layer=2, d_model=16, n_head=2, d_mlp=32)
V, SEQ = 32, 16
ARCHS = ["gpt_neox", "gpt2"]


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def tiny(arch="gpt_neox", seed=0):
    torch.manual_seed(seed)
    return make_model(arch, WORLD, V, SEQ).eval()


def chain_data(n=64, seed=0):
    """Sequences following a deterministic bigram chain a -> (7a + 3) mod V."""
    g = torch.Generator().manual_seed(seed)
    x = torch.empty(n, SEQ, dtype=torch.int64)
    x[:, 0] = torch.randint(V, (n,), generator=g)
    for i in range(1, SEQ):
        x[:, i] = (7 * x[:, i - 1] + 3) % V
    return x


def random_data(n=64, seed=0):
    return torch.randint(V, (n, SEQ), generator=torch.Generator().manual_seed(seed))


def cfg(**kw):
    base = dict(lam=1.0, lr=0.05, temp_growth=1.05, max_steps=12, batch_size=8,
                save_every=5, log_every=2)
    return SparsifyConfig(**(base | kw))


def hard_ce(logits, x, full_logits_fn=None):
    """A custom target: next-token hard-label CE (a plain LM loss)."""
    return torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             x[:, 1:].reshape(-1))


# ------------------------------------------------------------------ pieces
@pytest.mark.parametrize("arch", ARCHS)
def test_init_values(arch):
    model = tiny(arch)
    names = [m.name for m in maskable_matrices(model)]
    params = dict(model.named_parameters())
    with torch.no_grad():
        params[names[0]][0, :3] = 0.0
        params[names[2]][1, 1] = 0.0
    s = init_mask_logits(model)
    assert list(s) == names
    for n in names:
        w = params[n]
        assert s[n].shape == w.shape and s[n].dtype == torch.float32
        assert s[n].device == w.device
        assert torch.equal(s[n][w == 0], torch.full_like(s[n][w == 0], -1e6))
        assert torch.equal(s[n][w != 0], torch.zeros_like(s[n][w != 0]))
    assert int((s[names[0]] == -1e6).sum()) >= 3 and s[names[2]][1, 1] == -1e6


def test_soft_mask_and_penalty_match_naive():
    g = torch.Generator().manual_seed(1)
    logits = {"a": torch.randn(3, 4, generator=g) * 3, "b": torch.randn(5, generator=g)}
    T, lam = 1.7, 3.0
    soft = soft_masks(logits, T)
    vals = []
    for n, s in logits.items():
        for v, m in zip(s.reshape(-1).tolist(), soft[n].reshape(-1).tolist()):
            ref = 1.0 / (1.0 + math.exp(-T * v))
            assert m == pytest.approx(ref, rel=1e-6, abs=1e-7)
            vals.append(ref)
    assert float(density_penalty(soft, lam)) == pytest.approx(lam * sum(vals) / len(vals), rel=1e-6)
    assert float(density_penalty(soft, 0.0)) == 0.0


@pytest.mark.parametrize("arch", ARCHS)
def test_masked_forward_equals_manual_substitution(arch):
    model = tiny(arch)
    g = torch.Generator().manual_seed(2)
    logits = {n: torch.randn(s.shape, generator=g) for n, s in init_mask_logits(model).items()}
    soft = soft_masks(logits, 1.3)
    x = random_data(4)
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for n, p in ref.named_parameters():
            if n in soft:
                p.copy_(p * soft[n])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        got = masked_logits(model, soft, x)
        want = ref(x).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for n, p in model.named_parameters():  # the model itself is untouched
        assert torch.equal(p, before[n])


def test_gradient_reaches_only_mask_logits():
    model = tiny()
    for p in model.parameters():
        p.requires_grad_(False)
    logits = init_mask_logits(model)
    for s in logits.values():
        s.requires_grad_(True)
    x = random_data(4)
    loss = hard_ce(masked_logits(model, soft_masks(logits, 1.0), x), x)
    loss.backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in logits.values())
    assert all(p.grad is None for p in model.parameters())


def test_undecided_counts_and_stop_match_naive():
    g = torch.Generator().manual_seed(3)
    for scale in (0.5, 3.0, 30.0):
        logits = {"a": torch.randn(20, 7, generator=g) * scale + 1.0,
                  "b": torch.randn(33, generator=g) * scale}
        T = 2.0
        und = above = below = 0
        for s in logits.values():
            for v in s.reshape(-1).tolist():
                m = 1.0 / (1.0 + math.exp(-T * v))
                above += m > 0.9
                below += m < 0.1
                und += 0.1 < m < 0.9
        assert undecided_counts(logits, T) == (und, above, below)
        assert should_stop(logits, T) == (und < 0.01 * above)
    decided = {"a": torch.tensor([5.0, 5.0, -5.0] * 100)}
    assert should_stop(decided, 1.0)
    assert not should_stop({"a": torch.tensor([5.0] * 99 + [0.0] * 2)}, 1.0)


def test_stability_detector_on_synthetic_curves():
    c = SparsifyConfig()
    flat = [2.0] * 400
    assert is_stable(flat, c)
    assert is_stable([3.0 - i / 400 for i in range(400)], c)       # smooth decrease
    recovered = flat[:100] + [3.0] * 20 + [1.9] * 280                # spike, then back under
    assert is_stable(recovered, c)
    stuck = flat[:100] + [3.0] * 300                                 # never back
    assert not is_stable(stuck, c)
    late = flat[:350] + [3.0] + [1.5] * 49                           # spike in the last 100
    assert not is_stable(late, c)
    back_too_late = flat[:200] + [3.0] * 150 + [1.5] * 50            # back, but within the end
    assert not is_stable(back_too_late, c)
    mult = [0.5] * 100 + [0.7] * 300                                 # +0.2 but x1.4
    assert not is_stable(mult, c)
    assert is_stable([0.5] * 100 + [0.6] * 300, c)                   # +0.1 and x1.2: no spike


# ------------------------------------------------------------------ runs
def test_temperature_schedule_and_result_fields():
    model, data = tiny(), random_data()
    c = cfg(max_steps=9, stop_share=0.0)  # stop_share 0: never stops early
    r = sparsify(model, data, hard_ce, c, progress=False)
    assert r.steps == 9 and not r.early_stopped and r.attempts == 1
    assert r.temperature == pytest.approx(1.05 ** 9, rel=1e-12)
    assert len(r.ce) == len(r.penalty) == 9
    assert r.kept[-1] == (9, r.kept_count) and [k[0] for k in r.kept] == [1, 3, 5, 7, 9]
    assert r.n_entries == sum(m.numel for m in maskable_matrices(model))
    assert set(r.mask) == set(r.mask_logits)
    for n, s in r.mask_logits.items():
        assert torch.equal(torch.as_tensor(r.mask[n]), s > 0)


def test_each_step_uses_its_temperature():
    """A negligible lr freezes s at mask_init = 0.3, so step k's soft mask must be
    sigmoid(1.05**k * 0.3): check the forward's logits and the penalty."""
    model, data = tiny(), random_data()
    seen = []

    def target(logits, x, f):
        seen.append((logits.detach(), x))
        return hard_ce(logits, x)

    # lr 1e-30: every update is far below float32's resolution at 0.3 (lr 0 is rejected)
    r = sparsify(model, data, target, cfg(lr=1e-30, mask_init=0.3, max_steps=6, lam=2.0,
                                          stop_share=0.0), progress=False)
    for k, (logits, x) in enumerate(seen):
        m = 1.0 / (1.0 + math.exp(-(1.05 ** k) * 0.3))
        assert r.penalty[k] == pytest.approx(2.0 * m, rel=1e-5)
        soft = {n: torch.full(s.shape, m) for n, s in init_mask_logits(model).items()}
        with torch.no_grad():
            torch.testing.assert_close(logits, masked_logits(model, soft, x))


def test_frozen_model_untouched():
    model, data = tiny(), random_data()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    sparsify(model, data, hard_ce, cfg(), progress=False)
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), before[n]), n
        assert p.grad is None
        assert p.requires_grad  # flags restored after the run


def test_lambda_infinities():
    model = tiny()
    boom = lambda *a: pytest.fail("no training at infinite lambda")  # noqa: E731
    full = sparsify(model, random_data(), boom, cfg(lam=-math.inf), progress=False)
    empty = sparsify(model, random_data(), boom, cfg(lam=math.inf), progress=False)
    assert full.kept_share == 1.0 and empty.kept_share == 0.0 and full.steps == 0
    assert all(bool(torch.as_tensor(m).all()) for m in full.mask.values())
    assert not any(bool(torch.as_tensor(m).any()) for m in empty.mask.values())


def test_larger_lambda_keeps_fewer():
    model, data = tiny(), random_data()
    c = cfg(max_steps=25, lr=0.1)
    small = sparsify(model, data, hard_ce, c.replace(lam=0.0), progress=False)
    large = sparsify(model, data, hard_ce, c.replace(lam=50.0), progress=False)
    assert large.kept_count < small.kept_count


def test_early_stop_happens_and_criterion_holds():
    model, data = tiny(), random_data()
    r = sparsify(model, data, hard_ce, cfg(max_steps=300, lr=0.2, temp_growth=1.1, lam=0.0),
                 progress=False)
    assert r.early_stopped and r.steps < 300
    T_used = r.temperature / 1.1  # the stop was checked with the step's own T
    und, above, _ = undecided_counts(r.mask_logits, T_used)
    assert und < 0.01 * above


def test_retry_on_unstable_run(monkeypatch):
    model, data = tiny(), random_data()
    calls = []

    def fake_is_stable(losses, config=None):
        calls.append(len(losses))
        return len(calls) >= 2  # first attempt "unstable"

    monkeypatch.setattr(sp, "is_stable", fake_is_stable)
    r = sparsify(model, data, hard_ce, cfg(), progress=False)
    assert r.attempts == 2 and len(calls) == 2 and r.stable
    assert [a["seed"] for a in r.attempt_log] == [0, 1]
    assert [a["stable"] for a in r.attempt_log] == [False, True]
    # attempt 2 used another data order: its curve differs from a seed-0 run
    plain = sparsify(model, data, hard_ce, cfg(), progress=False)
    assert r.ce != plain.ce

    calls.clear()
    monkeypatch.setattr(sp, "is_stable", lambda losses, config=None: calls.append(1) and False)
    with pytest.warns(UserWarning, match="unstable"):
        r = sparsify(model, data, hard_ce, cfg(max_attempts=3), progress=False)
    assert r.attempts == 3 and not r.stable and len(calls) == 3


class Killed(Exception):
    pass


def test_resume_after_kill_is_bit_identical(tmp_path):
    model, data = tiny(), random_data()
    c = cfg(max_steps=23, save_every=5)
    ref = sparsify(model, data, hard_ce, c, progress=False)

    n = [0]

    def dies_at_13(logits, x, f):
        n[0] += 1
        if n[0] == 13:
            raise Killed
        return hard_ce(logits, x)

    with pytest.raises(Killed):
        sparsify(model, data, dies_at_13, c, state_dir=tmp_path, progress=False)
    assert (tmp_path / sp.STATE_FILE).exists()
    assert torch.load(tmp_path / sp.STATE_FILE, weights_only=True)["run"]["step"] == 10
    got = sparsify(model, data, hard_ce, c, state_dir=tmp_path, progress=False)
    assert got.ce == ref.ce and got.temperature == ref.temperature and got.kept == ref.kept
    for k in ref.mask_logits:
        assert torch.equal(got.mask_logits[k], ref.mask_logits[k])
    assert got.mask == ref.mask
    # finished: the folder now answers without training; another config is refused
    again = sparsify(model, data, lambda *a: pytest.fail("retrained"), c, state_dir=tmp_path,
                     progress=False)
    assert again.mask == ref.mask and again.ce == ref.ce
    with pytest.raises(ValueError, match="another config"):
        sparsify(model, data, hard_ce, c.replace(lam=2.0), state_dir=tmp_path, progress=False)


def test_deterministic_with_seed():
    model, data = tiny(), random_data()
    a = sparsify(model, data, hard_ce, cfg(seed=3), progress=False)
    b = sparsify(model, data, hard_ce, cfg(seed=3), progress=False)
    c = sparsify(model, data, hard_ce, cfg(seed=4), progress=False)
    assert a.ce == b.ce
    assert all(torch.equal(a.mask_logits[k], b.mask_logits[k]) for k in a.mask_logits)
    assert a.ce != c.ce


def test_defaults_are_the_papers():
    d = SparsifyConfig()  # the paper's numbers
    assert (d.lr, d.temp_growth, d.max_steps, d.batch_size, d.max_attempts) == \
        (5e-5, 1.001, 15_000, 32, 3)


# ------------------------------------------------------------------ targets
def test_custom_target_is_used():
    model, data = tiny(), random_data()
    seen = []

    def target(logits, x, full_logits_fn):
        seen.append((logits.shape, x.shape))
        return 0.5 * hard_ce(logits, x) + 7.0

    r = sparsify(model, data, target, cfg(max_steps=4, stop_share=0.0), progress=False)
    assert len(seen) == 4 and seen[0] == ((8, SEQ, V), (8, SEQ))
    assert all(ce > 7.0 for ce in r.ce)


def test_bigram_target_uses_sparse_ce_and_learns():
    data = chain_data(128)
    bigram = BigramModel.from_corpus([data], V)
    calls = []
    real = bigram.cross_entropy

    def spy(logits, ids, **kw):
        calls.append(ids.shape)
        return real(logits, ids, **kw)

    bigram.cross_entropy = spy
    # weights x10: at the default init (std 0.02) the logits hardly depend on
    # the hidden state, so no mask could move them; scaled up, the chain
    # a -> 7a + 3 is learnable by masking alone
    model = tiny(seed=1)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(10)
    r = sparsify(model, data, BigramTarget(bigram),
                 cfg(lam=0.0, lr=0.1, max_steps=80, temp_growth=1.01, stop_share=0.0),
                 progress=False)
    assert len(calls) == 80 and calls[0] == (8, SEQ)
    x = data[:8]
    with torch.no_grad():
        assert r.ce[0] == pytest.approx(float(real(model(x).logits, x)), rel=0.2)
    assert sum(r.ce[-10:]) / 10 < 0.5 * r.ce[0]


def test_full_model_target_at_full_mask_is_entropy():
    model, x = tiny(), random_data(4)
    full = {n: torch.ones(s.shape) for n, s in init_mask_logits(model).items()}
    logits = masked_logits(model, full, x)
    got = float(FullModelTarget()(logits, x, lambda: model(x).logits).detach())
    p = torch.softmax(model(x).logits.double(), -1).reshape(-1, V).tolist()
    entropy = sum(-sum(q * math.log(q) for q in row if q > 0) for row in p) / len(p)
    assert got == pytest.approx(entropy, rel=1e-5)


def test_full_model_target_run_keeps_model_close():
    model, data = tiny(), random_data()
    r = sparsify(model, data, FullModelTarget(), cfg(lam=0.0, max_steps=20, stop_share=0.0),
                 progress=False)
    assert r.ce[-1] <= r.ce[0] + 1e-6  # at lambda 0 the mask moves toward keeping everything


def test_planted_subnetwork_is_recovered():
    model, inputs, planted, target = planted_toy(seed=0)
    c = SparsifyConfig(lam=0.05, lr=0.1, temp_growth=1.02, max_steps=600, batch_size=64)
    r = sparsify(model, inputs, target, c, names=["weight"], progress=False)
    got = torch.as_tensor(r.mask["weight"])
    agree = float((got == planted["weight"]).float().mean())
    assert agree >= 0.97, (agree, r.steps)


@pytest.mark.parametrize("dtype, want", [(torch.float64, torch.float64),
                                         (torch.float32, torch.float32),
                                         (torch.bfloat16, torch.float32)])
def test_mask_logits_and_losses_follow_a_float64_model(dtype, want):
    """The tiny world's model is float64: its mask logits, soft masks and both targets'
    losses stay float64 (float32 rounding would differ across CPU kernels); fp32 and
    half-precision models train float32 logits as before."""
    model = tiny().to(dtype)
    logits = init_mask_logits(model)
    assert {s.dtype for s in logits.values()} == {want}
    flat, shapes = flatten(logits)
    soft, _ = soft_masks_flat(flat, shapes, 1.0)
    assert {m.dtype for m in soft.values()} == {want}
    data = random_data()[:2]
    out = masked_logits(model, soft, data)
    ce = FullModelTarget()(out, data, lambda: masked_logits(model, {}, data).detach())
    assert ce.dtype == want
    if dtype == torch.float64:
        r = sparsify(model, random_data(), FullModelTarget(), cfg(lam=1.0, max_steps=3),
                     progress=False)
        assert {s.dtype for s in r.mask_logits.values()} == {torch.float64}
