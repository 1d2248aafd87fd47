"""tools/device_check.py: every chapter's real branch, measured, to one JSON file.

It needs a GPU and the Hub, so here it runs on the stand-in (tools/standin.py), on one
cheap chapter that has headline numbers (Chapter 3: a mask of the stand-in budget's 8
steps), with the GPU parts skipped (no CUDA: peak memory null); the schema is checked,
and the pieces that only a real run exercises (the comparison with the paper, a failed
chapter) are checked on records made by hand.
"""

import ast
import json
import os
import re
import subprocess
import sys

import pytest

from tools import device_check as dc

from tests.helpers import ROOT


def assigned(text: str, name: str) -> bool:
    """``name`` is bound in a chapter's code: an assignment (tuple ones too) or a def."""
    return bool(re.search(rf"^\s*(?:[\w\[\]'\"]+\s*,\s*)*{name}\s*(?:,\s*[\w\[\]'\"]+\s*)*=(?!=)"
                          rf"|^\s*def {name}\(", text, re.M))


def test_every_headline_reads_names_its_chapter_defines():
    """A renamed variable in a chapter would silently turn a headline into 'missing'."""
    for key, exprs in dc.HEADLINES.items():
        [md] = (ROOT / "chapters").glob(f"{key}_*.md")
        text = md.read_text()
        for name, expr in exprs.items():
            tree = ast.parse(expr, mode="eval")
            bound = {n.id for c in ast.walk(tree) if isinstance(c, ast.comprehension)
                     for n in ast.walk(c.target) if isinstance(n, ast.Name)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Name) and node.id not in bound | {"float", "int"}:
                    assert assigned(text, node.id), f"{key} {name}: {node.id} not in {md.name}"
    for chapter, name, *_ in dc.PAPER:  # every paper number has a headline to meet
        assert name in dc.HEADLINES[chapter], name


def record(chapter, profile, headline, ok=True):
    return {"chapter": chapter, "ok": ok, "error": None if ok else "CellExecutionError: x",
            "wall_s": 1.0, "peak_gpu_gib": None, "gpu": None, "profile": profile,
            "budget": "session", "headline": headline, "missing": [], "compare": [],
            "not_compared": []}


def test_the_paper_is_compared_only_for_the_model_it_reports():
    r = record("ch06_rotation", "pythia-160m", {"rotation.bigram.input": [0.0, 40.0],
                                               "rotation.bigram.output": [70.0, 30.0]})
    dc.compare(r)
    got = {c["headline"]: c for c in r["compare"]}
    assert got["rotation.bigram.input"]["paper"] == [0.0, 47.0]
    assert got["rotation.bigram.input"]["difference"] == [0.0, -7.0]
    assert got["rotation.bigram.output"]["difference"] == pytest.approx([1.5, -4.5])
    r = record("ch08_necessity", "pythia-160m", {"overlap.x_chance": 4.0, "cost.ratio": 1.1})
    dc.compare(r)
    assert [c["headline"] for c in r["compare"]] == ["overlap.x_chance"]
    assert r["compare"][0]["difference"] == pytest.approx(4.0 - 3.81)
    assert {c["why"] for c in r["not_compared"]} == {"no value from the run"}
    r = record("ch03_sparsification", "pythia-70m", {"r_max": 0.9})
    dc.compare(r)
    assert r["compare"] == [] and "the paper's number is for pythia-1b" in (
        r["not_compared"][0]["why"])


def report(chapters, cuda=False):
    return {"schema": dc.SCHEMA, "created": "2026-12-06T00:00:00+00:00", "profile": "pythia-70m",
            "budget": "session", "standin": True, "cuda": cuda, "device": "cpu",
            "torch": "2", "chapters": chapters}


def test_the_schema_check_catches_what_it_should():
    good = report([record("ch03_sparsification", "pythia-70m", {"kept": 5}),
                   record("ch08_necessity", None, {}, ok=False)])
    dc.validate(good)
    bad = json.loads(json.dumps(good))
    bad["chapters"][0]["peak_gpu_gib"] = 1.5  # a GPU peak where there was no CUDA
    with pytest.raises(ValueError, match="without CUDA"):
        dc.validate(bad)
    bad = json.loads(json.dumps(good))
    bad["chapters"][1]["error"] = None  # failed without an error
    with pytest.raises(ValueError, match="ok and error disagree"):
        dc.validate(bad)
    bad = json.loads(json.dumps(good))
    del bad["chapters"][0]["wall_s"]
    with pytest.raises(ValueError, match="wall_s"):
        dc.validate(bad)


def test_without_cuda_the_real_run_refuses_in_one_line(tmp_path):
    out = subprocess.run([sys.executable, "tools/device_check.py", "--out",
                          str(tmp_path / "x.json"), "ch01"], cwd=ROOT, capture_output=True,
                         text=True, env=dict(os.environ) | {"CUDA_VISIBLE_DEVICES": ""},
                         timeout=300)
    assert out.returncode == 2 and out.stderr.strip().count("\n") == 0
    assert "no CUDA device" in out.stderr and "--standin" in out.stderr
    assert not (tmp_path / "x.json").exists()


@pytest.mark.slow
def test_one_chapter_on_the_stand_in_writes_the_schema(tmp_path):
    """Chapter 3's real branch on the stand-in: recorded, no GPU peak, its headlines read."""
    out_file = tmp_path / "check.json"
    out = subprocess.run([sys.executable, "tools/device_check.py", "--standin", "--out",
                          str(out_file), "ch03"], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ) | {"CUDA_VISIBLE_DEVICES": ""}, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    rep = json.loads(out_file.read_text())
    dc.validate(rep)
    assert (rep["profile"], rep["budget"], rep["standin"], rep["cuda"]) == (
        "pythia-70m", "session", True, False)
    [ch] = rep["chapters"]
    assert ch["chapter"] == "ch03_sparsification" and ch["ok"] and ch["error"] is None
    assert ch["profile"] == "pythia-70m" and ch["budget"] == "session"
    assert ch["peak_gpu_gib"] is None and ch["gpu"] is None and ch["wall_s"] > 0
    assert ch["missing"] == [] and set(ch["headline"]) == set(dc.HEADLINES["ch03"])
    h = ch["headline"]
    assert isinstance(h["kept"], int) and 0 < h["kept"] and 0 < h["kept_share"] < 1
    assert 0 < h["steps"] <= 8  # the stand-in budget's chapter_max_steps
    assert -1 <= h["r_max"] <= 1 and -1 <= h["r_drop"] <= 1
    # the paper's r is Pythia 1B's: listed, not compared with Pythia 70M's
    assert ch["compare"] == [] and ch["not_compared"][0]["model"] == "pythia-1b"
    assert (tmp_path / "check.json.notebooks" / "ch03_sparsification.ipynb").exists()
