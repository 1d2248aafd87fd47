"""The explorers on the built book's pages, in a real browser, offline.

The book is built (``jupyter-book build . -W --keep-going``, into a temporary
folder) and each chapter page with an explorer (Chapters 1, 3, 4 and 5) is
opened from ``file://`` in the system's chromium through playwright, every
request that is not a local file aborted: the page must draw a plotly figure
with a slider (plotly.js from the book's own ``_static/``), and clicking the
slider's rail must change the figure's data and title.

Needs playwright (pip) and a chromium binary (``apt-get install chromium``;
``$BIGRAMLAB_CHROMIUM`` names another); playwright's own browser downloads are
never used. Without them the tests skip, except under ``$CI`` or
``$BIGRAMLAB_REQUIRE_BROWSER``, where they fail.
"""

import json
from pathlib import Path

import pytest

from tests.book.test_browser import EXPLORER_PAGES  # one list for both

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def html(book_html):
    """The book built once per test run (conftest.py), shared with test_browser.py."""
    return book_html


STATE = """() => Array.from(document.querySelectorAll('.bigramlab-explorer .js-plotly-plot'))
  .map(gd => JSON.stringify({data: gd.data.map(t => [t.x, t.y, t.z, t.text]),
                             title: gd.layout.title.text,
                             active: gd.layout.sliders[0].active}))"""


AMD = "window.define = function define() {}; window.define.amd = {jQuery: true};"


def open_page(browser, path: Path, amd: bool = False):
    """The page opened offline: (page, errors, requests that left the machine).
    ``amd``: an AMD loader's ``define`` exists before any script runs (as when
    require.js loads before plotly.js: plotly.js must still set window.Plotly)."""
    context = browser.new_context()
    if amd:
        context.add_init_script(AMD)
    blocked = []

    def route(r):
        if r.request.url.startswith("file:"):
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    return page, errors, blocked


@pytest.mark.parametrize("amd", [False, True], ids=["plain", "define() first"])
@pytest.mark.parametrize("name", EXPLORER_PAGES)
def test_explorer_renders_offline_and_its_slider_changes_the_figure(browser, html, name, amd):
    assert (html / "_static" / "plotly.min.js").exists()
    page, errors, blocked = open_page(browser, html / name, amd)
    try:
        page.wait_for_selector(".bigramlab-explorer .js-plotly-plot .main-svg", timeout=20_000)
        assert page.evaluate("typeof window.Plotly") == "object"
        assert not [u for u in blocked if "plotly" in u]  # plotly.js came from the book
        assert page.locator(".bigramlab-explorer-note").count() == 0  # drawn: note removed
        assert not [e for e in errors if "Plotly" in e or "plotly" in e], errors
        figures = page.locator(".bigramlab-explorer .js-plotly-plot")
        assert figures.count() >= 1
        for i in range(figures.count()):
            fig = figures.nth(i)
            fig.scroll_into_view_if_needed()
            steps = page.evaluate("(i) => document.querySelectorAll("
                                  "'.bigramlab-explorer .js-plotly-plot')[i]"
                                  ".layout.sliders[0].steps.length", i)
            assert steps >= 2
            before = json.loads(page.evaluate(STATE)[i])
            rail = fig.locator(".slider-rail-rect").bounding_box()
            assert rail, "the figure has no slider"
            # click the rail where the last step sits: the slider jumps there
            page.mouse.click(rail["x"] + rail["width"] - 3, rail["y"] + rail["height"] / 2)
            page.wait_for_timeout(400)
            after = json.loads(page.evaluate(STATE)[i])
            assert after["active"] == steps - 1, (before["active"], after["active"])
            assert after["data"] != before["data"], "moving the slider left the data unchanged"
            assert after["title"] != before["title"]
    finally:
        page.context.close()
