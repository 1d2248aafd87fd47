"""Fixtures of the book's tests: the HTML book built once per test run, and the system's
Chromium (``tests/helpers/browser.py``)."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import ROOT
from tests.helpers.browser import CHROMIUM_ARGS, chromium_path, missing


@pytest.fixture(scope="session")
def book_html(tmp_path_factory) -> Path:
    """``jupyter-book build . -W --keep-going`` into a temporary folder (the stored
    outputs; seconds): the ``_build/html`` folder, after asserting a clean build.
    ``test_book.py``, ``test_browser.py`` and ``test_explorers_browser.py`` read it."""
    jb = shutil.which("jupyter-book")
    assert jb, "jupyter-book is not installed: pip install -r requirements.txt"
    out = tmp_path_factory.mktemp("book")
    proc = subprocess.run([jb, "build", str(ROOT), "-W", "--keep-going", "--path-output", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "warning" not in proc.stderr.lower(), proc.stderr[-4000:]
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium through playwright, one per test module."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed: pip install -r requirements.txt")
    exe = chromium_path()
    if exe is None:
        missing("no Chromium found (Debian: apt-get install chromium; or set $BIGRAMLAB_CHROMIUM)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
