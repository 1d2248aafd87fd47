"""nbval, number-aware: stored text outputs are compared as words and numbers.

nbval compares a re-executed cell's outputs with the ones stored in the
notebook, character for character. Our stored numbers come from floating-point
training whose last bits depend on the CPU's kernels (see the README's
"Reproducibility" section), so this plugin changes what "equal" means for text:

* a text is split into numbers and the rest (:func:`split`);
* the rest must match exactly, except that a run of spaces or tabs counts as
  one space (a table re-aligned around a wider number is the same table);
* there must be as many numbers, each printed the same way (same number of
  decimals, exponent or not), and each within its tolerance of the stored one.

The default tolerance comes from how a number is printed: one unit in its last
digit when it has decimals (``0.01`` for ``0.97``, ``1e-7`` for ``1.23e-05``),
which accepts a rounding flip and nothing more; none for an integer (``5,777``,
a layer index, a step), since a count or a label that moves is a change. A cell widens it with a marker
line that must state its reason, in the style of ``# NBVAL_IGNORE_OUTPUT``::

    # NBVAL_TOLERANCE rel=0.02 units=3 (kept counts move by up to 1.4% across CPU kernels)

A number then passes when ``|new - stored| <= max(default, units * u, abs,
rel * |stored|)``, ``u`` being one unit in its last printed digit (so
``units=3`` lets ``0.972`` move by 0.003 and ``146`` by 3); ``abs`` is a plain
absolute bound, for cells whose numbers all share a scale.
Widened tolerances are set from the spread measured by
``tools/measure_spread.py`` (README, "Reproducibility").

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
MARKER_LINE = re.compile(r"#\s*NBVAL_TOLERANCE\b(?P<args>[^(]*)(?:\((?P<why>[^)]*)\))?")


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


def differences(stored: str, new: str, tol: Tolerance = Tolerance(), most: int = 5) -> list[str]:
    """What differs between two output texts (empty: they match), at most ``most`` lines."""
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
        elif not tol.allows(a, b):
            out.append(f"number {i}: {a.text} stored, {b.text} now "
                       f"(|diff| {abs(b.value - a.value):.3g} > tolerance {tol.bound(a):.3g})")
        if len(out) >= most:
            break
    return out


def parse_marker(source: str) -> Tolerance | None:
    """The cell's ``# NBVAL_TOLERANCE ...`` marker, or None. Raises ValueError when malformed."""
    for line in source.splitlines():
        line = line.strip()
        if not (line.startswith("#") and MARKER in line):
            continue
        m = MARKER_LINE.match(line)
        why = (m.group("why") or "").strip() if m else ""
        if not m or not why:
            raise ValueError(f"{line!r}: write the reason in parentheses, e.g. "
                             f"# {MARKER} rel=0.01 (kept counts move by 0.3% across CPUs)")
        fields = {}
        for arg in m.group("args").split():
            key, _, value = arg.partition("=")
            if key not in ("rel", "abs", "units"):
                raise ValueError(f"{line!r}: unknown field {key!r}; use rel=, units= or abs=")
            fields[key] = float(value)
            if not math.isfinite(fields[key]) or fields[key] < 0:
                raise ValueError(f"{line!r}: {key} must be a finite number >= 0")
        if not fields:
            raise ValueError(f"{line!r}: give rel=..., units=... and/or abs=...")
        return Tolerance(why=why, **fields)
    return None


class NumericText(str):
    """A stored output text whose ``==`` is :func:`differences` being empty.

    nbval compares ``stored != new`` on what its ``sanitize`` returns; handing it
    these keeps nbval's own collection, execution and failure report intact."""

    tolerance = Tolerance()

    def __new__(cls, text: str, tolerance: Tolerance):
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
                how = (f"rel={tol.rel} units={tol.units} abs={tol.abs} ({tol.why})" if tol.why
                       else "one unit in the last decimal; integers exactly")
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
                tolerance = parse_marker(item.cell.source) or Tolerance()
            except ValueError as e:
                raise pytest.UsageError(f"{item.nodeid}: {e}") from None
            # nbval builds its cells itself and has no hook for the comparison;
            # re-classing keeps everything it does and swaps only `sanitize`.
            item.__class__ = numeric
            item.tolerance = tolerance
            item.add_marker(pytest.mark.notebooks)
