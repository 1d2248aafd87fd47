"""What an assignment grades: the exercise metadata in the notebooks' cells.

Every code cell that holds a graded exercise carries, under its ``bigramlab`` key,
the exercise's number, its ARENA-style difficulty and importance (1 to 5) and
expected minutes, and the checks that grade it, each with a stable id, the check
to call (a name in ``bigramlab.checks``, or in an ``--extra`` file) and the names
of the student's objects it takes (``@name``: an object the grader makes, such as
the profile's tokenizer)::

    bigramlab:
      exercise: '1.1'
      difficulty: 2
      importance: 5
      minutes: 20
      graded:
      - {id: ch01-1.1, check: check_count_bigrams, args: [count_bigrams], points: 2}

The solutions carry it (the single source), ``tools/make_exercises.py`` copies it
to the exercises, and the grader reads it from the instructor's reference copy,
never from the submission (a student could edit it). The submission's cells are
matched to it by the cell's metadata, not by position. For instructors: no chapter teaches it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

KEY = "bigramlab"
ID_RE = re.compile(r"^ch\d\d-\d+\.\d+[a-z]?(-[a-z0-9-]+)?$")
NAME_RE = re.compile(r"^@?[A-Za-z_][A-Za-z0-9_]*$")
#: Objects the grader makes itself and passes where an argument is ``@name``.
FIXTURES = {"@tokenizer": "the tiny profile's tokenizer"}
#: Where the reference notebooks live in a clone of the course repository.
DEFAULT_REFERENCE = Path(__file__).resolve().parents[2] / "exercises"


class ExerciseMetadataError(ValueError):
    """Exercise metadata that is missing, malformed or inconsistent."""


@dataclass(frozen=True)
class Graded:
    """One graded check: stable id, check name, argument names and points."""

    id: str
    check: str
    args: tuple[str, ...]
    points: float
    exercise: str = ""
    source: str = "checks"  # "checks" (bigramlab.checks) or "extra" (an --extra file)


@dataclass
class Assignment:
    """One exercise notebook's graded checks, in notebook order."""

    name: str                      # the notebook's stem, e.g. "ch01_exercises"
    path: Path | None
    graded: list[Graded] = field(default_factory=list)
    cells: dict[str, str] = field(default_factory=dict)   # graded id -> reference cell id

    @property
    def possible(self) -> float:
        return sum(g.points for g in self.graded)

    @property
    def chapter(self) -> str:
        return self.name.split("_")[0]


def _fail(where: str, what: str) -> ExerciseMetadataError:
    return ExerciseMetadataError(f"{where}: {what}")


def _level(meta: dict, key: str, where: str) -> int:
    value = meta.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 5:
        raise _fail(where, f"'{key}' must be a whole number from 1 to 5, got {value!r}")
    return value


def parse_cell(meta: dict, where: str, source: str = "checks") -> list[Graded]:
    """The graded checks of one cell's ``bigramlab`` metadata, validated."""
    if not isinstance(meta, dict):
        raise _fail(where, f"'{KEY}' metadata must be a mapping, got {type(meta).__name__}")
    exercise = str(meta.get("exercise", ""))
    if not re.fullmatch(r"\d+\.\d+", exercise):
        raise _fail(where, f"'exercise' must be a number like '1.1', got {meta.get('exercise')!r}")
    for key in ("difficulty", "importance"):
        _level(meta, key, where)
    minutes = meta.get("minutes")
    if not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
        raise _fail(where, f"'minutes' must be a positive whole number, got {minutes!r}")
    entries = meta.get("graded")
    if not isinstance(entries, list) or not entries:
        raise _fail(where, "'graded' must list at least one check")
    return [parse_graded(e, where, exercise, source) for e in entries]


def parse_graded(entry: dict, where: str, exercise: str = "", source: str = "checks") -> Graded:
    if not isinstance(entry, dict):
        raise _fail(where, f"each graded check is a mapping, got {entry!r}")
    unknown = set(entry) - {"id", "check", "args", "points"}
    if unknown:
        raise _fail(where, f"unknown keys {sorted(unknown)} (use id, check, args, points)")
    gid, check, args, points = (entry.get(k) for k in ("id", "check", "args", "points"))
    if not isinstance(gid, str) or not ID_RE.match(gid):
        raise _fail(where, f"id must look like 'ch01-1.1' (chapter, exercise), got {gid!r}")
    if not isinstance(check, str) or not check.isidentifier():
        raise _fail(where, f"{gid}: 'check' must name a check function, got {check!r}")
    if not isinstance(args, list) or not all(isinstance(a, str) and NAME_RE.match(a)
                                             for a in args):
        raise _fail(where, f"{gid}: 'args' must list the names of the student's objects the "
                           f"check takes, got {args!r}")
    for a in args:
        if a.startswith("@") and a not in FIXTURES:
            raise _fail(where, f"{gid}: unknown grader object {a!r}; use one of {sorted(FIXTURES)}")
    if not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0:
        raise _fail(where, f"{gid}: 'points' must be a positive number, got {points!r}")
    return Graded(gid, check, tuple(args), float(points), exercise, source)


def read_assignment(nb, name: str, path: Path | None = None) -> Assignment:
    """The graded checks of a notebook (a solution or exercise notebook)."""
    out = Assignment(name, path)
    for index, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get(KEY)
        if meta is None:
            continue
        where = f"{path or name}, cell {index}"
        if cell.cell_type != "code":
            raise _fail(where, f"'{KEY}' metadata belongs on the exercise's code cell")
        for g in parse_cell(meta, where):
            if g.id in out.cells:
                raise _fail(where, f"id {g.id} is used twice")
            if not g.id.startswith(out.chapter + "-") and out.chapter.startswith("ch"):
                raise _fail(where, f"id {g.id} does not start with the notebook's chapter "
                                   f"'{out.chapter}-'")
            out.graded.append(g)
            out.cells[g.id] = cell.get("id", "")
    return out


def load_references(paths: list[Path] | None = None) -> dict[str, Assignment]:
    """Every assignment in the reference notebooks (files, or folders of ``*.ipynb``),
    by name; only notebooks that carry graded metadata count."""
    found: dict[str, Assignment] = {}
    for p in paths or [DEFAULT_REFERENCE]:
        p = Path(p)
        if not p.exists():
            raise FileNotFoundError(
                f"reference notebooks not found at {p}: pass --reference with the course's "
                "exercises/ folder (or the solutions/ folder)")
        for nb_path in sorted(p.glob("*.ipynb")) if p.is_dir() else [p]:
            a = read_assignment(nbformat.read(nb_path, as_version=4), nb_path.stem, nb_path)
            if a.graded:
                found[a.name] = a
    if not found:
        raise ExerciseMetadataError(f"no graded exercises in {[str(p) for p in paths or []]}")
    return found


def identify(nb, filename: str, references: dict[str, Assignment],
             forced: str | None = None) -> tuple[Assignment | None, str]:
    """Which assignment a submission answers, and how that was decided.

    ``forced`` (``--assignment``) wins; else the graded ids its cells carry (most of
    them); else a reference name in its file name. (None, reason) when none fits."""
    if forced:
        if forced in references:
            return references[forced], "given by --assignment"
        return None, f"--assignment {forced!r} is not one of {sorted(references)}"
    votes: dict[str, int] = {}
    for cell in getattr(nb, "cells", []):
        meta = cell.get("metadata", {}).get(KEY) if isinstance(cell, dict) else None
        for entry in (meta or {}).get("graded", []) if isinstance(meta, dict) else []:
            gid = entry.get("id") if isinstance(entry, dict) else None
            for name, a in references.items():
                if gid in a.cells:
                    votes[name] = votes.get(name, 0) + 1
    if votes:
        best = max(votes, key=lambda n: (votes[n], n))
        return references[best], "from the exercise ids in its cells"
    stem = Path(filename).stem
    for name in sorted(references, key=len, reverse=True):
        if name in stem:
            return references[name], "from its file name"
    return None, ("no exercise cell of any reference notebook found in it, and its file name "
                  f"names none of {sorted(references)}: pass --assignment")


def find_cells(nb, assignment: Assignment) -> dict[str, int]:
    """graded id -> index of the submission's cell that carries it (by metadata)."""
    out: dict[str, int] = {}
    for index, cell in enumerate(getattr(nb, "cells", [])):
        meta = cell.get("metadata", {}).get(KEY) if isinstance(cell, dict) else None
        if not isinstance(meta, dict):
            continue
        for entry in meta.get("graded", []) if isinstance(meta.get("graded"), list) else []:
            gid = entry.get("id") if isinstance(entry, dict) else None
            if gid in assignment.cells and gid not in out:
                out[gid] = index
    return out


def badge(meta: dict) -> str:
    """The line shown under an exercise's heading, ARENA style, from its metadata."""
    def dots(n: int, full: str) -> str:
        return full * n + "⚪" * (5 - n)
    points = sum(float(e["points"]) for e in meta["graded"])
    shown = f"{points:g} point" + ("" if points == 1 else "s")
    return (f"> **Difficulty** {dots(meta['difficulty'], '🔴')} · **Importance** "
            f"{dots(meta['importance'], '🔵')} · about {meta['minutes']} minutes · {shown}")
