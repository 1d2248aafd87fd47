"""The HTML book builds with no warnings, and its Colab buttons point at the
repository configured in _config.yml."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def html(book_html):
    """The book built once per run (``tests/conftest.py``), shared with test_browser.py."""
    return book_html


def test_front_pages_and_chapter_zero(html):
    for page in ["book/intro.html", "book/setup.html", "chapters/ch00_setup.html",
                 "exercises/ch00_exercises.html", "book/instructors.html", "book/glossary.html"]:
        assert (html / page).exists(), page
    assert not (html / "solutions").exists()  # instructor material stays out of the book


def test_colab_button_uses_the_configured_repository(html):
    config = (ROOT / "_config.yml").read_text()
    repo = re.search(r"repository:\s*\n\s*url:\s*(\S+)", config).group(1)
    slug = repo.removeprefix("https://github.com/")
    page = (html / "chapters" / "ch00_setup.html").read_text()
    want = f"https://colab.research.google.com/github/{slug}/blob/main/chapters/ch00_setup.ipynb"
    assert want in page


def test_chapter_zero_shows_its_outputs(html):
    page = (html / "chapters" / "ch00_setup.html").read_text()
    assert "profile: tiny" in page  # stored outputs are rendered
    assert page.count("<img") >= 2  # the Zipf plot and the loss curve


def test_every_chapter_points_to_its_exercises_by_title():
    """Each chapter ends with an "Exercises" section linking its exercise page under the page's
    title ("Exercises 3: continuous sparsification"), not under a raw path."""
    chapters = sorted((ROOT / "chapters").glob("ch*.md"))
    assert chapters
    for md in chapters:
        n = md.name[2:4]
        exercise = ROOT / "exercises" / f"ch{n}_exercises.md"
        title = re.search(r"^# (.+)$", exercise.read_text(), re.MULTILINE).group(1)
        text = md.read_text()
        headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
        assert headings and headings[-1] == "Exercises", f"{md.name} does not end with Exercises"
        link = f"[{title}](../exercises/ch{n}_exercises.ipynb)"
        assert link in " ".join(text.split()), f"{md.name}: no link {link}"
