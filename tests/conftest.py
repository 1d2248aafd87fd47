"""Fixtures shared by test modules: the HTML book, built once per test run."""

import shutil
import subprocess
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def book_html(tmp_path_factory) -> Path:
    """``jupyter-book build . -W --keep-going`` into a temporary folder (the stored
    outputs; seconds): the ``_build/html`` folder, after asserting a clean build.
    ``tests/test_book.py`` and ``tests/test_browser.py`` both read it."""
    jb = shutil.which("jupyter-book")
    assert jb, "jupyter-book is not installed: pip install -r requirements.txt"
    out = tmp_path_factory.mktemp("book")
    proc = subprocess.run([jb, "build", str(ROOT), "-W", "--keep-going", "--path-output", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "warning" not in proc.stderr.lower(), proc.stderr[-4000:]
    return out / "_build" / "html"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a busy machine's oversubscribed
    threads can make them 30x slower (modules opt in with ``usefixtures``)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
