"""The package source that chapters show: every ``literalinclude`` in ``chapters/*.md``
names a file that exists (relative to the chapter, as Sphinx resolves it) and, where it
has a ``:pyobject:`` option, a function, class or method that the file defines (parsed
with ``ast``, nothing imported). A renamed or moved function fails here, in a second,
instead of as a warning of the book's build. No build needed."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT

INCLUDE_RE = re.compile(r"^(`{3,}|~{3,})\{literalinclude\}[ \t]+(\S+)[ \t]*\n(.*?)^\1[ \t]*$",
                        re.M | re.S)
OPTION_RE = re.compile(r"^:([\w-]+):[ \t]*(.*?)[ \t]*$", re.M)
CHAPTERS = sorted((ROOT / "chapters").glob("*.md"))


def includes(text: str) -> list[tuple[str, dict[str, str]]]:
    """``(path, options)`` of each ``literalinclude`` directive in MyST text."""
    return [(m.group(2), dict(OPTION_RE.findall(m.group(3))))
            for m in INCLUDE_RE.finditer(text)]


def defines(source: str, dotted: str) -> bool:
    """True when ``source`` defines ``dotted`` (``f``, ``Class`` or ``Class.method``)
    at module level, as Sphinx's ``:pyobject:`` looks it up."""
    body = ast.parse(source).body
    for name in dotted.split("."):
        found = [node for node in body
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                 and node.name == name]
        if not found:
            return False
        body = found[0].body
    return True


def include_problems(md: Path, text: str) -> list[str]:
    problems = []
    for path, options in includes(text):
        target = (md.parent / path).resolve()
        if not target.is_file():
            problems.append(f"{md.name}: literalinclude {path}: no such file")
            continue
        obj = options.get("pyobject")
        if obj and not defines(target.read_text(), obj):
            problems.append(f"{md.name}: literalinclude {path}: no {obj!r} defined there")
    return problems


def test_chapters_show_package_source():
    """Not vacuous: the method chapters do include source."""
    found = [(md.name, path) for md in CHAPTERS for path, _ in includes(md.read_text())]
    assert len(found) >= 4, f"expected the method chapters' literalincludes, found {found}"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.name)
def test_literalincludes_name_existing_source(md):
    problems = include_problems(md, md.read_text())
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_wrong_name(tmp_path):
    md = tmp_path / "chapters" / "chXX.md"
    md.parent.mkdir()
    (tmp_path / "pkg.py").write_text("class A:\n    def step(self):\n        pass\n\n"
                                     "def f():\n    pass\n")
    good = ("```{literalinclude} ../pkg.py\n:pyobject: A.step\n:language: python\n```\n\n"
            "```{literalinclude} ../pkg.py\n:pyobject: f\n```\n")
    assert include_problems(md, good) == []
    bad = good.replace("A.step", "A.stpe") + "```{literalinclude} ../nothere.py\n```\n"
    problems = "\n".join(include_problems(md, bad))
    assert "no 'A.stpe' defined there" in problems and "nothere.py: no such file" in problems
