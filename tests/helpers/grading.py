"""Student submissions for the grader's tests and benchmark, made from the course's
own notebooks (none is stored): a student starts from the generated exercise
notebook and fills in some stubs with the solution's code (right), with a
plausible mistake (wrong) or not at all (blank), and may add, delete or reorder
cells, or try to fool the grader."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat

from tests.helpers import ROOT

MARKER = re.compile(r"^[ \t]*#\s*(BEGIN|END) SOLUTION\b.*\n?", re.MULTILINE)

#: Plausible wrong answers of Chapter 1, as a student's whole exercise cell.
WRONG_CH01 = {
    "ch01-1.2": '''def bigram_probs(counts):
    c = counts.double()
    V = c.shape[1]
    total = c.sum(1, keepdim=True)
    return torch.where(total > 0, c / total.clamp(min=1), torch.full_like(c, 1 / V))


checks.check_bigram_probs(bigram_probs)''',
    "ch01-1.1": '''def count_bigrams(sequences, vocab_size):
    V = vocab_size
    return torch.zeros(V + 1, V, dtype=torch.int64)  # the right shape, no counts


checks.check_count_bigrams(count_bigrams)''',
}


def exercise_nb(chapter: str = "ch01"):
    return nbformat.read(ROOT / "exercises" / f"{chapter}_exercises.ipynb", as_version=4)


def solved_sources(chapter: str = "ch01") -> dict[str, str]:
    """cell id -> the solution cell's source without its markers (the right answer)."""
    nb = nbformat.read(ROOT / "solutions" / f"{chapter}_exercises.ipynb", as_version=4)
    return {c.id: MARKER.sub("", c.source) for c in nb.cells if c.cell_type == "code"}


def graded_ids(cell) -> list[str]:
    meta = cell.get("metadata", {}).get("bigramlab")
    return [g["id"] for g in meta["graded"]] if meta else []


def student(chapter: str = "ch01", right=(), wrong: dict | None = None, trim: bool = False):
    """An exercise notebook as a student hands it in: the exercises whose graded ids are
    in ``right`` ("all" for every one) solved, those in ``wrong`` replaced by that source,
    the rest left blank. ``trim`` keeps only the setup and exercise cells (and the
    markdown), as a student who deleted the display cells."""
    nb = exercise_nb(chapter)
    solved = solved_sources(chapter)
    wrong = wrong or {}
    cells = []
    for cell in nb.cells:
        ids = graded_ids(cell)
        if cell.cell_type == "code" and ids:
            if any(i in wrong for i in ids):
                cell.source = next(wrong[i] for i in ids if i in wrong)
            elif right == "all" or any(i in right for i in ids):
                cell.source = solved[cell.id]
        elif trim and cell.cell_type == "code" and "checks" not in cell.source:
            continue  # a display cell, deleted
        cells.append(cell)
    nb.cells = cells
    return nb


def code_index(nb, what: str) -> int:
    """The index of the first code cell whose source contains ``what``."""
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and what in c.source)


def insert(nb, index: int, source: str):
    nb = copy.deepcopy(nb)
    cell = nbformat.v4.new_code_cell(source)
    cell.id = f"student-{index}-{abs(hash(source)) % 10**6}"
    nb.cells.insert(index, cell)
    return nb


def write(nb, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path
