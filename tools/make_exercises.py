#!/usr/bin/env python
"""Generate the student notebooks in ``exercises/`` from ``solutions/``.

``solutions/`` is the single source: every ``solutions/<name>.ipynb`` becomes
``exercises/<name>.ipynb`` plus its jupytext twin ``exercises/<name>.md``
(MyST), with the solution code taken out:

* In code cells, everything from a line ``# BEGIN SOLUTION`` to the matching
  line ``# END SOLUTION`` (both inclusive, any indentation) is replaced by one
  line ``pass  # YOUR CODE HERE`` at the indentation of the BEGIN line, so a
  function body stays valid Python and the stub returns ``None`` (the checks
  in ``bigramlab.checks`` report "not implemented yet" when they get ``None``).
* A code cell tagged ``solution`` has its whole source replaced by
  ``# YOUR CODE HERE`` (and loses that tag).
* A markdown (or raw) cell tagged ``solution-only`` is dropped.
* Every code cell loses its outputs and execution count.
* A markdown cell at the top says the file is generated and how to change it, for
  maintainers: it is tagged ``remove-cell``, so the book's page opens with the title.
* Exercise metadata (a code cell's ``bigramlab`` key: the exercise's number,
  difficulty, importance, minutes and its graded checks with stable ids and
  points; see ``bigramlab/grade/assignments.py``) is validated and copied as it
  is, so ``bigramlab grade`` finds a student's exercises by id, not position.
  A solution fails to generate when the metadata is malformed, when a graded
  check is not called in its cell, when an object it takes is not defined
  there, or when the badge line under the exercise's heading disagrees with it.

Everything else (signatures, docstrings, hints, checks, notebook metadata such
as kernelspec, jupytext formats and Colab settings) is kept.

Usage::

    python tools/make_exercises.py           # (re)write exercises/
    python tools/make_exercises.py --check   # exit 1 and name stale files; write nothing

The output is deterministic (JSON as ``nbformat`` writes it, MyST as
``jupytext`` writes it), so ``--check`` and ``tests/book/test_sync.py`` can compare
the files byte for byte.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS_DIR = ROOT / "solutions"
EXERCISES_DIR = ROOT / "exercises"

BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)#\s*BEGIN SOLUTION\b.*$")
END_RE = re.compile(r"^[ \t]*#\s*END SOLUTION\b.*$")
#: Used by the tests: no exercise notebook may contain a line matching this.
MARKER_RE = re.compile(r"^[ \t]*#\s*(BEGIN|END) SOLUTION\b", re.MULTILINE)

STUB_LINE = "pass  # YOUR CODE HERE"
STUB_CELL = "# YOUR CODE HERE"
TAG_SOLUTION = "solution"
TAG_SOLUTION_ONLY = "solution-only"
NOTE_CELL_ID = "generated-exercise-note"
#: Jupyter Book leaves cells with this tag off the page (the note is for maintainers).
NOTE_TAGS = ["remove-cell"]
MD_FORMAT = "md:myst"
JUPYTEXT_FORMATS = "ipynb,md:myst"
#: Notebook-level metadata that is output-like and not carried over.
DROPPED_NB_METADATA = ("widgets",)
#: Cell-level metadata that is output-like and not carried over.
DROPPED_CELL_METADATA = ("execution", "collapsed", "scrolled")


class SolutionMarkerError(ValueError):
    """BEGIN/END SOLUTION markers that do not pair up."""


def _load_assignments():
    """``bigramlab/grade/assignments.py`` by path: it imports nothing from bigramlab, so the
    generator stays as light as it was (no torch)."""
    name = "bigramlab_grade_assignments"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, ROOT / "bigramlab" / "grade" / "assignments.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


assignments = _load_assignments()
ExerciseMetadataError = assignments.ExerciseMetadataError
HEADING_RE = re.compile(r"^## Exercise (\d+\.\d+)\b")


def check_exercise_metadata(nb, solution_rel: str) -> None:
    """Raise ExerciseMetadataError naming the cell and the fix when a solution's
    exercise metadata is malformed or disagrees with the cell or its heading."""
    stem = Path(solution_rel).stem
    assignments.read_assignment(nb, stem, solution_rel)  # shapes, ids, points
    badges = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            lines = cell.source.split("\n")
            for k, line in enumerate(lines):
                m = HEADING_RE.match(line)
                if m:
                    badges[m.group(1)] = (index, lines[k + 2] if len(lines) > k + 2 else "")
        meta = cell.get("metadata", {}).get(assignments.KEY)
        if meta is None:
            continue
        where = f"{solution_rel}, cell {index}"
        for g in assignments.parse_cell(meta, where):
            if not re.search(rf"\bchecks\.{g.check}\(", cell.source):
                raise ExerciseMetadataError(
                    f"{where}: {g.id} names {g.check}, which the cell never calls: "
                    f"call checks.{g.check}(...) there or fix the metadata")
            for arg in g.args:
                if not arg.startswith("@") and not re.search(
                        rf"^(def|class)\s+{arg}\b|^{arg}\s*=", cell.source, re.MULTILINE):
                    raise ExerciseMetadataError(
                        f"{where}: {g.id} grades `{arg}`, which the cell does not define")
        want = assignments.badge(meta)
        got = badges.get(meta["exercise"])
        if got is None or got[1] != want:
            raise ExerciseMetadataError(
                f"{where}: the heading '## Exercise {meta['exercise']}' must be followed by a "
                f"blank line and the badge line made from the metadata:\n{want}")


def note_text(solution_rel: str) -> str:
    """The markdown at the top of every generated exercise notebook (not on the book's page)."""
    return (
        f"> **For maintainers: generated file, do not edit.** This notebook is generated from "
        f"`{solution_rel}` by `tools/make_exercises.py`. To change it, edit the "
        f"solution notebook and run `python tools/make_exercises.py`."
    )


def strip_solution_source(source: str, where: str = "cell") -> str:
    """Replace each ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block by a stub.

    The stub is ``pass  # YOUR CODE HERE`` indented like the BEGIN line.
    Raises :class:`SolutionMarkerError` (naming ``where``) on a BEGIN without
    END, an END without BEGIN, or nested BEGINs.
    """
    out: list[str] = []
    in_block = False
    begin_line = 0
    for lineno, line in enumerate(source.split("\n"), start=1):
        begin = BEGIN_RE.match(line)
        if begin:
            if in_block:
                raise SolutionMarkerError(
                    f"{where}: line {lineno}: '# BEGIN SOLUTION' inside the block opened "
                    f"on line {begin_line}; close it with '# END SOLUTION' first"
                )
            in_block, begin_line = True, lineno
            out.append(begin.group("indent") + STUB_LINE)
            continue
        if END_RE.match(line):
            if not in_block:
                raise SolutionMarkerError(
                    f"{where}: line {lineno}: '# END SOLUTION' without a '# BEGIN SOLUTION' above it"
                )
            in_block = False
            continue
        if not in_block:
            out.append(line)
    if in_block:
        raise SolutionMarkerError(
            f"{where}: line {begin_line}: '# BEGIN SOLUTION' is never closed by '# END SOLUTION'"
        )
    return "\n".join(out)


def _tags(cell) -> list:
    return list(cell.get("metadata", {}).get("tags", []))


def make_exercise(solution_nb, solution_rel: str = "solutions/notebook.ipynb"):
    """Return the exercise notebook generated from ``solution_nb`` (not modified).

    ``solution_rel`` is the solution's path relative to the repository root; it
    is named in the note cell and in error messages.
    """
    check_exercise_metadata(solution_nb, solution_rel)
    nb = copy.deepcopy(solution_nb)
    for key in DROPPED_NB_METADATA:
        nb.metadata.pop(key, None)
    nb.metadata.setdefault("jupytext", {})
    nb.metadata["jupytext"].setdefault("formats", JUPYTEXT_FORMATS)
    has_ids = (nb.nbformat, nb.nbformat_minor) >= (4, 5)

    cells = []
    for index, cell in enumerate(nb.cells):
        tags = _tags(cell)
        if cell.cell_type != "code" and TAG_SOLUTION_ONLY in tags:
            continue
        for key in DROPPED_CELL_METADATA:
            cell.metadata.pop(key, None)
        if cell.cell_type == "code":
            if TAG_SOLUTION in tags:
                cell.source = STUB_CELL
                # The tag marks solution code, like the markers: it goes with it.
                rest = [t for t in tags if t != TAG_SOLUTION]
                if rest:
                    cell.metadata["tags"] = rest
                else:
                    cell.metadata.pop("tags", None)
            else:
                cell.source = strip_solution_source(
                    cell.source, where=f"{solution_rel}, cell {index}"
                )
            cell.outputs = []
            cell.execution_count = None
        else:
            cell.pop("outputs", None)
            cell.pop("execution_count", None)
        if has_ids and not cell.get("id"):
            cell["id"] = f"cell-{index}"  # deterministic, unlike nbformat's random ids
        cells.append(cell)

    note = nbformat.v4.new_markdown_cell(note_text(solution_rel),
                                         metadata={"tags": list(NOTE_TAGS)})
    if has_ids:
        note["id"] = NOTE_CELL_ID
    else:
        note.pop("id", None)
    nb.cells = [note] + cells
    return nb


def render_ipynb(nb) -> str:
    """The exact text ``nbformat.write`` puts in a file."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def render_md(nb) -> str:
    """The MyST twin, as ``jupytext`` writes it."""
    import jupytext

    text = jupytext.writes(nb, fmt=MD_FORMAT)
    return text if text.endswith("\n") else text + "\n"


#: The one line of a MyST twin that says which jupytext wrote it, not what it holds.
_WRITER_VERSION = re.compile(r"^    jupytext_version: .*$\n", re.M)


def content(text: str) -> str:
    """``text`` less the jupytext version that wrote it: exercises match their
    solutions whichever jupytext release pip installs (the sync checks compare this)."""
    return _WRITER_VERSION.sub("", text)


def solution_notebooks(solutions_dir: Path = SOLUTIONS_DIR) -> list[Path]:
    return sorted(solutions_dir.glob("*.ipynb"))


def expected_exercises(
    solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR
) -> dict[Path, str]:
    """Map each file exercises/ should hold to the exact text it should hold."""
    root = solutions_dir.parent
    expected: dict[Path, str] = {}
    for src in solution_notebooks(solutions_dir):
        rel = src.relative_to(root).as_posix() if src.is_relative_to(root) else src.name
        solution_nb = nbformat.read(src, as_version=4)
        exercise_nb = make_exercise(solution_nb, rel)
        expected[exercises_dir / f"{src.stem}.ipynb"] = render_ipynb(exercise_nb)
        expected[exercises_dir / f"{src.stem}.md"] = render_md(exercise_nb)
    return expected


def orphan_exercises(expected: dict[Path, str], exercises_dir: Path = EXERCISES_DIR) -> list[Path]:
    """Notebooks (and twins) in exercises/ that no solution generates."""
    present = sorted([*exercises_dir.glob("*.ipynb"), *exercises_dir.glob("*.md")])
    return [p for p in present if p not in expected]


def stale_files(
    solutions_dir: Path = SOLUTIONS_DIR, exercises_dir: Path = EXERCISES_DIR
) -> list[tuple[Path, str]]:
    """(path, reason) for every exercises/ file that differs from what is generated."""
    expected = expected_exercises(solutions_dir, exercises_dir)
    stale = []
    for path, text in expected.items():
        if not path.exists():
            stale.append((path, "missing"))
        elif content(path.read_text(encoding="utf8")) != content(text):
            stale.append((path, "differs from its solution"))
    for path in orphan_exercises(expected, exercises_dir):
        stale.append((path, "no solutions/ notebook generates it"))
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 and name the exercises/ files that are out of date",
    )
    args = parser.parse_args(argv)

    def show(path: Path) -> str:
        return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else str(path)

    try:
        if args.check:
            stale = stale_files()
            if stale:
                for path, reason in stale:
                    print(f"{show(path)}: {reason}", file=sys.stderr)
                print(
                    "exercises/ is out of date: run `python tools/make_exercises.py`",
                    file=sys.stderr,
                )
                return 1
            print(f"exercises/ is up to date ({len(solution_notebooks())} notebooks)")
            return 0

        expected = expected_exercises()
        EXERCISES_DIR.mkdir(exist_ok=True)
        for path in orphan_exercises(expected):
            path.unlink()
            print(f"removed {show(path)} (no solutions/ notebook generates it)")
        for path, text in expected.items():
            if path.exists() and path.read_text(encoding="utf8") == text:
                continue
            path.write_text(text, encoding="utf8")
            print(f"wrote {show(path)}")
        print(f"exercises/ is up to date ({len(solution_notebooks())} notebooks)")
        return 0
    except (SolutionMarkerError, ExerciseMetadataError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
