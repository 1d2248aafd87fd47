"""The one masking mechanism (bigramlab.methods.masks) against naive references: masked
weights built by hand, forwards of a deep copy whose weights are overwritten, and the
three users (Subnetwork.apply, residual.zeroed, mask training's forward) agreeing."""

import copy

import pytest
import torch

from bigramlab.methods.anatomy import maskable_matrices
from bigramlab.methods.masks import masked, masked_logits, masked_weights
from bigramlab.methods.residual import zeroed
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds.models import make_model

ARCHS = ["gpt_neox", "gpt2"]


def model_of(arch):
    torch.manual_seed(0)
    return make_model(arch, TinyWorld(n_layer=2, d_model=16, n_head=2, d_mlp=32), 30, 8).eval()


def random_masks(model, kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for m in maskable_matrices(model):
        r = torch.rand(m.shape, generator=g)
        out[m.name] = r < 0.6 if kind == "bool" else r
    return out


def naive_forward(model, masks, ids):
    m = copy.deepcopy(model)
    params = dict(m.named_parameters())
    with torch.no_grad():
        for name, mask in masks.items():
            params[name].copy_(torch.where(mask, params[name], 0.0) if mask.dtype == torch.bool
                               else params[name] * mask)
        return m(input_ids=ids).logits


def snapshot(model):
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("kind", ["bool", "float"])
def test_masked_weights_and_both_ways_of_running(arch, kind):
    model = model_of(arch)
    masks = random_masks(model, kind)
    params = dict(model.named_parameters())
    got = masked_weights(model, masks)
    for name, mask in masks.items():
        want = params[name] * mask if kind == "float" else torch.where(mask, params[name], 0.0)
        assert torch.equal(got[name], want)
    ids = torch.randint(0, 30, (2, 8), generator=torch.Generator().manual_seed(1))
    want = naive_forward(model, masks, ids)
    before = snapshot(model)
    torch.testing.assert_close(masked_logits(model, masks, ids), want)
    with masked(model, masks):
        torch.testing.assert_close(model(input_ids=ids).logits, want)
    after = snapshot(model)
    assert all(torch.equal(before[n], after[n]) for n in before)  # bit for bit


def test_soft_masks_get_gradients_and_the_model_none():
    model = model_of("gpt_neox")
    for p in model.parameters():
        p.requires_grad_(False)
    soft = {n: m.requires_grad_() for n, m in random_masks(model, "float").items()}
    masked_logits(model, soft, torch.zeros(1, 4, dtype=torch.long)).sum().backward()
    assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in soft.values())
    assert all(p.grad is None for p in model.parameters())


def test_a_fully_kept_matrix_is_not_copied():
    model = model_of("gpt2")
    name = maskable_matrices(model)[0].name
    w = dict(model.named_parameters())[name]
    assert masked_weights(model, {name: torch.ones(w.shape, dtype=torch.bool)})[name] is w


def test_restored_after_an_error_and_edits_are_discarded():
    model = model_of("gpt_neox")
    masks = random_masks(model, "bool")
    before = snapshot(model)
    with pytest.raises(RuntimeError):
        with masked(model, masks):
            with torch.no_grad():
                next(model.parameters()).add_(1.0)
            dict(model.named_parameters())[next(iter(masks))].data.fill_(3.0)
            raise RuntimeError("inside")
    after = snapshot(model)
    # the first parameter (the embedding, not masked) was edited in place: that one stays
    names = [n for n in before if n in masks]
    assert all(torch.equal(before[n], after[n]) for n in names)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_three_users_agree(arch):
    """Subnetwork.apply, residual.zeroed of the dropped entries and the masked forward
    of mask training are one computation."""
    model = model_of(arch)
    masks = random_masks(model, "bool", seed=3)
    ids = torch.randint(0, 30, (2, 8), generator=torch.Generator().manual_seed(4))
    with Subnetwork(masks).apply(model):
        a = model(input_ids=ids).logits
    with zeroed(model, {n: ~m for n, m in masks.items()}):
        b = model(input_ids=ids).logits
    c = masked_logits(model, {n: m.float() for n, m in masks.items()}, ids).detach()
    assert torch.equal(a, b)
    torch.testing.assert_close(a, c)
