"""The judge, without a kernel: every course check run as ``bigramlab grade`` runs it.

Each check gets a ``Remote`` whose answers travel the grader's wire both ways
(inputs encoded, rebuilt as the kernel rebuilds them, the function called, its
answer and its inputs encoded and read back as plain data), with a fresh salt
for the random cases. Every chapter's right answer passes on several salts and
every plausible wrong answer of its check tests is still caught. No student
code runs in the judge's process in real grading; here the "kernel" is this
process, which is fine for the course's own answers.
"""

from __future__ import annotations

import asyncio
import importlib

import pytest
import torch

from bigramlab.checks import _core
from bigramlab.grade import wire
from bigramlab.grade.judge import Stop, judge, mirror

CHAPTERS = [f"tests.checks.test_ch{n:02d}" for n in range(1, 10)]


def _answer(fn, name: str, args) -> dict:
    """What kernel_step sends back for ``fn(*args)``, through the wire both ways."""
    args = wire.decode(wire.encode(list(args), strict=True), objects=True)
    result = {"nonce": "n", "status": "returned", "value": None, "error": "", "after": None}
    try:
        result["value"] = fn(*args)
    except NotImplementedError:
        result["status"] = "not implemented"
    except Exception as e:
        result.update(status="raised", error=[type(e).__name__, str(e)])
    result["after"] = [a if isinstance(a, (dict, list, set)) or hasattr(a, "shape") else None
                       for a in args]
    return wire.decode(wire.encode(result))


def judged(check, fn, *fixtures):
    """``check`` judged as the grader judges it, ``fn`` standing in the kernel."""
    loop = asyncio.new_event_loop()

    async def ask(name, args):
        return _answer(fn, name, args)

    async def main():
        names = ["student_fn"] + list(fixtures)
        return await asyncio.to_thread(judge, check, names, ask, loop)
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


def _cases():
    for module in CHAPTERS:
        m = importlib.import_module(module)
        for name, (check, right) in m.CHECKS.items():
            yield pytest.param(check, right, None, id=f"{module[-4:]}-{name}-right")
        for name, wrong, message in m.WRONG:
            yield pytest.param(m.CHECKS[name][0], wrong, message,
                               id=f"{module[-4:]}-{name}-{wrong.__name__}")


@pytest.mark.parametrize("check, fn, message", list(_cases()))
def test_every_check_judges_through_the_wire(check, fn, message, one_thread, monkeypatch):
    salts = iter([12345, 987654321])   # fixed here, so that the test is reproducible
    monkeypatch.setattr("bigramlab.grade.judge.secrets.randbits", lambda n: next(salts))
    for _ in range(2 if message is None else 1):   # two salts for the right answers
        result = judged(check, fn)
        if message is None:
            assert result.correct, result.line
        else:
            assert not result.correct and message in result.line, result.line


def test_the_judge_prints_nothing_and_salts_the_cases(capsys):
    from bigramlab.checks.ch06 import check_recall_at_k
    seen = []

    def spy(logits, labels, k):
        seen.append(logits.sum().item())
        return None
    judged(check_recall_at_k, spy)
    judged(check_recall_at_k, spy)
    assert capsys.readouterr().out == ""
    assert seen[0] != seen[1]   # fresh random cases each grading run
    check_recall_at_k(spy)
    check_recall_at_k(spy)
    assert seen[2] == seen[3]   # a notebook's check: the same cases every time


def test_wire_reads_only_data():
    value = {"a": torch.arange(3), (1, 2): [1.5, float("nan"), {3, 1}], "s": "x", "n": None}
    back = wire.decode(wire.encode(value))
    assert torch.equal(back["a"], value["a"]) and back[(1, 2)][2] == {1, 3}
    assert back[(1, 2)][1] != back[(1, 2)][1]   # NaN survives
    assert isinstance(wire.decode(wire.encode(object())), wire.Opaque)
    with pytest.raises(wire.WireError):
        wire.encode(object(), strict=True)
    import pickle
    with pytest.raises(wire.WireError):   # a pickle is not read (it could run code)
        wire.decode(pickle.dumps({"x": 1}))
    bad = b'{"t": "recipe", "target": "os:system", "args": {"t": "list", "v": ["echo hi"]}}'
    blob = len(bad).to_bytes(8, "little") + bad + wire.encode(None)[8 + 4:]
    with pytest.raises(wire.WireError):
        wire.decode(blob, objects=True)   # recipes name bigramlab only
    assert isinstance(wire.decode(blob), wire.Opaque)   # and the grader never builds them


def test_mirror_applies_in_place_changes():
    t, d, s = torch.zeros(3), {"w": torch.zeros(2), "v": torch.ones(1)}, {1, 2}
    mirror(t, torch.ones(3))
    mirror(d, {"w": torch.ones(2)})
    mirror(s, {5})
    assert t.sum() == 3 and set(d) == {"w"} and d["w"].sum() == 2 and s == {5}


def test_a_stop_is_not_a_wrong_answer():
    from bigramlab.checks.ch06 import check_median_rotation

    def stops(a):
        raise Stop("timeout", "")
    with pytest.raises(Stop):
        contextless = _core.GRADING.set(1)
        try:
            check_median_rotation(stops)
        finally:
            _core.GRADING.reset(contextless)
