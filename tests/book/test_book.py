"""The HTML book builds with no warnings, and its Colab buttons point at the
repository configured in _config.yml."""

import re

import pytest

from tests.helpers import ROOT


@pytest.fixture(scope="module")
def html(book_html):
    """The book built once per run (``conftest.py``), shared with test_browser.py."""
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


def _book_extension():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bigramlab_book", ROOT / "book" / "_ext" / "bigramlab_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_nbval_markers_and_their_reasons_leave_the_page_other_comments_stay():
    ext = _book_extension()
    source = ("# NBVAL_IGNORE_OUTPUT\n"
              "# (output not compared in tests: the device depends on the machine)\n"
              "x = 1\n"
              "# NBVAL_TOLERANCE rel=0.05 (moves by 2% across CPU kernels)\n"
              "# timing: the first run trains\n"
              "print(x)  # NBVAL stays when it is not a marker line")
    assert ext.strip_markers(source) == ("x = 1\n"
                                         "# timing: the first run trains\n"
                                         "print(x)  # NBVAL stays when it is not a marker line")


def test_prose_outputs_are_told_from_aligned_ones():
    ext = _book_extension()
    assert ext.is_prose("27,186 passages, 4,000,044 words\n\nDramtrokelle is a librarian.")
    assert not ext.is_prose("entry   MiB\n-----   ---\nbigram  32.0")
    assert not ext.is_prose("tensor([[ 1.0,  2.0]])")
    assert not ext.is_prose("\n")


def test_bibliography_labels_are_author_year(html):
    page = (html / "book" / "bibliography.html").read_text()
    labels = re.findall(r'<span class="label"><span class="fn-bracket">\[</span>([^<]+)<', page)
    assert "Chang and Bergen, 2025" in labels
    assert len(labels) >= 10 and all(re.fullmatch(r".+, \d{4}[a-z]?", label) for label in labels), labels


def test_every_page_shows_its_version_report(html):
    """The report cell after the install cell has a stored output, and it is rendered."""
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(),
                        re.MULTILINE).group(1)
    pages = sorted((html / "chapters").glob("ch*.html"))
    assert len(pages) == len(list((ROOT / "chapters").glob("ch*.ipynb")))
    for page in pages:
        assert f"bigramlab {version} (this book: {version})" in page.read_text(), page.name
