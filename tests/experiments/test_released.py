"""Figure 7's numbers: the released masks of a family, layer by layer (experiments.released)."""

import pytest
import torch

from bigramlab import Subnetwork, get_profile, maskable_matrices
from bigramlab.experiments import released_family, released_layer_shares, released_models
from bigramlab.plumbing.profiles import TinyWorld
from bigramlab.worlds import hub
from bigramlab.worlds.models import make_model


def test_the_family_is_the_released_models_of_the_architecture():
    assert [p.name for p in released_family(get_profile("pythia-160m"))] == [
        "pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b"]
    assert [p.name for p in released_family(get_profile("gpt2"))] == [
        "gpt2", "gpt2-medium", "gpt2-large"]


def test_offline_with_nothing_cached_every_model_is_skipped_with_the_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    shares, skipped = released_layer_shares(get_profile("pythia-70m"))
    assert shares == {} and set(skipped) == {"pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b"}
    assert all("not reachable" in why for why in skipped.values())


def test_shares_are_each_layers_kept_entries_over_all_kept(monkeypatch):
    model = make_model("gpt_neox", TinyWorld(n_layer=3, d_model=16, n_head=2, d_mlp=32), 64, 32)
    g = torch.Generator().manual_seed(0)
    masks = {m.name: torch.rand(m.shape, generator=g) < 0.1 * (m.layer + 1)
             for m in maskable_matrices(model)}
    asked = []
    monkeypatch.setattr(hub, "load_released_subnetwork",
                        lambda model_id, lam: asked.append((model_id, lam)) or Subnetwork(masks))
    monkeypatch.setattr(hub, "hub_skeleton", lambda q: model)
    shares, skipped = released_layer_shares(get_profile("gpt2"))
    # by hand: the layer index is in each parameter's name
    kept = [sum(int(v.sum()) for k, v in masks.items() if f".layers.{i}." in k) for i in range(3)]
    want = [k / sum(kept) for k in kept]
    assert skipped == {} and list(shares) == ["gpt2", "gpt2-medium", "gpt2-large"]
    for s in shares.values():
        assert s["layers"] == pytest.approx(want, abs=0, rel=1e-12)
    assert [lam for _, lam in asked] == [10, 10, 100]  # each model's released default


def test_the_other_models_come_one_at_a_time_and_the_unreachable_are_skipped(monkeypatch):
    from bigramlab.experiments import released
    loaded, skipped = [], {}

    def fake_mask(model_id, lam):
        if model_id.endswith("1b"):
            raise hub.HubUnavailableError("offline")
        return f"mask of {model_id} at {lam}"
    monkeypatch.setattr(hub, "load_released_subnetwork", fake_mask)
    monkeypatch.setattr(released, "load_model", lambda q: (loaded.append(q.name) or q.name, None))
    got = []
    for q, model, sub, lam in released_models(get_profile("pythia-160m"), skipped):
        assert loaded[-1] == q.name == model  # loaded when its turn comes, not all up front
        got.append((q.name, sub, lam))
    assert got == [("pythia-70m", "mask of EleutherAI/pythia-70m at 10", 10),
                   ("pythia-410m", "mask of EleutherAI/pythia-410m at 10", 10)]
    assert skipped == {"pythia-1b": released.UNREACHABLE}


def test_every_lambda_reuses_the_model_and_reads_each_mask_once(monkeypatch):
    from bigramlab.experiments import released
    reads, loads = [], []
    monkeypatch.setattr(hub, "load_released_subnetwork",
                        lambda model_id, lam: reads.append((model_id, lam)) or lam)
    monkeypatch.setattr(released, "load_model", lambda q: (loads.append(q.name) or object(), None))
    got = [(q.name, sub, lam) for q, _, sub, lam in
           released_models(get_profile("pythia-410m"), {}, every_lambda=True)]
    assert got == [("pythia-70m", 10, 10), ("pythia-70m", 1, 1), ("pythia-160m", 10, 10),
                   ("pythia-160m", 1, 1), ("pythia-1b", 100, 100), ("pythia-1b", 10, 10),
                   ("pythia-1b", 1, 1)]
    assert len(reads) == len(set(reads)) == 7 and loads == ["pythia-70m", "pythia-160m", "pythia-1b"]
