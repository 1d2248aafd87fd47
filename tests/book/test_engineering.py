"""The book's appendix "Engineering notes" (book/engineering.md) quotes no number that can
disagree with its source: every table is a generated block that must equal what
``tools/engineering_tables.py`` renders from the file that measures it, and the prose
holds no measured number (a number with decimals, a thousands separator or two digits)
outside those blocks and code."""

from __future__ import annotations

import re

import pytest
import yaml

from tools import engineering_tables as eng

from tests.helpers import ROOT

#: The blocks the page must hold (tests/experiments/test_plan.py,
#: tests/package/test_reliability.py and tests/package/test_packaging.py read other parts
#: of the same page).
REQUIRED = {"release", "versions", "t4-table", "lowmem-table", "quote", "ci-time"}
#: A number as a reader reads one: not glued to a word ("T4", "160M", "float64", "SHA-256").
NUMBER = re.compile(r"(?<![\w.\-/])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w])")


def page() -> str:
    return eng.PAGE.read_text(encoding="utf8")


def prose_numbers(text: str) -> list[str]:
    """Measured-looking numbers outside generated blocks, code, comments and list markers."""
    text = eng.BLOCK.sub("", text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"^\s*\d+\. ", "", text, flags=re.M)  # an ordered list's item numbers
    return [n for n in NUMBER.findall(text) if len(n) > 1]


def test_every_block_equals_what_its_source_renders():
    assert not eng.differences(page()), "run python tools/engineering_tables.py"
    names = {m.group(1) for m in eng.BLOCK.finditer(page())}
    assert REQUIRED <= names, f"blocks missing from the page: {REQUIRED - names}"


def test_the_readmes_costs_are_the_recorded_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    assert "ci-cost" in {m.group(1) for m in eng.BLOCK.finditer(readme)}
    assert not eng.differences(readme), "run python tools/engineering_tables.py"
    # each named cost is the one code cell that runs it (a renamed sweep fails here)
    for _, notebook, needle in eng.COSTS:
        assert eng.cell_id(notebook, needle).startswith(notebook + "::Cell ")
    with pytest.raises(ValueError, match="0 code cells"):
        eng.cell_id(eng.COSTS[0][1], "no such code")


def test_a_quoted_number_that_moves_is_caught():
    text = page()
    for m in eng.BLOCK.finditer(text):
        body = m.group(3)
        n = re.search(r"\d", body)
        if n is None:
            continue
        i = m.start(3) + n.start()
        moved = text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:]
        assert eng.differences(moved), f"an edited digit in <!-- {m.group(1)} --> passed"
    # and a block whose end marker is lost is not silently skipped
    assert eng.differences(text.replace("<!-- /versions -->", "", 1))


def test_the_prose_quotes_no_number():
    found = prose_numbers(page())
    assert not found, (f"numbers in the prose of {eng.PAGE.relative_to(ROOT)}: {found}; put "
                       "them in a generated block (tools/engineering_tables.py) or drop them")
    # the check itself sees a number written into the prose, and ignores code and names
    assert prose_numbers("kept 5,783 entries, r 0.971, about 23 MiB") == ["5,783", "0.971", "23"]
    assert prose_numbers("a T4, Pythia 160M, `make test`, float64, SHA-256, Chapter 3") == []


def test_the_appendix_is_in_the_book_after_the_reference_pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [c["file"] for part in toc["parts"] for c in part["chapters"]]
    assert files.index("book/engineering") > files.index("book/bibliography")


def test_ci_time_sums_a_trace_by_group_and_worker():
    """tools/ci_time.py against sums done by hand on a four-line trace."""
    from tools import ci_time

    trace = [dict(worker="gw0", test="chapters/ch03_x.ipynb::Cell 2", phase="call", start=0, stop=100),
             dict(worker="gw1", test="tests/book/test_a.py::test_b", phase="setup", start=1, stop=11),
             dict(worker="gw1", test="tests/book/test_a.py::test_b", phase="call", start=11, stop=41),
             dict(worker="gw1", test="tests/test_top.py::test_c", phase="call", start=50, stop=55)]
    s = ci_time.summarise(trace, top=2)
    assert s["span_s"] == 100 and s["busy_s"] == 145
    assert s["workers"] == {"gw0": 100, "gw1": 45}
    assert s["groups"] == {"chapters": 100, "tests/book": 40, "tests": 5}
    assert s["tests"] == {"chapters/ch03_x.ipynb::Cell 2": 100, "tests/book/test_a.py::test_b": 40}
