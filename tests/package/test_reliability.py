"""Bad input, tried as a careless user would, and damaged cache entries.

Each bad-input test asserts the error's type and that its message is one
line, names the fix and does not embed a model's (or a dict's) repr. The
The book's appendix (book/engineering.md, "Reliability") lists them: one row per test here.

The cache tests build a *small* world (seconds) in a temporary cache and
damage copies of it: a damaged tiny LM resumes pretraining from its last
intact checkpoint, bit-identical to an undamaged build; a damaged mask is
reported and rebuilt, never with torch's advice to load unsafely.
"""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bigramlab.plumbing import cache
from bigramlab.worlds.tiny import pretrain
from bigramlab.methods.bigrams import BigramModel
from bigramlab.methods.metrics import lm_bigram_cross_entropy, surprisal_correlation
from bigramlab.experiments import evaluate_subnetwork, mask_config, train_subnetwork
from bigramlab.plumbing.inputs import DamagedFileError, check_int, check_real, check_token_ids
from bigramlab.worlds.models import make_model
from bigramlab.plumbing.profiles import PROFILES, TinyWorld, get_profile, tiny_checkpoints
from bigramlab.methods.sparsify import RESULT_FILE, STATE_FILE, SparsifyConfig, sparsify
from bigramlab.methods.subnetwork import Subnetwork
from bigramlab.methods.metrics import lm_surprisal
from bigramlab.experiments import evaluate_world
from bigramlab.worlds.tiny.build import build_lm, build_world
from tests.helpers import ROOT

V = 50
STEPS = 12
SMALL = get_profile("tiny").replace(
    name="tiny-reliability",
    world=TinyWorld(seed=5, n_words=60_000, vocab_size=300, n_layer=2, d_model=16, n_head=2,
                    d_mlp=32, train_steps=STEPS, batch_size=4, lr=3e-3, warmup_steps=2),
    checkpoints=tiny_checkpoints(STEPS), n_eval_seqs=8, max_steps=3, batch_size=4)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def lm():
    torch.manual_seed(0)
    world = TinyWorld(n_layer=1, d_model=16, n_head=2, d_mlp=32)
    return make_model("gpt_neox", world, V, 16).eval()


@pytest.fixture
def ids():
    return torch.randint(V, (3, 8), generator=torch.Generator().manual_seed(0))


@pytest.fixture
def empty_cache(monkeypatch, tmp_path):
    """A fresh cache: the bad-input tests check that nothing was built before the error."""
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def one_line(excinfo, *fix, avoid=()):
    """The message: one line, naming each of ``fix``, without the repr of ``avoid``."""
    msg = str(excinfo.value)
    assert "\n" not in msg and len(msg) < 400, msg
    for words in fix:
        assert words in msg, f"{words!r} not in {msg!r}"
    for obj in avoid:
        for line in repr(obj).splitlines():
            assert len(line.strip()) < 12 or line.strip() not in msg, msg
    assert "weights_only=False" not in msg
    return msg


# ---------------------------------------------------------- mask-training settings
BAD_SETTINGS = [  # (setting, value, the allowed range the message must name)
    ("lam", math.nan, "[0, inf] or -inf"),
    ("lam", -1.0, "[0, inf] or -inf"),
    ("max_steps", 0, "whole number >= 1"),
    ("max_steps", 10.5, "whole number >= 1"),
    ("lr", 0.0, "(0, inf)"),
    ("lr", -1e-3, "(0, inf)"),
    ("lr", math.inf, "(0, inf)"),
    ("lr", math.nan, "(0, inf)"),
    ("temp_growth", 0.99, "[1, inf)"),
    ("init_temp", 0.0, "(0, inf)"),
    ("batch_size", 0, "whole number >= 1"),
    ("max_attempts", 0, "whole number >= 1"),
    ("spike_window", 0, "whole number >= 1"),
    ("reattain_steps", -1, "whole number >= 0"),
    ("seed", -1, "whole number >= 0"),
    ("seed", 1.5, "whole number >= 0"),
    ("save_every", 0, "whole number >= 1"),
    ("log_every", 0, "whole number >= 1"),
    ("weight_decay", -0.01, "[0, inf)"),
    ("eps", 0.0, "(0, inf)"),
    ("betas", (0.9, 1.0), "[0, 1)"),
    ("stop_high", 0.05, "(0.1, 1]"),
    ("stop_share", -0.5, "[0, inf)"),
    ("spike_mult", 0.5, "[1, inf)"),
]


@pytest.mark.parametrize("setting, value, allowed", BAD_SETTINGS)
def test_bad_setting_rejected_by_the_config(setting, value, allowed):
    with pytest.raises(ValueError) as e:
        SparsifyConfig(**{setting: value})
    one_line(e, f"{setting.split('[')[0]}", allowed)


@pytest.mark.parametrize("setting, value, allowed", BAD_SETTINGS[:9])
def test_bad_setting_rejected_by_train_subnetwork(setting, value, allowed, empty_cache):
    kwargs = {"lam": value} if setting == "lam" else {"lam": 1.0, setting: value}
    with pytest.raises(ValueError) as e:
        train_subnetwork(SMALL, **kwargs)
    one_line(e, setting, allowed)
    assert not empty_cache.exists() or not any(empty_cache.iterdir())  # failed before building


def test_unknown_setting_names_the_valid_ones(empty_cache):
    with pytest.raises(TypeError) as e:
        train_subnetwork(SMALL, 1.0, max_step=10)
    one_line(e, "'max_step'", "max_steps", "temp_growth")


def test_edge_settings_are_accepted():
    """The ends of the ranges are settings, not errors (the sweep's endpoints, T fixed)."""
    for lam in (0.0, 3, math.inf, -math.inf):
        assert SparsifyConfig(lam=lam).lam == lam
    c = SparsifyConfig(temp_growth=1.0, reattain_steps=0, stop_share=0.0, weight_decay=0.0,
                       betas=(0.0, 0.0), seed=0, max_steps=1, batch_size=1)
    assert c.replace(lam=1.0).temp_growth == 1.0
    for name in PROFILES:  # every profile's own settings pass
        assert mask_config(get_profile(name)).max_steps == get_profile(name).max_steps


def test_checked_settings_keep_their_values():
    """Checking never converts: the config's fields are part of the mask cache key."""
    c = mask_config(get_profile("tiny"), 3, max_steps=600)
    assert c.lam == 3.0 and isinstance(c.lam, float)  # mask_config's float(), as before
    assert SparsifyConfig(lam=10).lam == 10 and isinstance(SparsifyConfig(lam=10).lam, int)


# ---------------------------------------------------------- checking helpers (property)
@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.floats(-5, 5), st.floats(0, 5),
       st.booleans(), st.booleans())
def test_check_real_matches_naive_membership(x, lo, width, lo_open, hi_open):
    hi = lo + width
    naive = not math.isnan(x) and (lo < x if lo_open else lo <= x) and \
        (x < hi if hi_open else x <= hi)
    try:
        check_real("x", x, lo, hi, lo_open=lo_open, hi_open=hi_open)
        passed = True
    except ValueError:
        passed = False
    assert passed == naive


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(-10, 10), st.floats(-10, 10), st.booleans()), st.integers(-3, 3))
def test_check_int_matches_naive(x, lo):
    naive = type(x) is int and x >= lo
    try:
        check_int("n", x, lo)
        passed = True
    except ValueError:
        passed = False
    assert passed == naive


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-5, 60), min_size=1, max_size=12), st.integers(1, 60))
def test_check_token_ids_matches_naive_range(values, vocab):
    ids = torch.tensor(values).view(1, -1)
    naive = all(0 <= v < vocab for v in values)
    try:
        assert check_token_ids(ids, vocab) is ids
        passed = True
    except ValueError:
        passed = False
    assert passed == naive


# ---------------------------------------------------------- bad inputs to the measures
@pytest.mark.parametrize("shift", [V, -V - 10])
def test_lm_surprisal_out_of_range_ids(lm, ids, shift):
    with pytest.raises(ValueError) as e:
        lm_surprisal(lm, ids + shift)
    one_line(e, f"vocabulary 0..{V - 1}", "model's own tokenizer", avoid=[lm])


def test_lm_surprisal_float_ids(lm, ids):
    with pytest.raises(TypeError) as e:
        lm_surprisal(lm, ids.float())
    one_line(e, "integer token ids", "tokenizer's ids", avoid=[lm])


def test_lm_surprisal_1d_ids(lm, ids):
    with pytest.raises(ValueError) as e:
        lm_surprisal(lm, ids[0])
    one_line(e, "(batch, seq)", "ids[None]", avoid=[lm])


def test_lm_surprisal_masked_lm(ids):
    from transformers import BertConfig, BertForMaskedLM

    bert = BertForMaskedLM(BertConfig(vocab_size=V, hidden_size=16, num_hidden_layers=1,
                                      num_attention_heads=2, intermediate_size=32)).eval()
    with pytest.raises(TypeError) as e:
        lm_surprisal(bert, ids)
    one_line(e, "BertForMaskedLM", "causal", "AutoModelForCausalLM", avoid=[bert])
    with pytest.raises(TypeError):  # the other measures share the check
        lm_bigram_cross_entropy(bert, BigramModel.from_corpus([ids], V), ids)


def test_lm_surprisal_still_right(lm, ids):
    """The checks change nothing for good input: naive log-softmax surprisals."""
    with torch.no_grad():
        logp = torch.log_softmax(lm(input_ids=ids).logits.double(), -1)
    want = -logp[:, :-1].gather(-1, ids[:, 1:, None])[..., 0] / math.log(2)
    torch.testing.assert_close(lm_surprisal(lm, ids, batch_size=2).double(), want,
                               rtol=1e-5, atol=1e-5)


def test_bigram_surprisal_3d_ids(ids):
    bigram = BigramModel.from_corpus([ids], V)
    with pytest.raises(ValueError) as e:
        bigram.surprisal(ids[None])
    one_line(e, "(seq,) or (batch, seq)", "reshape(-1, ids.shape[-1])")
    assert bigram.surprisal(ids[0]).shape == (7,) and bigram.surprisal(ids).shape == (3, 7)


def test_evaluate_subnetwork_with_a_dict(empty_cache):
    masks = {"gpt_neox.layers.0.mlp.dense_h_to_4h.weight": torch.ones(4, 4, dtype=torch.bool)}
    with pytest.raises(TypeError) as e:
        evaluate_subnetwork(SMALL, masks)
    one_line(e, "got a dict", "Subnetwork(masks)", avoid=[masks])
    assert not empty_cache.exists()  # failed before building the world


def test_evaluate_subnetwork_with_a_training_result(empty_cache):
    from bigramlab.methods.sparsify import SparsifyResult

    result = SparsifyResult(*([None] * 12), config=SparsifyConfig())
    with pytest.raises(TypeError) as e:
        evaluate_subnetwork(SMALL, result)
    one_line(e, "SparsifyResult", ".mask")


def test_train_subnetwork_with_a_model(lm, empty_cache):
    with pytest.raises(TypeError) as e:
        train_subnetwork(lm)
    one_line(e, "GPTNeoXForCausalLM", "pass the profile", avoid=[lm])


def test_empty_subnetwork_share():
    with pytest.raises(ValueError) as e:
        Subnetwork({}).share()
    one_line(e, "no mask entries", "Subnetwork.full(model)")


@pytest.mark.parametrize("which", ["model_bits", "bigram_bits"])
def test_surprisal_correlation_nan(which):
    x = np.linspace(1.0, 5.0, 20)
    bad = x.copy()
    bad[[3, 7]] = np.nan
    args = (bad, x) if which == "model_bits" else (x, bad)
    with pytest.raises(ValueError) as e:
        surprisal_correlation(*args)
    one_line(e, which, "2 NaN of 20", "drop the NaN positions")


# ---------------------------------------------------------- a small world, and damage
@pytest.fixture(scope="module")
def world_cache(tmp_path_factory):
    """A small world built once (seconds) in its own cache; tests damage copies of it."""
    root = tmp_path_factory.mktemp("reliability-world")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BIGRAMLAB_CACHE", str(root))
        build_world(SMALL, progress=False)
    return root


@pytest.fixture
def small(world_cache, tmp_path, monkeypatch):
    """A private copy of the small world's cache, in use."""
    shutil.copytree(world_cache, tmp_path / "cache")
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _recorded(folder):
    """What an LM entry holds: the recorded hash of every file (weights, configs, the
    training log) but report.json (timings), and the trainer states' contents (torch.save
    writes a fresh serialization id into every file, so their bytes never repeat)."""
    files = json.loads((folder / cache.MANIFEST).read_text())["files"]
    hashes = {k: v for k, v in files.items()
              if k != "report.json" and not k.endswith(pretrain.TRAINER_STATE)}
    states = {k: torch.load(folder / k, weights_only=True) for k in files
              if k.endswith(pretrain.TRAINER_STATE)}
    return hashes, states


def _same(a, b) -> bool:
    """Exact equality of nested dicts / lists of tensors and numbers."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


def _same_entry(got, want) -> bool:
    return got[0] == want[0] and _same(got[1], want[1])


def _count_saves(monkeypatch):
    real, saves = pretrain._save, []

    def counted(model, opt, out, name, *args):
        saves.append(name)
        real(model, opt, out, name, *args)
    monkeypatch.setattr(pretrain, "_save", counted)
    return saves


def _damage(path, how):
    if how == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif how == "delete":
        path.unlink()


LM_DAMAGE = [  # (file, how, checkpoints trained again)
    ("checkpoints/step4/model.safetensors", "truncate", ["step4", "step8", "step12"]),
    ("checkpoints/step12/trainer_state.pt", "delete", ["step12"]),
    ("checkpoints/step0/config.json", "truncate", list(SMALL.checkpoints)),
    ("train_log.json", "truncate", []),
    (cache.MANIFEST, "delete", []),
]


@pytest.mark.parametrize("rel, how, retrained", LM_DAMAGE)
def test_damaged_lm_resumes_from_last_intact_checkpoint(small, monkeypatch, capsys, rel, how,
                                                        retrained):
    folder = build_lm(SMALL)
    want = _recorded(folder)
    _damage(folder / rel, how)
    saves = _count_saves(monkeypatch)
    again = build_lm(SMALL, progress=False)
    out = capsys.readouterr().out
    assert again == folder and cache.verify(again) is None
    assert "corrupt" in out and "resuming" in out
    assert saves == retrained  # intact earlier checkpoints are kept, not trained again
    assert _same_entry(_recorded(again), want)  # bit-identical to the undamaged build


def test_damaged_lm_of_an_older_build_is_retrained_whole(small, monkeypatch):
    """An entry made before checkpoints carried their trainer state cannot resume:
    it is trained again from step 0 (as before), with the same result."""
    folder = build_lm(SMALL)
    want = _recorded(folder)[0]
    for ckpt in (folder / "checkpoints").iterdir():
        (ckpt / pretrain.TRAINER_STATE).unlink()
        (ckpt / cache.MANIFEST).unlink()
    cache.write_manifest(folder)
    _damage(folder / "checkpoints" / "step8" / "model.safetensors", "truncate")
    saves = _count_saves(monkeypatch)
    again = build_lm(SMALL, progress=False)
    assert saves == list(SMALL.checkpoints)
    assert _recorded(again)[0] == want


def test_killed_checkpoint_save_is_discarded(small, monkeypatch):
    """A kill between writing a checkpoint's files and renaming its folder leaves a
    ``.tmp`` folder: resuming deletes it and trains that checkpoint again."""
    final = build_lm(SMALL)
    want = _recorded(final)
    shutil.rmtree(final)
    real = pretrain.write_manifest

    def killed_at_step8(folder, meta=None):
        if folder.name == "step8.tmp":
            raise KeyboardInterrupt
        real(folder, meta)
    monkeypatch.setattr(pretrain, "write_manifest", killed_at_step8)
    with pytest.raises(KeyboardInterrupt):
        build_lm(SMALL, progress=False)
    monkeypatch.setattr(pretrain, "write_manifest", real)
    partial = final.with_name(final.name + ".partial")
    assert (partial / "checkpoints" / "step8.tmp").exists()
    saves = _count_saves(monkeypatch)
    assert _same_entry(_recorded(build_lm(SMALL, progress=False)), want)
    assert saves == ["step8", "step12"]


def _fake_matching_manifest(folder):
    """Rewrite the manifest so that it matches the damaged files (the hard case)."""
    cache.write_manifest(folder, json.loads((folder / cache.MANIFEST).read_text())["meta"])


@pytest.mark.parametrize("how", ["truncate", "garble"])
def test_damaged_mask_with_matching_manifest_is_rebuilt(small, capsys, how):
    first = train_subnetwork(SMALL, 1.0, progress=False)
    folders = list(small.glob("mask-*"))
    assert len(folders) == 1
    f = folders[0] / RESULT_FILE
    if how == "truncate":
        _damage(f, "truncate")
    else:  # the pickle asks for a global torch does not allow: "Weights only load failed"
        f.write_bytes(f.read_bytes().replace(b"_rebuild_tensor_v2", b"_rebuild_tensor_v9"))
    _fake_matching_manifest(folders[0])
    capsys.readouterr()
    again = train_subnetwork(SMALL, 1.0, progress=False)
    out = capsys.readouterr()
    assert "damaged" in out.out and "rebuilding" in out.out
    assert "weights_only" not in out.out + out.err
    assert cache.verify(folders[0]) is None
    assert again.mask == first.mask and again.ce == first.ce  # rebuilt, bit-identical


def test_damaged_result_file_names_the_file_not_unsafe_loading(tmp_path, lm, ids):
    cfg = SparsifyConfig(lam=1.0, lr=0.05, max_steps=2, batch_size=2)
    data = ids.repeat(2, 2)[:, :16]
    first = sparsify(lm, data, lambda lo, x, f: lo.logsumexp(-1).mean(), cfg,
                     state_dir=tmp_path, progress=False)
    _damage(tmp_path / RESULT_FILE, "truncate")
    with pytest.raises(DamagedFileError) as e:
        sparsify(lm, data, lambda lo, x, f: lo.logsumexp(-1).mean(), cfg, state_dir=tmp_path,
                 progress=False)
    one_line(e, RESULT_FILE, "damaged", "delete it")
    assert e.value.__context__ is None  # torch's message (and its advice) is not chained
    assert first.steps == 2


def test_damaged_state_file_starts_the_run_over(tmp_path, lm, ids):
    cfg = SparsifyConfig(lam=1.0, lr=0.05, max_steps=4, batch_size=2, save_every=1)
    data = ids.repeat(2, 2)[:, :16]
    loss = lambda lo, x, f: lo.logsumexp(-1).mean()  # noqa: E731
    want = sparsify(lm, data, loss, cfg, progress=False)
    (tmp_path / STATE_FILE).write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="damaged; ignoring it"):
        got = sparsify(lm, data, loss, cfg, state_dir=tmp_path, progress=False)
    assert got.mask == want.mask and got.ce == want.ce


# ---------------------------------------------------------- progress bars
@pytest.mark.parametrize("call, desc", [
    (lambda: evaluate_subnetwork(SMALL), "evaluating"),
    (lambda: evaluate_world(SMALL), "surprisal"),
])
def test_long_calls_show_a_progress_bar(small, monkeypatch, capsys, call, desc):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    want = call()
    assert desc in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert call() == want and capsys.readouterr().err == ""


def test_lm_bigram_cross_entropy_shows_a_progress_bar(lm, ids, monkeypatch, capsys):
    bigram = BigramModel.from_corpus([ids], V)
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    want = lm_bigram_cross_entropy(lm, bigram, ids)
    assert "bigram cross-entropy" in capsys.readouterr().err
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert lm_bigram_cross_entropy(lm, bigram, ids) == want
    assert capsys.readouterr().err == ""


def test_appendix_table_names_tests_that_exist():
    """Every row of the appendix's Reliability table is a test of this module."""
    import re
    import sys
    from pathlib import Path

    text = (ROOT / "book" / "engineering.md").read_text(encoding="utf8")
    section = text.split("## Reliability", 1)[1].split("\n## ", 1)[0]
    rows = [r for r in section.splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) >= 20
    here = sys.modules[__name__]
    for row in rows:
        cell = row.rsplit("|", 2)[1]  # the last column
        if cell.strip() == "same two":  # the row above's tests
            continue
        named = re.findall(r"`(test_\w+)`", cell)
        assert named and all(callable(getattr(here, n, None)) for n in named), row
