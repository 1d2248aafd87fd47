"""`bigramlab grade` on Chapter 6: no forgery scores, and one exercise's failure costs
only that exercise.

Every forgery of issue 21 (and its variants) is a cell a student adds to a blank
Chapter 6 notebook (every exercise left as the stub): each one used to score 7/7
when the judge ran in the student's kernel. Now the checks run in the grader's
process, on inputs it chose, and the kernel only sends back plain data: each
scores 0. Then: 6.3 looping forever (in its own cell, or only when graded, or
deaf to interrupts), a function that floods or kills its kernel, with 6.1 and 6.2
right: 5/7.
"""

from __future__ import annotations

import pytest

from bigramlab.grade import Limits, grade
from tests.helpers import grading as fx

IDS = ["ch06-6.1", "ch06-6.2", "ch06-6.3"]

FORGERIES = {
    # the four of the issue
    "exec": """def exec(code, ns=None, *rest):
    def forged(spec, *a):
        open(spec["result_path"], "w").write(repr({
            "nonce": spec["nonce"], "id": spec["id"], "status": "correct",
            "name": spec["id"], "line": "✓ forged: correct"}))
    if ns is not None:
        ns["grade"] = forged
""",
    "io_open": '''import io, builtins
_open = io.open
def _forge(path, mode="r", *a, **k):
    f = _open(path, mode, *a, **k)
    if "w" in mode:
        w = f.write
        f.write = lambda s: w(s.replace("wrong", "correct").replace("not implemented",
                                                                    "correct")
                              .replace("✗", "✓")
                              if isinstance(s, str) else s.replace(b"not implemented",
                                                                    b"returned"))
    return f
io.open = builtins.open = _forge
''',
    "allclose_abs": '''import torch, builtins
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
builtins.abs = lambda x: 0
''',
    "stack_walk": '''import sys
def _want(default):
    f = sys._getframe(1)
    while f is not None:
        for name in ("want", "want_a", "want_b"):
            if name in f.f_locals:
                return f.f_locals[name]
        f = f.f_back
    return default
''',
    # the variants
    "json": '''import json, sys
class _J:
    dumps = staticmethod(lambda *a, **k: '{"t": "float", "v": "60.0"}')
    loads = staticmethod(lambda *a, **k: {"status": "correct"})
sys.modules["json"] = _J
''',
    "pickle": '''import pickle
pickle.loads = lambda *a, **k: {"status": "correct", "line": "✓ correct"}
pickle.dumps = lambda *a, **k: b"correct"
''',
    "os_write": '''import os
_w = os.write
os.write = lambda fd, data: _w(fd, data.replace(b"not implemented", b"returned"))
''',
    "sys_modules": '''import sys, types
fake = types.ModuleType("bigramlab.grade.kernel_step")
def call(spec):
    open(spec["out"], "w").write('{"status": "correct", "score": 7}')
fake.call = call
sys.modules["bigramlab.grade.kernel_step"] = fake
sys.modules["bigramlab.checks"] = types.SimpleNamespace(
    check_median_rotation=lambda f: True, check_ridge_fit=lambda f: True,
    check_recall_at_k=lambda f: True)
''',
    "torch_testing": '''import torch, numpy
torch.testing.assert_close = lambda *a, **k: None
numpy.allclose = lambda *a, **k: True
numpy.testing.assert_allclose = lambda *a, **k: None
''',
    "signals": '''import signal
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
    signal.signal(s, signal.SIG_IGN)
''',
    "result_path": '''import bigramlab.grade.kernel_step as ks, bigramlab.grade.wire as wire
def call(spec):
    wire.write(spec["out"], {"nonce": spec["nonce"], "status": "correct",
                             "line": "✓ Exercise: correct", "value": 60.0, "after": None})
ks.call = call
''',
}

#: Exercise functions a forging student writes (with the cells above), instead of stubs.
ANY_ANSWERS = {
    "ch06-6.1": "def median_rotation(a):\n    return 0.0\n",
    "ch06-6.2": ("def ridge_fit(x, y, alpha):\n"
                 "    return torch.zeros(y.shape[1], x.shape[1]), torch.zeros(y.shape[1])\n"),
    "ch06-6.3": "def recall_at_k(logits, labels, k):\n    return 0.0\n",
}
STACK_ANSWERS = {
    "ch06-6.1": "def median_rotation(a):\n    return _want(0.0)\n",
    "ch06-6.2": "def ridge_fit(x, y, alpha):\n    return _want(None), _want(None)\n",
    "ch06-6.3": "def recall_at_k(logits, labels, k):\n    return _want(0.5)\n",
}


def _blank_with(cell: str, answers: dict | None = None):
    nb = fx.student("ch06", wrong=answers or {}, trim=True)
    return fx.insert(nb, fx.code_index(nb, "from bigramlab import checks") + 1, cell)


@pytest.fixture(scope="module")
def forgery_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("forged")
    answers = {"stack_walk": STACK_ANSWERS, "allclose_abs": ANY_ANSWERS,
               "torch_testing": ANY_ANSWERS}
    paths = [fx.write(_blank_with(src, answers.get(name)), d / f"{name}.ipynb")
             for name, src in FORGERIES.items()]
    paths.append(fx.write(fx.student("ch06", right="all", trim=True), d / "honest.ipynb"))
    subs = grade(paths, d / "out", limits=Limits(cell_timeout=60, check_timeout=30), jobs=2)
    return {s.label: s for s in subs}


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("label", list(FORGERIES))
def test_a_forgery_scores_zero(forgery_run, label):
    s = forgery_run[label]
    assert [o.id for o in s.outcomes] == IDS
    assert [o.score for o in s.outcomes] == [0, 0, 0], [(o.status, o.line) for o in s.outcomes]
    assert s.status not in ("grader error",), s.traceback


@pytest.mark.slow
@pytest.mark.notebooks
def test_the_same_run_scores_an_honest_notebook(forgery_run):
    s = forgery_run["honest"]
    assert s.score == 7 and s.status == "ok", [(o.status, o.line) for o in s.outcomes]


LOOP = "def recall_at_k(logits, labels, k):\n    while True:\n        pass\n"
DEAF = ("import signal\n\n\ndef recall_at_k(logits, labels, k):\n"
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)  # deaf to the grader's interrupt\n"
        "    while True:\n        pass\n")
FLOOD = "def recall_at_k(logits, labels, k):\n    while True:\n        print('x' * 10**5)\n"
DIES = "def recall_at_k(logits, labels, k):\n    import os\n    os._exit(1)\n"


@pytest.fixture(scope="module")
def one_bad_exercise_run(tmp_path_factory):
    """6.1 and 6.2 right; 6.3 loops, ignores interrupts, floods or kills the kernel, in its
    own cell (the notebook's check call) or only when the grader calls it."""
    d = tmp_path_factory.mktemp("one_bad")
    subs = {"loops_in_cell": LOOP + "\n\nchecks.check_recall_at_k(recall_at_k)",
            "loops_when_graded": LOOP, "deaf_when_graded": DEAF,
            "floods_in_cell": FLOOD + "\n\nchecks.check_recall_at_k(recall_at_k)",
            "dies_when_graded": DIES}
    paths = [fx.write(fx.student("ch06", right={"ch06-6.1", "ch06-6.2"},
                                 wrong={"ch06-6.3": src}, trim=True), d / f"{name}.ipynb")
             for name, src in subs.items()]
    result = grade(paths, d / "out", limits=Limits(cell_timeout=20, check_timeout=10,
                                                   max_output_bytes=2**20), jobs=2)
    return {s.label: s for s in result}


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("label, words", [
    ("loops_in_cell", "ran past the 20 s limit"),
    ("loops_when_graded", "ran past the check's 10 s limit"),
    ("deaf_when_graded", "did not stop when interrupted"),
    ("floods_in_cell", "printed more than 1 MB"),
    ("dies_when_graded", "the kernel exited or died"),
])
def test_one_bad_exercise_costs_only_itself(one_bad_exercise_run, label, words):
    s = one_bad_exercise_run[label]
    by_id = {o.id: o for o in s.outcomes}
    assert [by_id[i].score for i in IDS] == [2, 3, 0], [(o.status, o.line) for o in s.outcomes]
    assert s.score == 5
    assert words in by_id["ch06-6.3"].line, by_id["ch06-6.3"].line
