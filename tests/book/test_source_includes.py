"""The package source the chapters show (MyST ``literalinclude`` with ``:pyobject:``) exists.

A chapter shows the function it teaches straight from ``bigramlab`` at build time, so page
and package cannot drift; Sphinx only warns when the file or the object is missing (and the
page then shows nothing). This test reads every ``literalinclude`` of ``chapters/*.md``
and checks, without building the book, that its file exists (relative to the chapter) and
that its ``:pyobject:`` (``name`` or ``Class.method``) is defined there, parsed with ``ast``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

DIRECTIVE = re.compile(r"^(`{3,}|:{3,})\{literalinclude\}[ \t]+(\S+)[ \t]*\n((?::[^\n]*\n)*)",
                       re.MULTILINE)


def includes(md: Path) -> list[tuple[str, str | None]]:
    """(path as written, pyobject or None) of every literalinclude in ``md``."""
    out = []
    for m in DIRECTIVE.finditer(md.read_text()):
        options = dict(re.findall(r"^:(\w+):[ \t]*(.*?)[ \t]*$", m.group(3), re.MULTILINE))
        out.append((m.group(2), options.get("pyobject")))
    return out


def defines(source: str, dotted: str) -> bool:
    """True when ``source`` defines ``dotted``: a top-level function or class, or
    ``Class.member`` (nested as deep as the dots say)."""
    body = ast.parse(source).body
    for part in dotted.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                       ast.ClassDef)) and n.name == part), None)
        if node is None:
            return False
        body = node.body
    return True


def problems(md: Path) -> list[str]:
    out = []
    for path, pyobject in includes(md):
        target = (md.parent / path).resolve()
        if not target.is_file():
            out.append(f"{md.name}: literalinclude {path}: no such file")
        elif pyobject is not None and not defines(target.read_text(), pyobject):
            out.append(f"{md.name}: literalinclude {path}: no {pyobject} defined there")
    return out


CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_literalincludes_name_existing_source(md):
    assert not problems(md)


def test_the_chapters_show_package_source():
    """At least the chapters this was written for show their function (not vacuous)."""
    shown = {md.name: includes(md) for md in CHAPTERS}
    assert ("../bigramlab/methods/sparsify.py", "FlatSteps.step") in shown["ch03_sparsification.md"]
    taught = [md for md, incs in shown.items() if any(obj for _, obj in incs)]
    assert len(taught) >= 8, taught  # chapters 1-4 and 6-9 each show what they teach


def test_a_misspelt_include_is_caught(tmp_path):
    (tmp_path / "chapters").mkdir()
    md = tmp_path / "chapters" / "chx.md"
    real = ROOT / "bigramlab" / "methods" / "sparsify.py"
    text = ("```{literalinclude} " + str(real) + "\n:pyobject: %s\n:language: python\n```\n")
    md.write_text(text % "FlatSteps.step")
    assert problems(md) == []
    md.write_text(text % "FlatSteps.stepp")
    assert problems(md) == [f"chx.md: literalinclude {real}: no FlatSteps.stepp defined there"]
    md.write_text(text.replace("sparsify.py", "sparsifi.py") % "FlatSteps.step")
    assert "no such file" in problems(md)[0]
