"""Output lens, input lens and logit lens, against references written here:
a brute-force ranking (sorting every row in Python), the layer norm and the
unembedding applied by hand, the model's own logits, and scipy's Pearson r."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy import stats as sps

from bigramlab.methods.lenses import lens_correlation, lens_readings, recall_at_k, token_ranks
from bigramlab.methods.rotation import LinearMaps, residual_stats
from bigramlab.worlds.models import make_model
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.methods.residual import final_layer_norm, hidden_states, lens_surprisal, unembedding
from bigramlab.methods.subnetwork import Subnetwork

VOCAB, SEQ, D = 40, 10, 16


def brute_rank(row, label):
    """Position of ``label`` when the tokens are sorted by logit, largest first, with
    ties broken in the label's favour."""
    order = sorted(range(len(row)), key=lambda t: (-row[t], t != label))
    return order.index(label)


@settings(max_examples=40, deadline=None)
@given(v=st.integers(2, 30), n=st.integers(1, 12), seed=st.integers(0, 10**6),
       ties=st.booleans())
def test_ranks_and_recall_match_brute_force(v, n, seed, ties):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, v, generator=g)
    if ties:  # few distinct values: many ties
        logits = torch.randint(0, 3, (n, v), generator=g).float()
    labels = torch.randint(0, v, (n,), generator=g)
    want = [brute_rank(logits[i].tolist(), int(labels[i])) for i in range(n)]
    ranks = token_ranks(logits, labels)
    assert ranks.tolist() == want
    for k, got in zip((1, 2, 5), recall_at_k(ranks, (1, 2, 5)).tolist()):
        assert got == pytest.approx(sum(r < k for r in want) / n)


def model_of(arch, seed=0):
    torch.manual_seed(seed)
    model = make_model(arch, TinyWorld(n_layer=2, d_model=D, n_head=2, d_mlp=32), VOCAB, SEQ)
    with torch.no_grad():  # non-trivial layer norm and biases, so a missing one shows
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name or name.endswith("bias"):
                p.add_(0.2 * torch.randn_like(p))
    return model.eval()


def ids_of(n=5, seed=1):
    return torch.randint(0, VOCAB, (n, SEQ), generator=torch.Generator().manual_seed(seed))


def random_maps(n_states, seed):
    g = torch.Generator().manual_seed(seed)
    return LinearMaps(torch.randn(n_states, D, D, generator=g, dtype=torch.float64) / D ** 0.5,
                      torch.randn(n_states, D, generator=g, dtype=torch.float64))


def bits_by_hand(logits, ids):
    p = torch.softmax(logits.double(), -1)
    out = torch.empty(ids.shape[0], SEQ - 1, dtype=torch.float64)
    for b in range(ids.shape[0]):
        for i in range(SEQ - 1):
            out[b, i] = -math.log2(float(p[b, i, ids[b, i + 1]]))
    return out


@pytest.mark.parametrize("arch", ["gpt_neox", "gpt2"])
def test_lens_readings_match_references(arch):
    model, ids = model_of(arch), ids_of()
    out_map, in_map = random_maps(3, 1), random_maps(3, 2)
    got = lens_readings(model, ids, out_map, in_map, ks=(1, 3), batch_size=2)
    with torch.no_grad():
        own = model(ids).logits
        states = hidden_states(model, ids)
        ln, unembed = final_layer_norm(model), unembedding(model).weight
        # the input lens reads against the bare token table (GPT-2: wte, not wte + wpe)
        table = (model.gpt_neox.embed_in if arch == "gpt_neox" else model.transformer.wte).weight
        torch.testing.assert_close(got["model"], bits_by_hand(own, ids).float(),
                                   rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(got["logit_lens"], lens_surprisal(model, ids))
        for layer in range(3):
            mapped = states[layer].double() @ out_map.coef[layer].T + out_map.intercept[layer]
            x = mapped.float()
            normed = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False,
                                                                        keepdim=True) + ln.eps)
            logits = (normed * ln.weight + ln.bias) @ unembed.T
            torch.testing.assert_close(got["output_lens"][layer], bits_by_hand(logits, ids).float(),
                                       rtol=1e-4, atol=1e-4)
            read = (states[layer].double() @ in_map.coef[layer].T + in_map.intercept[layer])
            scores = read.float() @ table.T
            ranks = [brute_rank(scores[b, i].tolist(), int(ids[b, i]))
                     for b in range(ids.shape[0]) for i in range(SEQ)]
            want = [sum(r < k for r in ranks) / len(ranks) for k in (1, 3)]
            assert got["recall"][layer].tolist() == pytest.approx(want)


def test_identity_output_map_is_the_logit_lens_and_fitted_maps_read_well():
    model, ids = model_of("gpt_neox"), ids_of(8)
    eye = LinearMaps(torch.eye(D, dtype=torch.float64).expand(3, D, D),
                     torch.zeros(3, D, dtype=torch.float64))
    got = lens_readings(model, ids, output_map=eye)
    torch.testing.assert_close(got["output_lens"], got["logit_lens"])
    assert "recall" not in got
    with torch.no_grad():  # embeddings of unit scale, so that alpha = 1 hardly shrinks the map
        model.get_input_embeddings().weight.mul_(50)
    maps = residual_stats(model, ids).maps()
    fitted = lens_readings(model, ids, maps["output"], maps["input"])
    r = lens_correlation(fitted["output_lens"], fitted["model"])
    assert float(r[-1]) > 0.99  # the map from h_L to h_L is near the identity
    assert float(fitted["recall"][0, 0]) > 0.9  # h_0 is the token embedding itself (GPT-NeoX)


def test_subnetwork_readings_are_the_subnetworks_own():
    """Under a mask, 'model' is the subnetwork's own surprisal, not the full model's."""
    model, ids = model_of("gpt_neox"), ids_of()
    g = torch.Generator().manual_seed(3)
    sub = Subnetwork({n: torch.rand(m.shape, generator=g) < 0.3
                      for n, m in Subnetwork.full(model).items()})
    with sub.apply(model):
        masked = lens_readings(model, ids)["model"]
        with torch.no_grad():
            want = bits_by_hand(model(ids).logits, ids).float()
    torch.testing.assert_close(masked, want, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(masked, lens_readings(model, ids)["model"], atol=1e-3)


def test_lens_correlation_clips_infinities_like_the_paper():
    g = torch.Generator().manual_seed(0)
    lens = torch.rand(3, 4, 6, generator=g) * 5
    ref = torch.rand(4, 6, generator=g) * 5
    lens[1, 0, 0] = float("inf")
    ref[2, 3] = float("inf")
    got = lens_correlation(lens, ref)
    for layer in range(3):
        a, b = lens[layer].flatten().double().numpy(), ref.flatten().double().numpy()
        a[np.isinf(a)] = a[np.isfinite(a)].max()
        b[np.isinf(b)] = b[np.isfinite(b)].max()
        assert float(got[layer]) == pytest.approx(sps.pearsonr(a, b)[0], abs=1e-12)
    with pytest.raises(ValueError, match="different positions"):
        lens_correlation(lens, ref[:, :5])
