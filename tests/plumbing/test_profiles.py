"""Profiles: names, selection order, errors."""

import pytest

import bigramlab.plumbing.profiles as profiles
from bigramlab.plumbing.profiles import (PROFILES, UnknownProfileError, get_profile,
                                         tiny_checkpoints)

REQUIRED = ["tiny", "tiny-gpt2", "pythia-14m", "pythia-70m", "pythia-160m", "pythia-410m",
            "pythia-1b", "gpt2", "gpt2-medium", "gpt2-large"]


def test_required_profiles_exist_and_are_complete():
    for name in REQUIRED:
        p = get_profile(name)
        assert p.name == name
        assert p.arch in ("gpt_neox", "gpt2")
        assert p.checkpoints and p.seq_len == 128
        assert p.corpus.path and p.corpus.why, f"{name} must say why it uses its corpus"
        assert p.lambdas and p.max_steps > 0 and p.batch_size > 0 and p.n_eval_seqs > 0
        assert p.is_tiny == name.startswith("tiny")
        assert (p.model_id is None) == p.is_tiny


def test_real_profiles_follow_the_paper(monkeypatch):
    monkeypatch.setenv("BIGRAMLAB_BUDGET", "paper")  # the default is the session budget
    for size in ["14m", "70m", "160m", "410m", "1b"]:
        p = get_profile(f"pythia-{size}")
        assert p.model_id == f"EleutherAI/pythia-{size}"
        assert p.checkpoints[0] == "step0" and p.final_checkpoint == "step143000"
        assert len(p.checkpoints) == 16
        assert (p.mask_lr, p.temp_growth, p.max_steps, p.batch_size) == (5e-5, 1.001, 15000, 32)
        assert (p.n_train_seqs, p.n_eval_seqs) == (500_000, 10_000)
    assert get_profile("pythia-1b").default_lambda == 100
    assert get_profile("gpt2-large").default_lambda == 100
    assert get_profile("gpt2").model_id == "openai-community/gpt2"
    assert get_profile("gpt2-medium").model_id == "openai-community/gpt2-medium"


def test_unknown_profile_lists_valid_names():
    with pytest.raises(UnknownProfileError) as e:
        get_profile("pythia-7b")
    for name in REQUIRED:
        assert name in str(e.value)


def test_selection_order(monkeypatch):
    monkeypatch.setenv("BIGRAMLAB_PROFILE", "gpt2")
    assert get_profile().name == "gpt2"
    assert get_profile("tiny").name == "tiny"  # an explicit name wins
    monkeypatch.delenv("BIGRAMLAB_PROFILE")
    calls = {}
    monkeypatch.setattr("bigramlab.plumbing.devices.hub_reachable", lambda: calls.setdefault("hub", True))
    import torch
    monkeypatch.setattr("bigramlab.plumbing.devices.default_device", lambda: torch.device("cuda"))
    assert get_profile().name == "pythia-70m"
    monkeypatch.setattr("bigramlab.plumbing.devices.hub_reachable", lambda: False)
    assert get_profile().name == "tiny"
    monkeypatch.setattr("bigramlab.plumbing.devices.hub_reachable", lambda: True)
    monkeypatch.setattr("bigramlab.plumbing.devices.default_device", lambda: torch.device("cpu"))
    assert get_profile().name == "tiny"


def test_unknown_env_profile_is_an_error(monkeypatch):
    monkeypatch.setenv("BIGRAMLAB_PROFILE", "nope")
    with pytest.raises(UnknownProfileError, match="BIGRAMLAB_PROFILE"):
        get_profile()


@pytest.mark.parametrize("steps", [1, 2, 3, 100, 1024, 2000])
def test_tiny_checkpoints_are_log_spaced(steps):
    names = tiny_checkpoints(steps)
    nums = [int(n.removeprefix("step")) for n in names]
    assert nums[0] == 0 and nums[-1] == steps
    assert nums == sorted(set(nums))
    assert all(n & (n - 1) == 0 for n in nums[1:-1])  # powers of two in between
    assert len(nums) == len({0, steps} | {2**i for i in range(12) if 2**i < steps})


def test_replace_and_key():
    p = get_profile("tiny")
    q = p.replace(n_eval_seqs=8)
    assert q.n_eval_seqs == 8 and p.n_eval_seqs != 8
    assert p.key() != q.key() and p.key() == get_profile("tiny").key()
    assert p.key("arch") == get_profile("pythia-70m").key("arch")
    assert len(profiles.profile_table()) == len(PROFILES)
