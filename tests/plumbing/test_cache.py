"""The cache: entries keyed by what made them, verified, rebuilt when corrupt."""

from pathlib import Path

import pytest

from bigramlab.plumbing import cache


@pytest.fixture(autouse=True)
def tmp_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path))
    return tmp_path


def _builder(calls):
    def build(out):
        calls.append(out)
        (out / "a.txt").write_text("hello")
        (out / "sub").mkdir()
        (out / "sub" / "b.bin").write_bytes(bytes(range(256)))
        return {"made": len(calls)}
    return build


def test_built_once_then_reused(tmp_cache):
    calls = []
    p1 = cache.cached("thing", "k1", _builder(calls))
    p2 = cache.cached("thing", "k1", _builder(calls))
    assert p1 == p2 == tmp_cache / "thing-k1" and len(calls) == 1
    assert (p1 / "a.txt").read_text() == "hello"
    assert cache.verify(p1) is None
    cache.cached("thing", "k2", _builder(calls))
    assert len(calls) == 2  # another key, another entry


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "manifest"])
def test_corrupt_entry_is_detected_and_rebuilt(tmp_cache, damage, capsys):
    calls = []
    p = cache.cached("thing", "k", _builder(calls))
    f = p / "sub" / "b.bin"
    if damage == "truncate":
        f.write_bytes(f.read_bytes()[:10])
    elif damage == "flip":
        data = bytearray(f.read_bytes())
        data[5] ^= 1
        f.write_bytes(bytes(data))
    elif damage == "delete":
        f.unlink()
    else:
        (p / cache.MANIFEST).unlink()
    assert cache.verify(p) is not None
    p2 = cache.cached("thing", "k", _builder(calls))
    assert len(calls) == 2 and cache.verify(p2) is None
    assert (p2 / "sub" / "b.bin").read_bytes() == bytes(range(256))
    assert "corrupt" in capsys.readouterr().out


def test_killed_build_leaves_a_partial_that_is_resumed(tmp_cache):
    def dies(out):
        (out / "progress.txt").write_text("half")
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        cache.cached("thing", "k", dies)
    assert not (tmp_cache / "thing-k").exists()
    seen = {}

    def resumes(out):
        seen["progress"] = (out / "progress.txt").read_text()
        (out / "done.txt").write_text("ok")
    p = cache.cached("thing", "k", resumes)
    assert seen["progress"] == "half" and (p / "done.txt").exists()
    states = {e["entry"]: e["state"] for e in cache.list_entries()}
    assert states == {"thing-k": "ok"}


def test_key_of_is_stable_and_sensitive():
    assert cache.key_of({"a": 1, "b": [1, 2]}) == cache.key_of({"b": [1, 2], "a": 1})
    assert cache.key_of({"a": 1}) != cache.key_of({"a": 2})
    assert len(cache.key_of("x")) == 12


def _build_slowly(out_dir, log):
    import time

    from bigramlab.plumbing import cache as c

    def build(out):
        with open(log, "a") as f:
            f.write("built\n")
        time.sleep(1.0)
        (out / "data.txt").write_text("ok")
    return str(c.cached("shared", "k", build))


def test_two_processes_needing_one_entry_build_it_once(tmp_cache, tmp_path):
    """pytest-xdist workers (and a chapter with its solutions) share one cache: the
    second process waits for the first builder instead of building it too."""
    import multiprocessing as mp

    log = tmp_path / "log.txt"
    with mp.get_context("fork").Pool(2) as pool:
        paths = pool.starmap(_build_slowly, [(tmp_cache, log), (tmp_cache, log)])
    assert paths[0] == paths[1] and log.read_text() == "built\n"
    assert (Path(paths[0]) / "data.txt").read_text() == "ok"
