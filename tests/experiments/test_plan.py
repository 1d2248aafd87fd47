"""bigramlab.experiments.plan: the measured estimate before a long mask training."""

import math

import pytest

from bigramlab import get_profile
from bigramlab.experiments import plan
from bigramlab.experiments.subnetworks import _cheaper, mask_config
from bigramlab.methods.sparsify import SparsifyConfig, planted_toy
from bigramlab.plumbing.profiles import PROFILES, with_budget
from tests.helpers import ROOT


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
    cfg = mask_config(p, max_steps=p.chapter_max_steps)  # as the chapters train
    assert "load_released_subnetwork('EleutherAI/pythia-70m', 10)" in _cheaper(
        p, p.final_checkpoint, "bigram", cfg)
    for checkpoint, target, lam in ((p.checkpoints[3], "bigram", 10.0),
                                    (p.final_checkpoint, "full", 10.0),
                                    (p.final_checkpoint, "bigram", 500.0)):
        text = _cheaper(p, checkpoint, target, cfg.replace(lam=lam))
        assert "released" not in text and "max_steps=150" in text  # session: 600 // 4
        paper = with_budget(PROFILES["pythia-70m"], "paper")
        text = _cheaper(paper, checkpoint, target, mask_config(paper, lam, max_steps=600))
        assert "released" not in text and "BIGRAMLAB_BUDGET=session" in text
    assert math.isfinite(plan.NOTICE_SECONDS) and plan.PROBE_STEPS >= 2


# ---------------------------------------------------------------- cost from the config

def naive_cost(n_layer, d, mlp, vocab, heads, batch=32, seq=128, recompute=False):
    """Hand count for a GPT-NeoX-style block: qkv 3d^2, o d^2, MLP 2 d mlp per layer;
    the low-memory mode runs each block's forward twice (4 passes instead of 3)."""
    mask = n_layer * (4 * d * d + 2 * d * mlp)
    passes = 4 if recompute else 3
    flop = batch * seq * (passes * (2 * mask + 4 * n_layer * seq * d) + 3 * 2 * d * vocab)
    return mask, flop / 1e12


def naive_memory_gib(n_layer, d, mlp, vocab, weight_bytes, entry_bytes, logit_rows):
    mask = n_layer * (4 * d * d + 2 * d * mlp)
    biases_norms = n_layer * (3 * d + d + mlp + d + 4 * d) + 2 * d  # qkv, o, mlp biases; 2 LNs
    weights = mask + 2 * vocab * d + biases_norms  # untied in and out embeddings
    return (weight_bytes * weights + entry_bytes * mask + 2 * 4 * logit_rows * vocab) / 2**30


def test_step_cost_matches_a_hand_count():
    one_b = get_profile("pythia-1b")
    straight = one_b.replace(weights_dtype="float32", mask_memory="default")
    for p, shape, low in ((get_profile("pythia-70m"), (6, 512, 2048, 50304, 8), False),
                          (straight, (16, 2048, 8192, 50304, 8), False),
                          (one_b, (16, 2048, 8192, 50304, 8), True)):
        c = plan.mask_step_cost(p)
        _, tflop = naive_cost(*shape, recompute=low)
        assert c["tflop"] == pytest.approx(tflop, rel=1e-12)
        assert c["t4_s"] == pytest.approx(tflop / (8.1 * 0.5))
        n_layer, d, mlp, vocab, _ = shape
        want = naive_memory_gib(n_layer, d, mlp, vocab, 2 if low else 4, 12 if low else 16,
                                (8 if low else 32) * 128)
        assert c["min_gib"] == pytest.approx(want, rel=1e-12)
    # the figures: Pythia-70m about 1 TFLOP a step, an hour a mask on a T4;
    # Pythia 1B masked the straightforward way does not fit a free T4, the low-memory way does
    c70, c1b, low = (plan.mask_step_cost(p) for p in (get_profile("pythia-70m"), straight, one_b))
    assert 1.0 < c70["tflop"] < 1.2 and 0.5 < c70["t4_s"] * 15_000 / 3600 < 2
    assert c70["fits_t4"] and not c1b["fits_t4"] and c1b["min_gib"] > 14.7
    assert low["fits_t4"] and low["min_gib"] < 12


def test_the_full_model_target_counts_its_unmasked_forward():
    """FullModelTarget runs the unmasked model forward each step for its soft target:
    one more pass through the blocks and the unembedding, and its softmax held beside
    the two logits blocks. Hand count for Pythia 70M (6 x 512, MLP 2048, V 50,304)."""
    n_layer, d, mlp, vocab, batch, seq = 6, 512, 2048, 50304, 32, 128
    mask = n_layer * (4 * d * d + 2 * d * mlp)
    blocks = 2 * mask + 4 * n_layer * seq * d
    bigram = batch * seq * (3 * blocks + 3 * 2 * d * vocab) / 1e12
    full = batch * seq * (4 * blocks + 4 * 2 * d * vocab) / 1e12  # + one forward
    p = get_profile("pythia-70m")
    b, f = plan.mask_step_cost(p), plan.mask_step_cost(p, "full")
    assert b["tflop"] == pytest.approx(bigram, rel=1e-12)
    assert f["tflop"] == pytest.approx(full, rel=1e-12) and f["tflop"] / b["tflop"] == (
        pytest.approx(4 / 3))
    assert plan.mask_step_cost(p, "trigram") == b  # a sparse row target: no extra forward
    assert f["min_gib"] - b["min_gib"] == pytest.approx(4 * batch * seq * vocab / 2**30)
    with pytest.raises(ValueError, match="unknown target 'optimal'.*bigram, trigram, full"):
        plan.mask_step_cost(p, "optimal")


#: (layers, d_model, MLP width, unembedding rows) from the model cards.
SHAPES = {"pythia-70m": (6, 512, 2048, 50304), "pythia-160m": (12, 768, 3072, 50304),
          "pythia-410m": (24, 1024, 4096, 50304), "pythia-1b": (16, 2048, 8192, 50304),
          "gpt2": (12, 768, 3072, 50257)}


def naive_per_token(n_layer, d, mlp, vocab, seq, recompute, full):
    """FLOPs per token of one step: 3 passes through the blocks (4 when recomputed), 3
    through the unembedding; the full-model target's unmasked forward adds one of each."""
    blocks = 2 * n_layer * (4 * d * d + 2 * d * mlp) + 4 * n_layer * seq * d
    return ((4 if recompute else 3) + full) * blocks + (3 + full) * 2 * d * vocab


def naive_chapter_masks(name, budget, chapter):
    """Read off the chapters: Ch. 3 trains its mask and the lambda sweep (4 masks under
    the session budget, whose sweep takes the released lambda 1 and 10; 5 under the
    paper's); Ch. 5 one per earlier checkpoint (4; GPT-2 has none), one on the spliced
    model of appendix A.4, and its sweep at lambdas 1, 10 and 100 on its last three
    checkpoints, less what is already cached (lambda 10 everywhere, the final lambda 100,
    and the final lambda 1 under the paper's budget, whose Ch. 3 trains it); Ch. 8 three optimal
    masks on Pythia 160M whatever the profile; Ch. 9 a trigram mask and an optimal mask
    on the profile's own model, the optimal one reused from Ch. 8 on Pythia 160M."""
    if chapter == 3:
        return [(name, "bigram", 4 if budget == "session" else 5)]
    if chapter == 5:
        sweep = 2 * 2 + (1 if budget == "session" else 0)
        return [] if name == "gpt2" else [(name, "bigram", 4 + 1 + sweep)]
    if chapter == 8:
        return [("pythia-160m", "full", 3)]
    if chapter == 9:
        return [(name, "trigram", 1)] + ([] if name == "pythia-160m" else [(name, "full", 1)])
    return []


@pytest.mark.parametrize("budget", ["session", "paper"])
@pytest.mark.parametrize("name", ["pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b", "gpt2"])
def test_each_chapter_counts_the_masks_it_really_trains(name, budget):
    p = with_budget(PROFILES[name], budget)
    for chapter in range(10):
        got = plan.chapter_masks(p, chapter)
        assert [(q.name, t, n) for q, t, n in got] == naive_chapter_masks(name, budget, chapter)
        assert all(q.budget == budget for q, _, _ in got)
        want = 0.0
        for model, target, n in naive_chapter_masks(name, budget, chapter):
            q = with_budget(PROFILES[model], budget)
            low = q.mask_memory == "low"
            flop = q.batch_size * q.seq_len * naive_per_token(*SHAPES[model], q.seq_len, low,
                                                             full=target == "full")
            want += flop / 1e12 / (8.1 * 0.5) * q.chapter_max_steps * n
        assert plan.chapter_seconds(p, chapter) == pytest.approx(want, rel=1e-12)
    # the case: Ch. 9 on Pythia 70M trains two masks, the second a third dearer
    if name == "pythia-70m":
        c = plan.mask_step_cost(p)
        assert plan.chapter_seconds(p, 9) > 2 * c["t4_s"] * p.chapter_max_steps


def test_step_cost_needs_a_real_profile():
    with pytest.raises(ValueError, match="no recorded shape"):
        plan.mask_step_cost(get_profile("tiny"))


def test_the_tables_are_the_tools_output():
    import re
    from pathlib import Path

    from tools.t4_table import table
    root = ROOT
    for page in ("book/engineering.md", "book/setup.md"):
        text = (root / page).read_text()
        block = re.search(r"<!-- t4-table -->\n(.*?)\n<!-- /t4-table -->", text, re.S)
        assert block and block.group(1) == table(), f"run tools/t4_table.py, paste into {page}"
    from tools.t4_table import lowmem_table
    text = (root / "book/engineering.md").read_text()
    block = re.search(r"<!-- lowmem-table -->\n(.*?)\n<!-- /lowmem-table -->", text, re.S)
    assert block and block.group(1) == lowmem_table(), "run tools/engineering_tables.py"
    assert "pythia-1b | low | float16 | 32" in block.group(1)  # the measurement the claim rests on


# ---------------------------------------------------------------- a GPU too small

class FakeProps:
    def __init__(self, gib):
        self.total_memory = int(gib * 2**30)


@pytest.mark.parametrize("gib, refused", [(14.7, True), (40.0, False)])
def test_a_mask_that_cannot_fit_the_gpu_is_refused_naming_what_fits(monkeypatch, gib, refused):
    import torch
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: FakeProps(gib))
    cuda = torch.device("cuda", 0)
    # Pythia 1B masked the straightforward way (fp32, default memory mode)
    big = get_profile("pythia-1b").replace(weights_dtype="float32", mask_memory="default")
    if not refused:
        plan.require_fits(big, cuda)
        return
    plan.require_fits(get_profile("pythia-1b"), cuda)  # its own low-memory settings fit
    with pytest.raises(plan.TooLargeForDevice) as e:
        plan.require_fits(big, cuda)
    msg = str(e.value)
    assert "\n" not in msg and "17.3 GiB" in msg and "14.7 GiB" in msg
    # the profiles named are exactly the GPT-NeoX ones whose bound fits (a naive filter)
    fit = [n for n in ("pythia-14m", "pythia-70m", "pythia-160m", "pythia-410m", "pythia-1b")
           if plan.mask_step_cost(get_profile(n))["min_gib"] <= gib]
    assert "pythia-1b" in fit  # in its own low-memory mode
    assert f"({', '.join(fit)})" in msg and "load_released_subnetwork" in msg
    plan.require_fits(get_profile("pythia-410m"), cuda)  # 7.5 GiB: fits
    plan.require_fits(get_profile("pythia-1b"), torch.device("cpu"))  # CPUs always pass
    plan.require_fits(get_profile("tiny"), cuda)


# ---------------------------------------------------------------- the budgets

def test_session_budget_caps_sizes_and_swaps_the_schedule(monkeypatch):
    from bigramlab.plumbing import profiles
    monkeypatch.delenv("BIGRAMLAB_BUDGET", raising=False)
    paper = profiles.PROFILES["pythia-160m"]
    s = get_profile("pythia-160m")
    assert s.budget == "session" and paper.budget == "paper"
    assert (s.n_train_seqs, s.n_eval_seqs, s.chapter_max_steps, s.max_steps) == (
        50_000, 2_000, 600, 1_500)
    assert (s.mask_lr, s.temp_growth) == (1e-2, 1.01)
    # everything else is the paper's
    same = [f for f in paper.to_dict() if f not in profiles.SESSION and f != "budget"]
    assert all(getattr(s, f) == getattr(paper, f) for f in same)
    # caps keep a smaller value (the stand-in's budget), and 0 ("all") becomes the cap
    small = profiles.with_budget(paper.replace(n_train_seqs=96, chapter_max_steps=8), "session")
    assert (small.n_train_seqs, small.chapter_max_steps) == (96, 8)
    assert profiles.with_budget(paper.replace(n_train_seqs=0), "session").n_train_seqs == 50_000
    monkeypatch.setenv("BIGRAMLAB_BUDGET", "paper")
    assert get_profile("pythia-160m") == paper.replace(budget="paper")
    for env in ("session", "paper"):  # the tiny world ignores the switch
        monkeypatch.setenv("BIGRAMLAB_BUDGET", env)
        assert get_profile("tiny") == profiles.PROFILES["tiny"]
    assert profiles.with_budget(s, "session") is s  # idempotent
    with pytest.raises(ValueError, match="already under the session budget.*PROFILES"):
        profiles.with_budget(s, "paper")  # its paper values are gone
    monkeypatch.setenv("BIGRAMLAB_BUDGET", "fast")
    with pytest.raises(ValueError, match="valid budgets: session, paper.*BIGRAMLAB_BUDGET"):
        get_profile("gpt2")


def test_the_tiny_profiles_cache_keys_do_not_depend_on_the_budget_field():
    """Adding the budget changed no stored key (the chapters' default mask: 39f1e835fee7)."""
    import torch
    from bigramlab.experiments.subnetworks import mask_key
    p = get_profile("tiny")
    key = mask_key(p, p.final_checkpoint, "bigram",
                   mask_config(p, max_steps=p.chapter_max_steps), torch.device("cpu"))
    assert key == mask_key(p.replace(budget="x"), p.final_checkpoint, "bigram",
                           mask_config(p, max_steps=p.chapter_max_steps), torch.device("cpu"))


def test_chapter_plan_states_the_cost_and_degrades_where_a_gpu_is_too_small(monkeypatch, capsys):
    import torch
    monkeypatch.delenv("BIGRAMLAB_BUDGET", raising=False)
    tiny = get_profile("tiny")
    assert plan.chapter_plan(tiny, 3) is tiny and capsys.readouterr().out == ""
    p = get_profile("pythia-160m")
    assert plan.chapter_plan(p, 3, torch.device("cpu")) is p
    line = capsys.readouterr().out
    c = plan.mask_step_cost(p)
    minutes = round(c["t4_s"] * 600 * 4 / 60)  # a naive count: four 600-step masks
    for words in ("Chapter 3 on pythia-160m (session budget)",
                  "4 masks of up to 600 steps (4 bigram)",
                  f"about {minutes} min on a free T4", f"at least {c['min_gib']:.1f} GiB"):
        assert words in line, words
    plan.chapter_plan(p, 2, torch.device("cpu"))
    assert "trains no masks" in capsys.readouterr().out
    # Chapter 9 on Pythia 70M: its own trigram and optimal masks, the optimal one a third dearer
    small = get_profile("pythia-70m")
    plan.chapter_plan(small, 9, torch.device("cpu"))
    line = capsys.readouterr().out
    per = plan.mask_step_cost(small)["t4_s"]
    minutes = round(per * 600 * (1 + 4 / 3) / 60)
    for words in ("2 masks of up to 600 steps (1 trigram, 1 optimal (full-model target))",
                  f"about {minutes} min on a free T4"):
        assert words in line, words
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: FakeProps(14.7))
    big = get_profile("pythia-1b").replace(weights_dtype="float32", mask_memory="default")
    assert plan.chapter_plan(big, 5, torch.device("cuda", 0)).name == "tiny"
    out = capsys.readouterr().out
    assert "NOTE: this GPU has 14.7 GiB" in out and "tiny profile instead" in out
    assert plan.chapter_plan(big, 6, torch.device("cuda", 0)) is big  # trains nothing: stays
    assert plan.chapter_plan(p, 5, torch.device("cuda", 0)) is p      # fits: stays
