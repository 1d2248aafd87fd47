"""The system's Chromium for the browser tests (``tests/book/``), driven by playwright
through ``executable_path``: playwright's own browser downloads are never used.

Without playwright or Chromium the browser tests skip, except in CI (``$CI`` or
``$BIGRAMLAB_REQUIRE_BROWSER`` set), where they fail. The ``browser`` fixture itself is in
``tests/book/conftest.py``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

#: Looked up on $PATH after ``$BIGRAMLAB_CHROMIUM`` (a name on $PATH or a file).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: Chromium's flags: no sandbox (CI containers run as root), and no name resolves, so
#: nothing can leave the machine even if a page's route is missed.
CHROMIUM_ARGS = ["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND"]


def browser_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("BIGRAMLAB_REQUIRE_BROWSER"))


def missing(why: str):
    """Skip, or fail where the browser tests must run."""
    if browser_required():
        pytest.fail(f"{why} ($CI or $BIGRAMLAB_REQUIRE_BROWSER is set: the browser test must run)")
    pytest.skip(why)


def chromium_path() -> str | None:
    for name in (os.environ.get("BIGRAMLAB_CHROMIUM"), *CHROMIUM_NAMES):
        found = name and (shutil.which(name) or (Path(name).is_file() and name))
        if found:
            return str(found)
    return None
