"""Fixtures shared by every test folder. (The book's fixtures, ``book_html`` and
``browser``, are in ``book/conftest.py``; helpers that are not fixtures are in
``helpers/``.)"""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread, and a busy machine's oversubscribed
    threads can make them 30x slower (modules opt in with ``usefixtures``)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
