"""Helpers shared by the test folders (one copy of each):

- ``ROOT``: the repository's root folder, the same from any test folder;
- ``tests.helpers.tokenizers``: toy tokenizers with the transformers call signature;
- ``tests.helpers.browser``: the system's Chromium for the browser tests;
- ``tests.helpers.checks``: the contract every exercise check keeps;
- ``tests.helpers.grading``: student submissions made from the course's notebooks;
- ``tests.helpers.worlds``: a small tiny world that builds in seconds.

Fixtures (``one_thread``, ``book_html``, ``browser``) live in the ``conftest.py`` of
the folder whose tests use them."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
