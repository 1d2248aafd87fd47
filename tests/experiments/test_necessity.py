"""bigramlab.experiments.necessity on the tiny world against naive references:
each condition's surprisals from a deep copy with the weights multiplied by
the mask, numpy's mean and std after clipping, and the optimal sweep's
correlations from np.corrcoef."""

import copy

import numpy as np
import pytest
import torch

from bigramlab import get_profile, load_corpus, load_model
from bigramlab.experiments import ablation, bigram_model, optimal_sweep, train_subnetwork
from bigramlab.methods.ablation import CONDITIONS
from bigramlab.methods.subnetwork import Subnetwork

pytestmark = pytest.mark.slow  # needs the full tiny world (its 3-minute LM)

CHANGES = dict(max_steps=4, batch_size=4)  # a few steps: masks that are cheap to train


@pytest.fixture(scope="module")
def tiny():
    p = get_profile("tiny")
    model, _ = load_model(p, device="cpu")
    return p, model


def naive_bits(model, masks, ids):
    m = copy.deepcopy(model)
    params = dict(m.named_parameters())
    out = []
    with torch.no_grad():
        for name, keep in masks.items():
            params[name].mul_(keep.to(params[name].dtype))
        for i in range(0, len(ids), 32):
            x = ids[i:i + 32]
            logp = torch.log_softmax(m(input_ids=x).logits.double(), -1)
            out.append(-logp[:, :-1].gather(-1, x[:, 1:, None])[..., 0] / np.log(2))
    return torch.cat(out).numpy().ravel()


def test_ablation_matches_masked_copies(tiny):
    p, model = tiny
    g = torch.Generator().manual_seed(0)
    sub = Subnetwork({n: torch.rand(m.shape, generator=g) < 0.05
                      for n, m in Subnetwork.full(model).items()})
    res = ablation(p, sub, seed=2, progress=False)
    assert tuple(res["summary"]) == CONDITIONS
    ev = load_corpus(p, "eval")
    for c in ("subnetwork", "minus_subnetwork", "minus_random"):
        want = naive_bits(model, dict(res["conditions"][c]), ev)
        want[np.isinf(want)] = want[~np.isinf(want)].max()
        s = res["summary"][c]
        assert s["mean"] == pytest.approx(float(np.mean(want)), rel=1e-4)
        assert s["std"] == pytest.approx(float(np.std(want)), rel=1e-4)
        assert s["tokens"] == ev.shape[0] * (ev.shape[1] - 1)
    assert res["summary"]["minus_random"]["kept"] == res["summary"]["minus_subnetwork"]["kept"]
    assert res["conditions"]["random"] == Subnetwork.random_like(sub, model, 2)
    with pytest.raises(TypeError, match="pass the result's .mask"):
        ablation(p, train_subnetwork(p, 1.0, progress=False, **CHANGES))


def test_optimal_sweep_trains_full_target_masks_and_measures_them(tiny):
    p, model = tiny
    rows = optimal_sweep(p, [1.0, 10.0], progress=False, **CHANGES)
    ev = load_corpus(p, "eval")
    full = naive_bits(model, {}, ev)
    bigram = bigram_model(p, device="cpu", progress=False).surprisal(ev).double().numpy().ravel()
    finite = np.isfinite(bigram)
    for row, lam in zip(rows, [1.0, 10.0]):
        res = train_subnetwork(p, lam, target="full", progress=False, **CHANGES)
        assert row["lam"] == lam and row["mask"] == res.mask and row["steps"] == res.steps
        assert row["kept"] == res.mask.count()
        bits = naive_bits(model, dict(res.mask), ev)
        assert row["r_full"] == pytest.approx(np.corrcoef(bits, full)[0, 1], abs=1e-4)
        assert row["r_bigram"] == pytest.approx(np.corrcoef(bits[finite], bigram[finite])[0, 1],
                                                abs=1e-4)
        assert row["ce_lm"] == pytest.approx(float(np.mean(bits)) * np.log(2), rel=1e-4)
    # a full-model target is not the bigram target: another mask at the same settings
    assert rows[0]["mask"] != train_subnetwork(p, 1.0, progress=False, **CHANGES).mask
    with pytest.raises(ValueError, match="lam = -1"):
        optimal_sweep(p, [1.0, -1.0])
