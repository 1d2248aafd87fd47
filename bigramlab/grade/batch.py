"""Grade a class of submissions: ``bigramlab grade SUBMISSION... --out DIR``.

The checks run in the grader's own process (``judge``), never in a student's
kernel. Before any student code runs, the grader reads bigramlab's sources into
memory, and after each submission the files on disk are compared with them (a
notebook that rewrote them is scored 0 and the files are put back, so that the
next student's kernel is not affected).
Each submission then runs on a copy in its own temporary folder (``runner``),
one after another or ``jobs`` at a time, and the reports are written
(``reports``). A submission that fails in any way gets its reason in the
reports; only a failure of the grader itself makes the exit status non-zero.
For instructors: no chapter teaches it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import runpy
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from .assignments import Assignment, load_references, parse_graded, identify
from .reports import write_reports
from .runner import Limits, Run, Submission

PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def package_sources(root: Path = PACKAGE_ROOT) -> dict[str, tuple[str, str, bool]]:
    """module name -> (file, source, is a package) for every module of bigramlab."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = ["bigramlab", *path.relative_to(root).with_suffix("").parts]
        is_package = parts[-1] == "__init__"
        name = ".".join(parts[:-1] if is_package else parts)
        out[name] = (str(path), path.read_text(encoding="utf8"), is_package)
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf8")).hexdigest()


def changed_files(sources: dict) -> list[Path]:
    """bigramlab's files that no longer hold the snapshot's text (or are gone)."""
    bad = []
    for filename, text, _ in sources.values():
        path = Path(filename)
        try:
            same = _digest(path.read_text(encoding="utf8")) == _digest(text)
        except (OSError, UnicodeDecodeError):
            same = False
        if not same:
            bad.append(path)
    return bad


def restore(sources: dict, paths: list[Path]) -> None:
    texts = {Path(f): t for f, t, _ in sources.values()}
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(texts[path], encoding="utf8")


def load_extra(path: Path, references: dict[str, Assignment]) -> tuple[dict, dict]:
    """An instructor's extra checks: a Python file with the check functions and
    ``EXERCISES = [{"assignment": "ch01_exercises", "id": ..., "check": ..., "args": [...],
    "points": ...}, ...]``. Returns (what the kernel needs, assignment -> extra checks)."""
    namespace = runpy.run_path(str(path))
    entries = namespace.get("EXERCISES")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: define EXERCISES, a list of the extra checks "
                         "(assignment, id, check, args, points)")
    extra: dict[str, list] = {}
    for entry in entries:
        entry = dict(entry)
        name = entry.pop("assignment", None)
        if name not in references:
            raise ValueError(f"{path}: assignment {name!r} is not one of {sorted(references)}")
        g = parse_graded(entry, str(path), source="extra")
        if not callable(namespace.get(g.check)):
            raise ValueError(f"{path}: {g.id} names {g.check}, which the file does not define")
        if g.id in references[name].cells or g.id in {x.id for x in extra.get(name, [])}:
            raise ValueError(f"{path}: id {g.id} is already used")
        extra.setdefault(name, []).append(g)
    return {k: v for k, v in namespace.items() if callable(v)}, extra


def expand(paths: list[Path]) -> list[Path]:
    """Submissions: notebooks, and the notebooks inside folders (checkpoints left out)."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.ipynb") if ".ipynb_checkpoints" not in q.parts)
        else:
            out.append(p)
    return out


def labels(paths: list[Path]) -> list[str]:
    """A unique folder name per submission: its path below the common folder."""
    resolved = [p.resolve() for p in paths]
    parents = [p.parent for p in resolved]
    common = Path(os.path.commonpath([str(p) for p in parents])) if parents else Path()
    out, seen = [], set()
    for p in resolved:
        try:
            rel = p.relative_to(common).with_suffix("")
        except ValueError:
            rel = Path(p.stem)
        base = "__".join(rel.parts) or p.stem
        label, n = base, 1
        while label in seen:
            n += 1
            label = f"{base}-{n}"
        seen.add(label)
        out.append(label)
    return out


def grade_one(path: Path, label: str, references: dict[str, Assignment], limits: Limits,
              extra: dict | None = None,
              forced: str | None = None) -> Submission:
    sub = Submission(path, label)
    start = time.monotonic()
    try:
        try:
            nb = nbformat.read(path, as_version=4)
        except Exception as e:  # not JSON, not a notebook: say so and go on
            sub.status, sub.reason = "unreadable", f"not a readable notebook ({type(e).__name__})"
            return sub
        sub.assignment, sub.how = identify(nb, path.name, references, forced)
        if sub.assignment is None:
            sub.status, sub.reason = "unknown assignment", sub.how
            return sub
        Run(sub, nb, limits, extra).execute(sub.assignment)
    except Exception as e:  # the grader failed on this one: report it, go on, exit non-zero
        sub.status, sub.reason = "grader error", f"{type(e).__name__}: {e}"
        sub.traceback = traceback.format_exc()
        sub.outcomes = []
    finally:
        sub.seconds = time.monotonic() - start
    return sub


def grade(paths: list[Path], out: Path, reference: list[Path] | None = None,
          assignment: str | None = None, extra: Path | None = None,
          limits: Limits | None = None, jobs: int = 1, log=None) -> list[Submission]:
    """Grade every submission in ``paths`` and write the reports under ``out``."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    limits = limits or Limits()
    sources = package_sources()
    references = load_references(reference)
    extra_kernel = None
    if extra is not None:
        extra_kernel, added = load_extra(Path(extra), references)
        references = {name: dataclasses.replace(a, graded=a.graded + added.get(name, []))
                      for name, a in references.items()}
    paths = expand(paths)
    names = labels(paths)
    log(f"bigramlab grade: {len(paths)} submission(s); grading runs the students' code: "
        "use a container for work you do not trust")

    def one(i: int) -> Submission:
        sub = grade_one(paths[i], names[i], references, limits, extra_kernel,
                        assignment)
        tampered = changed_files(sources)
        if tampered:
            restore(sources, tampered)
            sub.status = "tampered"
            sub.reason = f"the notebook changed bigramlab's files ({tampered[0].name}); restored"
            for o in sub.outcomes:
                o.score = 0.0
        if sub.traceback:
            log(sub.traceback)
        log(f"[{i + 1}/{len(paths)}] {paths[i]}: {sub.score:g} / {sub.possible:g} "
            f"({sub.status}{': ' + sub.reason if sub.reason else ''}) in {sub.seconds:.0f} s")
        return sub

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        subs = list(pool.map(one, range(len(paths))))
    table = write_reports(subs, Path(out))
    log(f"wrote {table} and a results.json and feedback.md per submission under {out}")
    return subs
