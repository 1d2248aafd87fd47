"""`bigramlab grade`: exercise notebooks run in fresh kernels and scored by the
course's checks, called by the grader on the students' objects.

The submissions are made here from Chapter 1's notebooks (its checks are cheap):
all right, partly wrong, blank, crashing, looping, flooding, exiting, deleting,
reordered, printing fake ✓ lines, replacing the checks. Three grading runs (a
module-scoped fixture each) cover them; the other tests read their reports.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest

from bigramlab import cli
from bigramlab.grade import Limits, grade, load_references
from bigramlab.grade.assignments import badge, find_cells, identify
from bigramlab.grade.batch import changed_files, labels, package_sources, restore
from bigramlab.grade.reports import POINTS_ROW, write_csv
from bigramlab.grade.runner import Outcome, Submission
from tests.helpers import grading as fx

from tests.helpers import ROOT

IDS = ["ch01-1.1", "ch01-1.2", "ch01-1.3", "ch01-1.4"]
POINTS = {"ch01-1.1": 2, "ch01-1.2": 2, "ch01-1.3": 1, "ch01-1.4": 2}

FOOL_THE_GRADER = '''\
import builtins, json, sys, os
import bigramlab.checks as _checks, bigramlab.checks.ch01 as _ch01
import bigramlab.checks._core as _core, bigramlab.methods.bigrams as _bigrams
for _name in dir(_ch01):
    if _name.startswith("check_"):
        setattr(_ch01, _name, lambda *a, **k: True)
        setattr(_checks, _name, lambda *a, **k: True)
_core.run = lambda name, body: _core.CheckResult(name, "correct", "✓ " + name + ": correct")
_core.expect_equal = lambda *a, **k: None
_bigrams.bigram_counts = lambda model: torch.zeros(model.vocab_size + 1, model.vocab_size,
                                                   dtype=torch.int64)
json = type(sys)("json")  # a fake json, in the namespace and in sys.modules
json.dumps = json.loads = lambda *a, **k: {"score": 100}
sys.modules["json"] = json
print = lambda *a, **k: builtins.print("✓ correct")
os.makedirs("bigramlab/checks", exist_ok=True)  # a fake package beside the notebook
open("bigramlab/__init__.py", "w").write("from . import checks\\n")
open("bigramlab/checks/__init__.py", "w").write("def check_count_bigrams(f): return True\\n")
'''

PRINT_TICKS = '''\
for name in ("1.1 (count bigrams)", "1.2 (probabilities with backoff)",
             "1.3 (surprisal in bits)", "1.4 (bigram surprisal correlation)"):
    print(f"✓ Exercise {name}: correct")
True
'''

EXTRA = '''\
"""Instructor-only: Exercise 1.3 on a larger vocabulary."""
import torch
from bigramlab.checks._core import Wrong, call, run

EXERCISES = [{"assignment": "ch01_exercises", "id": "ch01-1.3-hidden",
              "check": "check_surprisal_large", "args": ["surprisal_bits"], "points": 1}]


def check_surprisal_large(fn):
    def body():
        probs = torch.full((301, 300), 1 / 300, dtype=torch.float64)
        ids = torch.randint(0, 300, (2, 9), generator=torch.Generator().manual_seed(0))
        got = call(fn, probs, ids)
        want = torch.full((2, 8), 8.2288, dtype=torch.float64)  # log2(300)
        if got.shape != (2, 8) or not torch.allclose(got.double(), want, atol=1e-3):
            raise Wrong("wrong on a 300-token vocabulary")
    return run("Exercise 1.3 (hidden: a larger vocabulary)", body)
'''


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="", encoding="utf8") as f:
        return {Path(r["file"]).stem if r["file"] != POINTS_ROW else POINTS_ROW: r
                for r in csv.DictReader(f)}


def _results(out: Path, label: str) -> dict:
    return json.loads((out / label / "results.json").read_text(encoding="utf8"))


def _by_id(out: Path, label: str) -> dict[str, dict]:
    return {t["name"].split(":")[0]: t for t in _results(out, label)["tests"]}


# ------------------------------------------------------------------ the three runs
@pytest.fixture(scope="module")
def main_run(tmp_path_factory):
    """All right, partly wrong, blank, crashing, reordered, fake ✓, checks replaced."""
    d = tmp_path_factory.mktemp("class")
    full = fx.student(right="all")
    reordered = fx.student(right="all", trim=True)
    setup = fx.code_index(reordered, "from bigramlab import checks")
    exercises = [c for c in reordered.cells if fx.graded_ids(c)]
    reordered.cells = ([c for c in reordered.cells[:setup + 1]] + exercises[::-1]
                       + [nbformat.v4.new_markdown_cell("My notes on the exercises.")])
    crashing = fx.student(right="all", trim=True)
    crashing.cells[fx.code_index(crashing, "from bigramlab import checks")].source = \
        "raise RuntimeError('my setup is broken')"
    blank_trim = fx.student(trim=True)
    subs = {
        "all_right": fx.write(full, d / "all_right.ipynb"),
        "partly_wrong": fx.write(fx.student(right={"ch01-1.1", "ch01-1.3"},
                                            wrong={"ch01-1.2": fx.WRONG_CH01["ch01-1.2"]},
                                            trim=True), d / "partly_wrong.ipynb"),
        "blank": fx.write(fx.exercise_nb(), d / "blank.ipynb"),
        "crashing": fx.write(crashing, d / "crashing.ipynb"),
        "reordered": fx.write(reordered, d / "reordered.ipynb"),
        "ticks_printed": fx.write(fx.insert(blank_trim, len(blank_trim.cells), PRINT_TICKS),
                                  d / "ticks_printed.ipynb"),
        "checks_replaced": fx.write(
            fx.insert(fx.student(wrong={"ch01-1.1": fx.WRONG_CH01["ch01-1.1"]}, trim=True),
                      fx.code_index(blank_trim, "from bigramlab import checks") + 1,
                      FOOL_THE_GRADER), d / "checks_replaced.ipynb"),
    }
    out = d / "out"
    result = grade(list(subs.values()), out, limits=Limits(cell_timeout=300, check_timeout=120,
                                                            notebook_timeout=900), jobs=2)
    return out, {s.label: s for s in result}


@pytest.fixture(scope="module")
def fatal_run(tmp_path_factory):
    """Notebooks that loop forever, print megabytes, exit the kernel, delete their files:
    the bad cell comes first, so a short cell limit is safe."""
    d = tmp_path_factory.mktemp("fatal")
    bad = {"loops": "while True:\n    pass",
           "floods": "for _ in range(40):\n    print('x' * 100_000)",
           "exits": "import os\nos._exit(3)",
           "quits": "exit()",
           "deletes": "import os\nfor f in os.listdir('.'):\n    os.remove(f)",
           "garbles": "import json\njson.dumps = lambda *a, **k: '{}'"}
    paths = [fx.write(fx.insert(fx.student(right="all"), 1, src), d / f"{name}.ipynb")
             for name, src in bad.items()]
    out = d / "out"
    result = grade(paths, out, limits=Limits(cell_timeout=8, max_output_bytes=2**20))
    return out, {s.label: s for s in result}


@pytest.fixture(scope="module")
def loop_in_check_run(tmp_path_factory):
    """One submission whose 1.1 loops forever once called (its own check call deleted),
    graded with an instructor's extra check: a results.json lands at the top."""
    d = tmp_path_factory.mktemp("loop")
    nb = fx.student(right="all", trim=True)
    i = next(i for i, c in enumerate(nb.cells) if "ch01-1.1" in fx.graded_ids(c))
    nb.cells[i].source = "def count_bigrams(sequences, vocab_size):\n    while True:\n        pass"
    extra = d / "extra_checks.py"
    extra.write_text(EXTRA, encoding="utf8")
    out = d / "out"
    result = grade([fx.write(nb, d / "slow_student.ipynb")], out, extra=extra,
                   limits=Limits(cell_timeout=300, check_timeout=15))
    return out, result[0]


# ------------------------------------------------------------------ scores
@pytest.mark.parametrize("label, scores, status", [
    ("all_right", {"ch01-1.1": 2, "ch01-1.2": 2, "ch01-1.3": 1, "ch01-1.4": 2}, "ok"),
    ("partly_wrong", {"ch01-1.1": 2, "ch01-1.2": 0, "ch01-1.3": 1, "ch01-1.4": 0}, "ok"),
    ("blank", {i: 0 for i in IDS}, "ok"),
    ("crashing", {i: 0 for i in IDS}, "cell errors"),
    ("reordered", {"ch01-1.1": 2, "ch01-1.2": 2, "ch01-1.3": 1, "ch01-1.4": 2}, "ok"),
    ("ticks_printed", {i: 0 for i in IDS}, "ok"),
    ("checks_replaced", {i: 0 for i in IDS}, "ok"),
])
@pytest.mark.slow
@pytest.mark.notebooks
def test_scores_in_the_class_table(main_run, label, scores, status):
    out, subs = main_run
    row = _rows(out)[label]
    assert {i: float(row[i]) for i in IDS} == scores, (row, subs[label].outcomes)
    assert float(row["total"]) == sum(scores.values()) and float(row["possible"]) == 7
    assert float(row["percent_correct"]) == pytest.approx(sum(scores.values()) / 7, abs=1e-4)
    assert row["status"] == status, subs[label].reason


@pytest.mark.slow
@pytest.mark.notebooks
def test_class_table_layout(main_run):
    out, _ = main_run
    with open(out / "grades.csv", newline="", encoding="utf8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["file", *IDS, "total", "possible", "percent_correct", "status"]
    assert rows[1] == [POINTS_ROW, "2", "2", "1", "2", "7", "7", "", ""]
    assert len(rows) == 2 + 7


@pytest.mark.slow
@pytest.mark.notebooks
def test_wrong_and_blank_answers_get_the_checks_lines(main_run):
    out, subs = main_run
    wrong = _by_id(out, "partly_wrong")
    assert "uniform 1/V" in wrong["ch01-1.2"]["output"] and wrong["ch01-1.2"]["score"] == 0
    assert "not implemented yet" in wrong["ch01-1.4"]["output"]
    assert wrong["ch01-1.1"]["output"].startswith("✓") and wrong["ch01-1.1"]["score"] == 2
    assert all("not implemented yet" in t["output"] for t in _by_id(out, "blank").values())
    feedback = (out / "partly_wrong" / "feedback.md").read_text(encoding="utf8")
    assert "Score: 3 / 7 (43%)" in feedback and "uniform 1/V" in feedback


@pytest.mark.slow
@pytest.mark.notebooks
def test_a_crash_scores_its_exercises_zero_with_the_reason(main_run):
    out, subs = main_run
    s = subs["crashing"]
    assert any("RuntimeError: my setup is broken" in e for e in s.cell_errors)
    for t in _by_id(out, "crashing").values():
        assert "raised NameError" in t["output"] and "fix it so that the cell runs" in t["output"]


@pytest.mark.slow
@pytest.mark.notebooks
def test_reordered_cells_are_found_by_id(main_run):
    out, subs = main_run
    cells = {o.id: o.cell for o in subs["reordered"].outcomes}
    assert cells["ch01-1.4"] < cells["ch01-1.3"] < cells["ch01-1.2"] < cells["ch01-1.1"]
    assert cells != {o.id: o.cell for o in subs["all_right"].outcomes}


@pytest.mark.slow
@pytest.mark.notebooks
def test_printed_ticks_and_replaced_checks_do_not_count(main_run):
    """The notebook printed ✓ lines, or replaced the checks, _core and the reference in its
    kernel, shadowed print and json and put a fake bigramlab beside itself: the grader's
    checks, imported afresh, still see stubs and a wrong table."""
    out, subs = main_run
    executed = subs["ticks_printed"].executed
    assert "✓ Exercise 1.1 (count bigrams): correct" in json.dumps(executed.cells[-1].outputs,
                                                                   ensure_ascii=False)
    replaced = _by_id(out, "checks_replaced")
    assert "values differ from the expected ones" in replaced["ch01-1.1"]["output"]
    assert all(t["score"] == 0 for t in replaced.values())
    assert "not implemented yet" in replaced["ch01-1.2"]["output"]


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("label, words", [
    ("loops", "ran past the 8 s limit"),
    ("floods", "printed more than 1 MB"),
    ("exits", "the kernel exited or died"),
    ("quits", "exited its kernel (exit() or quit())"),
    ("garbles", "did the notebook replace json"),
])
def test_a_cell_that_stops_the_kernel_costs_only_that_cell(fatal_run, label, words):
    """The bad cell comes before the setup: it is recorded, the kernel is stopped or
    started again without it, and every (right) exercise is still scored."""
    out, subs = fatal_run
    s = subs[label]
    assert (s.status, s.score) == ("cell errors", 7), (s.reason, s.outcomes)
    assert any(e.startswith("cell 1:") and words in e for e in s.cell_errors), s.cell_errors
    assert words in (out / label / "feedback.md").read_text(encoding="utf8")


@pytest.mark.slow
@pytest.mark.notebooks
def test_deleting_the_graders_files_scores_zero(fatal_run):
    out, subs = fatal_run
    s = subs["deletes"]
    assert (s.status, s.score) == ("deleted files", 0), s.reason
    assert "deleted files in its folder" in s.reason
    assert _rows(out)["deletes"]["status"] == "deleted files"


@pytest.mark.slow
@pytest.mark.notebooks
def test_a_check_that_never_returns_is_stopped_and_grading_goes_on(loop_in_check_run):
    out, s = loop_in_check_run
    by_id = {o.id: o for o in s.outcomes}
    assert by_id["ch01-1.1"].status == "timeout" and "15 s limit" in by_id["ch01-1.1"].line
    assert [by_id[i].score for i in IDS[1:]] == [2, 1, 2]
    assert by_id["ch01-1.3-hidden"].score == 1  # the instructor's extra check ran
    gradescope = json.loads((out / "results.json").read_text(encoding="utf8"))
    assert gradescope["score"] == 6
    assert {"name", "score", "max_score", "output"} <= set(gradescope["tests"][0])
    assert sum(t["max_score"] for t in gradescope["tests"]) == 8


# ------------------------------------------------------------------ the command line
def test_cli_exit_status_and_unreadable_submissions(tmp_path, capsys):
    """A broken submission is reported, not fatal: exit status 0; a usage error is 2.
    No kernel starts (neither is a notebook of an assignment), so this runs in-process."""
    (tmp_path / "garbage.ipynb").write_text("not json", encoding="utf8")
    other = nbformat.v4.new_notebook()
    other.cells = [nbformat.v4.new_code_cell("print('hello')")]
    fx.write(other, tmp_path / "homework.ipynb")
    assert cli.main(["grade", str(tmp_path / "garbage.ipynb"), str(tmp_path / "homework.ipynb"),
                     "--out", str(tmp_path / "out")]) == 0
    rows = _rows(tmp_path / "out")
    assert rows["garbage"]["status"] == "unreadable"
    assert rows["homework"]["status"] == "unknown assignment"
    assert "grading runs the students' code" in capsys.readouterr().err
    assert cli.main(["grade", str(tmp_path), "--reference", str(tmp_path / "missing")]) == 2
    assert "reference notebooks not found" in capsys.readouterr().err


# ------------------------------------------------------------------ units (no kernel)
def test_references_hold_every_graded_check():
    refs = load_references()
    assert [g.id for g in refs["ch01_exercises"].graded] == IDS
    assert {g.id: g.points for g in refs["ch01_exercises"].graded} == POINTS
    from bigramlab import checks
    for a in refs.values():
        for g in a.graded:
            assert callable(getattr(checks, g.check)), g


def test_identify_by_ids_then_file_name():
    refs = load_references()
    nb = fx.student()
    assert identify(nb, "anything.ipynb", refs)[0].name == "ch01_exercises"
    bare = nbformat.v4.new_notebook()
    assert identify(bare, "alice_ch02_exercises.ipynb", refs)[0].name == "ch02_exercises"
    assert identify(bare, "homework.ipynb", refs)[0] is None
    assert identify(bare, "x.ipynb", refs, forced="ch03_exercises")[0].name == "ch03_exercises"
    moved = fx.student()
    moved.cells = moved.cells[::-1]
    cells = find_cells(moved, refs["ch01_exercises"])
    assert sorted(cells) == IDS and cells["ch01-1.4"] < cells["ch01-1.1"]


def test_badge_line():
    meta = {"difficulty": 2, "importance": 4, "minutes": 15,
            "graded": [{"points": 1}, {"points": 1.5}]}
    assert badge(meta) == ("> **Difficulty** 🔴🔴⚪⚪⚪ · **Importance** 🔵🔵🔵🔵⚪ · "
                           "about 15 minutes · 2.5 points")


def test_labels_are_unique_folder_names(tmp_path):
    paths = [tmp_path / "alice" / "ch01_exercises.ipynb", tmp_path / "bob" / "ch01_exercises.ipynb",
             tmp_path / "bob" / "ch01_exercises.ipynb"]
    assert labels(paths) == ["alice__ch01_exercises", "bob__ch01_exercises",
                             "bob__ch01_exercises-2"]


def test_csv_for_a_submission_that_never_ran(tmp_path):
    refs = load_references()
    s = Submission(Path("x.ipynb"), "x", refs["ch01_exercises"], status="unreadable")
    s.outcomes = [Outcome("ch01-1.1", "ch01-1.1", "not run", "✗ not graded", 0.0, 2.0)]
    write_csv([s], tmp_path / "g.csv")
    rows = list(csv.reader(open(tmp_path / "g.csv", encoding="utf8")))
    assert rows[2] == ["x.ipynb", "0", "", "", "", "0", "7", "0.0000", "unreadable"]


def test_package_files_rewritten_on_disk_are_found_and_restored(tmp_path):
    root = tmp_path / "bigramlab"
    for p in (ROOT / "bigramlab").rglob("*.py"):
        (root / p.relative_to(ROOT / "bigramlab")).parent.mkdir(parents=True, exist_ok=True)
        (root / p.relative_to(ROOT / "bigramlab")).write_text(p.read_text(encoding="utf8"))
    sources = package_sources(root)
    assert "bigramlab.checks.ch01" in sources and sources["bigramlab.checks"][2] is True
    target = root / "checks" / "ch01.py"
    target.write_text("def check_count_bigrams(f):\n    return True\n")
    (root / "checks" / "_core.py").unlink()
    assert sorted(changed_files(sources)) == sorted([target, root / "checks" / "_core.py"])
    restore(sources, changed_files(sources))
    assert changed_files(sources) == []
