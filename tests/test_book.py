"""The HTML book builds with no warnings, and its Colab buttons point at the
repository configured in _config.yml."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    jb = shutil.which("jupyter-book")
    assert jb, "jupyter-book is not installed: pip install -r requirements.txt"
    out = tmp_path_factory.mktemp("book")
    proc = subprocess.run([jb, "build", str(ROOT), "-W", "--keep-going", "--path-output", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "warning" not in proc.stderr.lower(), proc.stderr[-4000:]
    return out / "_build" / "html"


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


def test_every_page_shows_its_version_report(html):
    """The report cell after the install cell has a stored output, and it is rendered."""
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(),
                        re.MULTILINE).group(1)
    pages = sorted((html / "chapters").glob("ch*.html"))
    assert len(pages) == len(list((ROOT / "chapters").glob("ch*.ipynb")))
    for page in pages:
        assert f"bigramlab {version} (this book: {version})" in page.read_text(), page.name
