"""What ``bigramlab grade`` writes: the class table, Gradescope results, feedback.

- ``grades.csv``: otter-grader's ``final_grades.csv`` layout: a ``file`` column,
  one column per graded check (its stable id), then ``total``, ``possible``,
  ``percent_correct`` (a fraction, as otter writes it) and ``status``; the first
  row, ``points-per-question``, holds each check's points.
- ``<label>/results.json``: Gradescope's autograder format (``score``, and
  ``tests`` with ``name``, ``score``, ``max_score``, ``output``); with a single
  submission also ``results.json`` at the top, where Gradescope reads it.
- ``<label>/feedback.md``: the student's score, each check's line and the cells
  that raised; ``<label>/executed.ipynb``: the notebook as it ran.

For instructors: no chapter teaches it.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat

from .runner import Submission

POINTS_ROW = "points-per-question"


def _num(x: float) -> str:
    return f"{x:g}"


def columns(subs: list[Submission]) -> list[tuple[str, float]]:
    """(graded id, points) of every check any submission was graded on, in order."""
    seen: dict[str, float] = {}
    for s in subs:
        for g in s.assignment.graded if s.assignment else []:
            seen.setdefault(g.id, g.points)
    return list(seen.items())


def write_csv(subs: list[Submission], path: Path) -> None:
    cols = columns(subs)
    with open(path, "w", newline="", encoding="utf8") as f:
        w = csv.writer(f)
        w.writerow(["file", *(c for c, _ in cols), "total", "possible", "percent_correct",
                    "status"])
        possible = sum(p for _, p in cols)
        w.writerow([POINTS_ROW, *(_num(p) for _, p in cols), _num(possible), _num(possible),
                    "", ""])
        for s in subs:
            scores = {o.id: o.score for o in s.outcomes}
            pct = f"{s.score / s.possible:.4f}" if s.possible else ""
            w.writerow([str(s.path), *(_num(scores[c]) if c in scores else "" for c, _ in cols),
                        _num(s.score), _num(s.possible), pct, s.status])


def results_json(s: Submission) -> dict:
    tests = [{"name": f"{o.id}: {o.name}" if o.name != o.id else o.id,
              "score": o.score, "max_score": o.max_score, "output": o.line,
              "status": "passed" if o.score == o.max_score and o.max_score > 0 else "failed",
              "visibility": "visible"} for o in s.outcomes]
    summary = f"{_num(s.score)} / {_num(s.possible)} points; status: {s.status}"
    if s.reason:
        summary += f" ({s.reason})"
    if s.cell_errors:
        summary += "\ncells that raised:\n" + "\n".join(s.cell_errors)
    return {"score": s.score, "output": summary, "execution_time": round(s.seconds, 1),
            "stdout_visibility": "hidden", "tests": tests}


def feedback(s: Submission) -> str:
    name = s.assignment.name if s.assignment else "unknown assignment"
    pct = f" ({100 * s.score / s.possible:.0f}%)" if s.possible else ""
    lines = [f"# Feedback: {name}", "", f"Submission: `{s.path.name}`  ",
             f"Score: {_num(s.score)} / {_num(s.possible)}{pct}  ", f"Status: {s.status}"]
    if s.reason:
        lines += ["", f"**Why:** {s.reason}."]
    if s.outcomes:
        lines += ["", "## Checks", ""]
        for o in s.outcomes:
            where = f" (cell {o.cell})" if o.cell is not None else " (its cell was not found)"
            lines.append(f"- {o.line} — {_num(o.score)} / {_num(o.max_score)}{where}")
    if s.cell_errors:
        lines += ["", "## Cells that raised or were stopped", ""]
        lines += [f"- {e}" for e in s.cell_errors]
    lines += ["", "The grader ran your notebook from top to bottom in a fresh kernel and called "
                  "the course's checks on your functions itself; what the notebook printed does "
                  "not count.", ""]
    return "\n".join(lines)


def write_reports(subs: list[Submission], out: Path) -> Path:
    """Write every report under ``out``; return the class table's path."""
    out.mkdir(parents=True, exist_ok=True)
    for s in subs:
        folder = out / s.label
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(results_json(s), indent=2,
                                                        ensure_ascii=False) + "\n",
                                             encoding="utf8")
        (folder / "feedback.md").write_text(feedback(s), encoding="utf8")
        if s.executed is not None:
            try:
                nbformat.write(s.executed, folder / "executed.ipynb")
            except Exception as e:  # a student's malformed notebook must not stop the reports
                (folder / "executed.txt").write_text(
                    f"the executed notebook could not be written: {type(e).__name__}: {e}\n",
                    encoding="utf8")
    if len(subs) == 1:
        (out / "results.json").write_text(json.dumps(results_json(subs[0]), indent=2,
                                                     ensure_ascii=False) + "\n",
                                          encoding="utf8")
    table = out / "grades.csv"
    write_csv(subs, table)
    return table
