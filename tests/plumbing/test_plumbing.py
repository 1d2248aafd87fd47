"""Plumbing: the one atomic write, and names resolved once (require_profile)."""

import os

import pytest

from bigramlab.plumbing.files import atomic_write
from bigramlab.plumbing.profiles import get_profile, require_profile
from tests.helpers import ROOT


def test_atomic_write_replaces_whole_files_only(tmp_path):
    path = tmp_path / "sub" / "f.txt"
    assert atomic_write(path, lambda tmp: tmp.write_text("one")) == path
    assert path.read_text() == "one"

    def dies_halfway(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt  # a kill between the write and the rename

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, dies_halfway)
    assert path.read_text() == "one"  # the old file, whole
    assert os.listdir(path.parent) == ["f.txt"]  # no temporary left behind
    atomic_write(path, lambda tmp: tmp.write_text("two"))
    assert path.read_text() == "two"


def test_require_profile_names_the_fix():
    p = get_profile("tiny")
    assert require_profile(p) is p
    for bad in ("tiny", None):
        with pytest.raises(TypeError, match=r"get_profile\(" + repr(bad).replace("'", ".")):
            require_profile(bad)


def test_short_path_abbreviates_the_home_folder(tmp_path):
    from pathlib import Path

    from bigramlab.plumbing.cache import short_path

    assert short_path(Path.home() / ".cache" / "bigramlab") == "~/.cache/bigramlab"
    outside = Path("/") / "srv" / "bigramlab-cache"  # not under any home folder here
    if Path.home() not in outside.parents:
        assert short_path(outside) == str(outside)


def test_quiet_transformers_silences_its_bars_not_the_hubs(tmp_path):
    """transformers' own bars ("Writing model shards" in save_pretrained, "Loading weights"
    in from_pretrained; Chapter 0's stored outputs held them) are off inside, the Hub's
    download bars stay on, and the previous setting comes back. (Under pytest tqdm is
    already off, from $TQDM_DISABLE at import, so the flags are what can be checked.)"""
    from huggingface_hub.utils import are_progress_bars_disabled
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM
    from transformers.utils import logging as hf_logging

    from bigramlab.plumbing.progress import quiet_transformers

    config = GPTNeoXConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                           num_attention_heads=2, intermediate_size=32,
                           max_position_embeddings=32)
    model = GPTNeoXForCausalLM(config)
    hf_logging.enable_progress_bar()
    assert not are_progress_bars_disabled()
    with quiet_transformers():
        assert not hf_logging.is_progress_bar_enabled()
        assert not are_progress_bars_disabled()  # downloads keep their bars
        model.save_pretrained(tmp_path / "m")
        GPTNeoXForCausalLM.from_pretrained(tmp_path / "m")
    assert hf_logging.is_progress_bar_enabled()  # restored
    hf_logging.disable_progress_bar()
    with quiet_transformers():
        pass
    assert not hf_logging.is_progress_bar_enabled()  # an off setting stays off
    hf_logging.enable_progress_bar()


def test_entry_points_check_the_profile_once_where_it_enters():
    """``@entry_point`` checks every Profile parameter, positional or keyword; the package
    calls ``.unchecked`` with the Profile it already holds, and nothing else in bigramlab
    calls ``require_profile`` (one check where a name or value enters)."""
    import ast
    from pathlib import Path

    from bigramlab.experiments import compare_worlds, train_subnetwork
    from bigramlab.plumbing.profiles import Profile, entry_point

    @entry_point
    def f(profile: Profile, other: Profile = None, n: int = 0):
        return profile, other, n

    p = get_profile("tiny")
    assert f(p) == (p, None, 0) and f(profile=p, other=p, n=2) == (p, p, 2)
    for bad in (dict(profile="tiny"), dict(profile=p, other="tiny")):
        with pytest.raises(TypeError, match=r"get_profile\('tiny'\)"):
            f(**bad)
    assert f.unchecked("anything") == ("anything", None, 0)
    with pytest.raises(TypeError, match=r"get_profile\('tiny'\)"):
        compare_worlds(p, "tiny")
    assert train_subnetwork.__doc__.startswith("A ``SparsifyResult``")
    root = ROOT / "bigramlab"
    callers = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                     for node in ast.walk(ast.parse(path.read_text()))
                     if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require_profile")
    assert callers == ["plumbing/profiles.py"], callers
