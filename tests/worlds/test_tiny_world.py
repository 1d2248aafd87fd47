"""The tiny world: determinism, resume, cache rebuild, loading through from_pretrained.

These tests build a *small* world (a few seconds) in a temporary cache; the
full-size tiny world is checked in test_tiny_world_full.py.
"""

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from bigramlab import build_world, load_corpus, load_model, load_tokenizer
from bigramlab.plumbing import cache
from bigramlab.worlds.tiny import pretrain
from bigramlab.worlds.tiny.build import read_passages
from tests.helpers.worlds import SMALL, STEPS


@pytest.fixture(scope="module")
def small_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("small-world-cache")


@pytest.fixture
def small_world(small_cache, monkeypatch):
    # one small world for the module; tests that damage it get it rebuilt
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(small_cache))
    return build_world(SMALL, progress=False)


def _final_weights(world):
    return load_file(str(world["lm"] / "checkpoints" / SMALL.final_checkpoint / "model.safetensors"))


def test_same_seed_bit_identical(small_world, tmp_path, monkeypatch):
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path / "again"))
    worlds = [small_world, build_world(SMALL, progress=False)]
    a, b = (_final_weights(w) for w in worlds)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for stage in ("corpus", "tokenizer", "tokens"):
        ma = json.loads((worlds[0][stage] / cache.MANIFEST).read_text())["files"]
        mb = json.loads((worlds[1][stage] / cache.MANIFEST).read_text())["files"]
        assert ma == mb, f"stage {stage} differs between two builds with the same seed"
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path / "cache3"))
    other = build_world(SMALL.replace(world=SMALL.world.__class__(
        **{**SMALL.world.__dict__, "seed": 4})), progress=False)
    c = _final_weights(other)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_checkpoints_are_pythia_style_and_load(small_world):
    names = sorted(p.name for p in (small_world["lm"] / "checkpoints").iterdir())
    assert sorted(SMALL.checkpoints) == names
    assert SMALL.checkpoints == ("step0", "step1", "step2", "step4", "step8", "step12")
    m0, tok = load_model(SMALL, "step0")
    m1, _ = load_model(SMALL)
    assert type(m0).__name__ == "GPTNeoXForCausalLM" and not m0.training
    assert not torch.equal(m0.gpt_neox.embed_in.weight, m1.gpt_neox.embed_in.weight)
    log = json.loads((small_world["lm"] / "train_log.json").read_text())["loss"]
    assert len(log) == STEPS and all(x > 0 for x in log)


def test_resume_after_kill_gives_the_same_weights(small_world, tmp_path, monkeypatch):
    want = _final_weights(small_world)

    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path / "b"))
    real_save, saves = pretrain._save, []

    def killed_after_4th_save(*args, **kwargs):
        real_save(*args, **kwargs)
        saves.append(1)
        if len(saves) == 4:
            raise KeyboardInterrupt  # like a Ctrl-C mid-training
    monkeypatch.setattr(pretrain, "_save", killed_after_4th_save)
    with pytest.raises(KeyboardInterrupt):
        build_world(SMALL, progress=False)
    monkeypatch.setattr(pretrain, "_save", real_save)
    partial = list((tmp_path / "b").glob("tinylm-*.partial"))
    saved = sorted(p.name for p in (partial[0] / "checkpoints").iterdir())
    assert saved == ["step0", "step1", "step2", "step4"]  # each with its trainer state
    assert all((partial[0] / "checkpoints" / c / pretrain.TRAINER_STATE).exists() for c in saved)
    got = _final_weights(build_world(SMALL, progress=False))
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_corrupt_checkpoint_is_rebuilt(small_world, capsys):
    f = small_world["lm"] / "checkpoints" / "step4" / "model.safetensors"
    f.write_bytes(f.read_bytes()[:100])  # a truncated copy
    model, _ = load_model(SMALL, "step4")
    assert "corrupt" in capsys.readouterr().out
    assert cache.verify(small_world["lm"]) is None
    assert sum(p.numel() for p in model.parameters()) > 0


def test_corpus_splits(small_world):
    train, ev = load_corpus(SMALL, "train"), load_corpus(SMALL, "eval")
    assert ev.shape == (8, 128) and train.shape[1] == 128 and len(train) > 20
    assert train.dtype == ev.dtype == torch.int64
    tok = load_tokenizer(SMALL)
    # eval comes first in the stream: it starts with the first passage
    first = read_passages(small_world["corpus"])[0]
    assert tok.decode(ev[0]).startswith(first[:100])
    assert int(train.max()) < len(tok)
    with pytest.raises(ValueError, match="unknown split"):
        load_corpus(SMALL, "test")


@settings(max_examples=40, deadline=None)
@given(st.text(min_size=0, max_size=200))
def test_tokenizer_round_trip(text):
    tok = _tok()
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


_TOK = {}


def _tok():
    # built once per test session in its own folder (hypothesis forbids function fixtures)
    if "tok" not in _TOK:
        import os
        import tempfile
        old = os.environ.get("BIGRAMLAB_CACHE")
        os.environ["BIGRAMLAB_CACHE"] = tempfile.mkdtemp()
        try:
            _TOK["tok"] = load_tokenizer(SMALL)
        finally:
            if old is None:
                del os.environ["BIGRAMLAB_CACHE"]
            else:
                os.environ["BIGRAMLAB_CACHE"] = old
    return _TOK["tok"]


def test_tokenizer_is_byte_level_bpe_with_pythia_special_token(small_world):
    tok = load_tokenizer(SMALL)
    assert len(tok) == SMALL.world.vocab_size
    assert tok.eos_token == "<|endoftext|>" and tok.eos_token_id == 0
    assert tok.is_fast  # a transformers tokenizer backed by the `tokenizers` BPE


def test_gpt2_world_shares_corpus_and_tokenizer(small_world):
    g = build_world(SMALL.replace(name="tiny-gpt2-test", arch="gpt2"), progress=False)
    assert g["corpus"] == small_world["corpus"] and g["tokenizer"] == small_world["tokenizer"]
    assert g["lm"] != small_world["lm"]
    model, _ = load_model(SMALL.replace(arch="gpt2"))
    assert type(model).__name__ == "GPT2LMHeadModel"


def test_not_a_tiny_profile():
    with pytest.raises(ValueError, match="not a tiny-world profile"):
        build_world("pythia-70m")


def test_numeric_environment_is_in_the_lm_key():
    """Other kernels or another thread count give other bits, so another cache entry."""
    import os
    import subprocess
    import sys

    import torch

    from bigramlab.plumbing.devices import numerics
    from bigramlab.worlds.tiny.build import _lm_key

    threads = torch.get_num_threads()
    before = _lm_key(SMALL)
    try:
        torch.set_num_threads(1 if threads > 1 else 2)
        assert numerics()["threads"] != threads and _lm_key(SMALL) != before
    finally:
        torch.set_num_threads(threads)
    assert _lm_key(SMALL) == before
    out = subprocess.run([sys.executable, "-c", "from bigramlab.plumbing.devices import numerics; "
                          "print(numerics()['kernels'], numerics()['mkl_cbwr'])"],
                         env=dict(os.environ, ATEN_CPU_CAPABILITY="default",
                                  MKL_CBWR="COMPATIBLE"),
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["DEFAULT", "COMPATIBLE"]


def test_a_stage_by_name_is_the_same_folder(small_world):
    for stage, folder in small_world.items():
        assert build_world(SMALL, progress=False, stage=stage) == folder
    with pytest.raises(ValueError, match="stages: corpus, tokenizer, tokens, lm"):
        build_world(SMALL, stage="weights")
