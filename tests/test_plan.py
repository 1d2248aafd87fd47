"""bigramlab.experiments.plan: the measured estimate before a long mask training."""

import math

import pytest

from bigramlab import get_profile
from bigramlab.experiments import plan
from bigramlab.experiments.subnetworks import _cheaper, mask_config
from bigramlab.methods.sparsify import SparsifyConfig, planted_toy


class FakeClock:
    """perf_counter and sparsify stand-ins: a run of n steps takes setup + n * per_step."""

    def __init__(self, setup, per_step):
        self.now, self.setup, self.per_step, self.calls = 0.0, setup, per_step, []

    def perf_counter(self):
        return self.now

    def sparsify(self, model, train, target, config, names, progress):
        self.calls.append(config)
        self.now += self.setup + self.per_step * config.max_steps


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock(setup=7.0, per_step=0.25)
    monkeypatch.setattr(plan.time, "perf_counter", c.perf_counter)
    monkeypatch.setattr(plan, "sparsify", c.sparsify)
    return c


def test_estimate_leaves_out_setup_and_scales_to_the_run(clock):
    model, inputs, _, target = planted_toy()
    per_step, total = plan.estimate_seconds(model, inputs, target,
                                            SparsifyConfig(max_steps=15_000), probe_steps=3)
    assert per_step == pytest.approx(0.25) and total == pytest.approx(0.25 * 15_000)
    # the probe is the same run, shortened, with one attempt and nothing saved
    assert [c.max_steps for c in clock.calls] == [1, 4]
    assert all(c.max_attempts == 1 and c.lam == 10.0 for c in clock.calls)


def test_a_real_run_is_measured_on_the_toy():
    model, inputs, _, target = planted_toy(n=64)
    per_step, total = plan.estimate_seconds(model, inputs, target,
                                            SparsifyConfig(max_steps=1000, batch_size=8, lr=0.05),
                                            names=["weight"])
    assert 0 <= per_step < 1 and total == pytest.approx(per_step * 1000)


def test_long_runs_are_announced_short_ones_not(clock, capsys):
    model, inputs, _, target = planted_toy()
    cfg = SparsifyConfig(max_steps=15_000, batch_size=32)
    total = plan.announce_training(model, inputs.view(-1, 4, 6)[:, :, 0], target, cfg,
                                   what="the bigram subnetwork of X", cheaper="the released mask.",
                                   folder="/drive/cache/mask-1")
    line = capsys.readouterr().out
    assert total == pytest.approx(3750)
    for words in ("the bigram subnetwork of X", "15,000 steps of 32 x 4 tokens", "about 62 min",
                  "cpu", "0.25 s per step", "/drive/cache/mask-1", "resumes",
                  "Cheaper: the released mask."):
        assert words in line, words
    plan.announce_training(model, inputs, target, cfg.replace(max_steps=100), what="w",
                           cheaper="c")
    assert capsys.readouterr().out == ""  # 25 s: under a minute, silent


@pytest.mark.parametrize("seconds, text", [(45, "45 s"), (600, "10 min"), (9000, "2.5 h")])
def test_human(seconds, text):
    assert plan.human(seconds) == text


def test_cheaper_names_the_released_mask_only_where_one_exists():
    p = get_profile("pythia-70m")
    cfg = mask_config(p)
    assert "load_released_subnetwork('EleutherAI/pythia-70m', 10)" in _cheaper(
        p, p.final_checkpoint, "bigram", cfg)
    for checkpoint, target, lam in ((p.checkpoints[3], "bigram", 10.0),
                                    (p.final_checkpoint, "full", 10.0),
                                    (p.final_checkpoint, "bigram", 500.0)):
        text = _cheaper(p, checkpoint, target, cfg.replace(lam=lam))
        assert "released" not in text and "max_steps=1500" in text
    assert math.isfinite(plan.NOTICE_SECONDS) and plan.PROBE_STEPS >= 2
