"""nbval, number-aware: stored text outputs are compared as words and numbers.

nbval compares a re-executed cell's outputs with the ones stored in the
notebook, character for character. Our stored numbers come from floating-point
training whose last bits depend on the CPU's kernels (see the book's appendix,
"Reproducibility" section), so this plugin changes what "equal" means for text:

* a text is split into numbers and the rest (:func:`split`);
* the rest must match exactly, except that a run of spaces or tabs counts as
  one space (a table re-aligned around a wider number is the same table);
* there must be as many numbers, each printed the same way (same number of
  decimals, exponent or not), and each within its tolerance of the stored one.

The default tolerance comes from how a number is printed: one unit in its last
digit when it has decimals (``0.01`` for ``0.97``, ``1e-7`` for ``1.23e-05``),
which accepts a rounding flip and nothing more; none for an integer (``5,777``,
a layer index, a step), since a count or a label that moves is a change.

A cell may widen the bound of named numbers, never of the whole cell, in its
metadata (not in the code a reader sees), with a measured reason::

    "nbval_numbers": [{"numbers": [3, 4], "abs": 0.02,
                       "why": "the mean of 8 sampled texts; its own spread is 0.03"}]

``numbers`` are indices into the numbers of each compared text of the cell (0 is
the first). A listed number passes when ``|new - stored| <= max(default, units *
u, abs, rel * |stored|)``, ``u`` being one unit in its last printed digit. A
``# NBVAL_TOLERANCE`` comment in a cell's code (this plugin's old, cell-wide
form) is refused with the fix. The course has no such metadata today: the tiny
world prints the same digits on every CPU (the book's appendix, "Reproducibility").

With ``NBVAL_NUMBERS_RECORD=DIR`` set, every compared cell's fresh text
outputs are also written to ``DIR/<folder>/<notebook>.json``, so that a test
run under other CPU kernels doubles as a measurement of the spread
(``tools/measure_spread.py compare DIR``).

Loaded by the root ``conftest.py``; it only touches nbval's cells.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

# A number: optional sign, digits with optional thousands separators, optional
# decimals and exponent. Not preceded by a letter, digit, '_' or '.' (so
# "step1500", "ch03" and "v0.1.0"'s tail stay words) and not followed by a digit.
NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\d])")
SPACES = re.compile(r"[ \t]+")
MARKER = "NBVAL_TOLERANCE"
METADATA = "nbval_numbers"


@dataclass(frozen=True)
class Tolerance:
    """How far a number may move: ``max(default, units * unit, abs, rel * |stored|)``,
    where unit is one unit in its last printed digit and the default is one unit
    for decimals and 0 for integers."""

    rel: float = 0.0
    abs: float = 0.0
    units: float = 0.0
    why: str = ""

    def allows(self, stored: "Number", new: "Number") -> bool:
        # The slack absorbs the binary error of parsing two decimals (2048.0001 - 2048.0).
        slack = 1e-9 * self.bound(stored) + 1e-12 * abs(stored.value)
        return abs(new.value - stored.value) <= self.bound(stored) + slack

    def bound(self, stored: "Number") -> float:
        return max(stored.default, self.units * stored.unit, self.abs,
                   self.rel * abs(stored.value))


@dataclass(frozen=True)
class Number:
    text: str

    @property
    def value(self) -> float:
        return float(self.text.replace(",", ""))

    @property
    def shape(self) -> tuple[int, bool]:
        """(decimals, has exponent): how the number was printed."""
        mantissa, _, _ = self.text.lower().partition("e")
        return (len(mantissa.partition(".")[2]), "e" in self.text.lower())

    @property
    def unit(self) -> float:
        """One unit in the last printed digit."""
        mantissa, _, exp = self.text.lower().replace(",", "").partition("e")
        return 10.0 ** (-self.shape[0] + (int(exp) if exp else 0))

    @property
    def default(self) -> float:
        """The default tolerance: one unit in the last digit, or 0 for an integer."""
        return self.unit if self.shape != (0, False) else 0.0


def split(text: str) -> tuple[list[str], list[Number]]:
    """``(words, numbers)``: the text between numbers (spaces runs collapsed) and the numbers."""
    words = [SPACES.sub(" ", w) for w in NUMBER.split(text)]
    return words, [Number(m.group()) for m in NUMBER.finditer(text)]


@dataclass(frozen=True)
class CellTolerance:
    """A cell's bounds: ``per_number[i]`` for its i-th number, the default for the rest."""

    per_number: tuple[tuple[int, Tolerance], ...] = ()

    def of(self, i: int) -> Tolerance:
        return dict(self.per_number).get(i, Tolerance())


def _tolerance_of(tol, i: int) -> Tolerance:
    return tol.of(i) if isinstance(tol, CellTolerance) else tol


def differences(stored: str, new: str, tol: Tolerance | CellTolerance = Tolerance(),
                most: int = 5) -> list[str]:
    """What differs between two output texts (empty: they match), at most ``most`` lines.
    ``tol``: one bound for every number, or a cell's per-number bounds."""
    ws, ns = split(stored)
    wn, nn = split(new)
    if ws != wn:
        for i, (a, b) in enumerate(zip(ws, wn)):
            if a != b:
                return [f"text differs after {i} numbers: {a[:60]!r} != {b[:60]!r}"]
        return [f"{len(ns)} numbers stored, {len(nn)} now (the text around them differs)"]
    out = []
    for i, (a, b) in enumerate(zip(ns, nn)):
        if a.shape != b.shape:
            out.append(f"number {i}: printed as {a.text!r} before, {b.text!r} now")
        elif not _tolerance_of(tol, i).allows(a, b):
            out.append(f"number {i}: {a.text} stored, {b.text} now (|diff| "
                       f"{abs(b.value - a.value):.3g} > tolerance {_tolerance_of(tol, i).bound(a):.3g})")
        if len(out) >= most:
            break
    return out


def parse_marker(source: str) -> None:
    """Refuse a ``# NBVAL_TOLERANCE`` comment in a cell's code (ValueError naming the fix)."""
    for line in source.splitlines():
        if line.strip().startswith("#") and MARKER in line:
            raise ValueError(f"{line.strip()[:80]!r}: a tolerance belongs in the cell's metadata, "
                             "per number, with its measured reason: "
                             '"nbval_numbers": [{"numbers": [0], "abs": 0.01, "why": "..."}] '
                             "(tools/nbval_numbers.py)")


def parse_metadata(metadata: dict) -> CellTolerance:
    """The per-number bounds in a cell's ``nbval_numbers`` metadata (ValueError when malformed)."""
    entries = metadata.get(METADATA, [])
    if not isinstance(entries, list):
        raise ValueError(f"{METADATA} must be a list of {{'numbers': [...], ..., 'why': ...}}")
    per_number: dict[int, Tolerance] = {}
    for e in entries:
        numbers, why = e.get("numbers"), str(e.get("why", "")).strip()
        if not why:
            raise ValueError(f"{METADATA} entry {e!r}: give the measured reason as 'why'")
        if not numbers or not all(isinstance(n, int) and n >= 0 for n in numbers):
            raise ValueError(f"{METADATA} entry {e!r}: name the numbers it widens, "
                             "e.g. 'numbers': [0, 2] (indices into the cell's printed numbers)")
        unknown = set(e) - {"numbers", "why", "rel", "abs", "units"}
        if unknown:
            raise ValueError(f"{METADATA} entry {e!r}: unknown field {sorted(unknown)[0]!r}; "
                             "use rel, units or abs")
        fields = {k: float(e[k]) for k in ("rel", "abs", "units") if k in e}
        if not fields or not all(math.isfinite(v) and v >= 0 for v in fields.values()):
            raise ValueError(f"{METADATA} entry {e!r}: give rel, units and/or abs, finite and >= 0")
        per_number.update({n: Tolerance(why=why, **fields) for n in numbers})
    return CellTolerance(tuple(sorted(per_number.items())))


class NumericText(str):
    """A stored output text whose ``==`` is :func:`differences` being empty.

    nbval compares ``stored != new`` on what its ``sanitize`` returns; handing it
    these keeps nbval's own collection, execution and failure report intact."""

    tolerance = CellTolerance()

    def __new__(cls, text: str, tolerance: CellTolerance):
        obj = super().__new__(cls, text)
        obj.tolerance = tolerance
        return obj

    def __eq__(self, other):
        return isinstance(other, str) and not differences(self, other, self.tolerance)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__


def numeric_cell_class(base):
    """A subclass of nbval's cell class whose comparison is number-aware."""

    class NumericCell(base):
        def compare_outputs(self, test, ref, skip_compare=None):
            record(self, test)
            return super().compare_outputs(test, ref, skip_compare)

        def sanitize(self, s):
            s = super().sanitize(s)
            return NumericText(s, self.tolerance) if isinstance(s, str) else s

        def format_output_compare(self, key, left, right):
            super().format_output_compare(key, left, right)
            if isinstance(left, str) and isinstance(right, str):
                tol = self.tolerance
                how = "one unit in the last decimal; integers exactly" + "".join(
                    f"; number {i}: rel={t.rel} units={t.units} abs={t.abs} ({t.why})"
                    for i, t in tol.per_number)
                self.comparison_traceback.append(f"  numbers compared within {how}:")
                self.comparison_traceback += [f"    {d}" for d in differences(left, right, tol)]

    NumericCell.__name__ = base.__name__
    return NumericCell


def record(cell, outputs) -> None:
    """Append a cell's fresh text outputs to ``$NBVAL_NUMBERS_RECORD/<folder>/<name>.json``."""
    root = os.environ.get("NBVAL_NUMBERS_RECORD")
    if not root:
        return
    path = Path(str(cell.fspath))
    out = Path(root) / path.parent.name / (path.stem + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(out.read_text()) if out.exists() else {}
    texts = [{**o, "data": {k: v for k, v in o["data"].items() if not k.startswith("image/")}}
             if "data" in o else dict(o) for o in outputs]  # PNGs are never compared
    data[str(cell.cell_num)] = texts
    out.write_text(json.dumps(data))


def pytest_collection_modifyitems(session, config, items):
    try:
        from nbval.plugin import IPyNbCell
    except ImportError:  # nbval not installed: nothing to do
        return
    numeric = numeric_cell_class(IPyNbCell)
    for item in items:
        if type(item) is IPyNbCell:
            try:
                parse_marker(item.cell.source)
                tolerance = parse_metadata(item.cell.metadata)
            except ValueError as e:
                raise pytest.UsageError(f"{item.nodeid}: {e}") from None
            # nbval builds its cells itself and has no hook for the comparison;
            # re-classing keeps everything it does and swaps only `sanitize`.
            item.__class__ = numeric
            item.tolerance = tolerance
            item.add_marker(pytest.mark.notebooks)
