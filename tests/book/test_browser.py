"""Every page of the built book, opened in a real browser (Chromium, headless) from
``file://`` with the network blocked: it must read fully offline.

Per page: no JavaScript error and no failed or outside request (everything it loads is in
the book: ``book/_static/vendor``), every image loaded, the math typeset by MathJax (no raw
TeX left in the text), nothing above the title, no nbval marker in the text, wide tables and long output lines
scroll instead of being clipped, and no table or code output is wider than the text column
(``WIDE_OUTPUTS`` counts the outputs still to be narrowed); on chapter pages code outputs and a table; on pages built
from notebooks the Colab button and the repository buttons point where ``_config.yml``
says. Every interactive plotly figure with a slider changes when the slider moves, and
each page of ``EXPLORER_PAGES`` has at least one.

Needs Chromium from the system (Debian: ``apt-get install chromium``; ``.ci/run`` installs
it) and ``playwright`` (requirements.txt): the ``browser`` fixture (``conftest.py`` here,
``tests/helpers/browser.py``) says what happens without them.
"""

from __future__ import annotations

import pytest
import yaml

from tests.helpers import ROOT

pytestmark = pytest.mark.slow

#: Pages (paths in the built book) with an interactive explorer: at least one plotly figure
#: with a slider each (the slider is moved on every page that has one, listed or not).
EXPLORER_PAGES: list[str] = ["chapters/ch01_bigrams.html", "chapters/ch03_sparsification.html",
                             "chapters/ch04_where.html", "chapters/ch05_pretraining.html"]

#: Code outputs wider than the text column (at the tests' 1280 px viewport), per page: to be
#: narrowed in the chapters, then removed here. A page with more or fewer fails.
WIDE_OUTPUTS: dict[str, int] = {}

#: Pages Sphinx writes besides the table of contents' documents.
EXTRA_PAGES = ["genindex.html", "search.html"]
#: Raw TeX a reader must never see: MathJax replaces each of these.
RAW_TEX = ("\\(", "\\)", "\\[", "\\]", "$$", "\\begin{")

CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def toc_documents() -> list[str]:
    docs = [TOC["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                docs.append(entry["file"])
            walk(entry.get("sections", []))

    for part in TOC.get("parts", []):
        walk(part.get("chapters", []))
    return docs


DOCUMENTS = toc_documents()
PAGES = [doc + ".html" for doc in DOCUMENTS] + EXTRA_PAGES


class PageVisit:
    """One page opened offline, with what went wrong while it loaded."""

    def __init__(self, browser, url: str, settle: bool = True):
        self.problems: list[str] = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda err: self.problems.append(f"JavaScript error: {err}"))
        self.page.on("console", self._console)
        self.page.on("requestfailed", lambda req: self.problems.append(
            f"request failed: {req.url} ({req.failure})"))
        # generous timeouts: in CI the other worker trains masks on the same two cores, and a
        # page with embedded widgets has been seen to need more than playwright's default 30 s
        self.page.set_default_timeout(120_000)
        self.page.goto(url, wait_until="load")
        if not settle:
            return
        # MathJax typesets after load; widgets render on load (embed.js)
        self.page.evaluate("""async () => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise)
                await MathJax.startup.promise;
        }""")
        self.page.wait_for_load_state("networkidle")

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file://", "data:", "blob:")):
            route.continue_()
        else:
            self.problems.append(f"request leaves the book (blocked): {url}")
            route.abort()

    def _console(self, msg):
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text}")

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def visits(book_html, browser):
    """Opened on demand and kept for the module: ``visits(page)`` -> PageVisit."""
    opened: dict[str, PageVisit] = {}

    def visit(page: str) -> PageVisit:
        if page not in opened:
            opened[page] = PageVisit(browser, (book_html / page).as_uri())
        return opened[page]

    yield visit
    for v in opened.values():
        v.close()


# ----------------------------------------------------------------------------- page checks

TEXT_OUTSIDE_CODE = """() => {
    const skip = new Set(['PRE', 'CODE', 'SCRIPT', 'STYLE', 'TEXTAREA', 'MJX-CONTAINER',
                          'MJX-ASSISTIVE-MML', 'NOSCRIPT']);
    const root = document.querySelector('main') || document.body;
    const out = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT, {
        acceptNode(node) {
            for (let el = node.parentElement; el && el !== root.parentElement; el = el.parentElement)
                if (skip.has(el.tagName)) return NodeFilter.FILTER_REJECT;
            return NodeFilter.FILTER_ACCEPT;
        }});
    while (walker.nextNode()) out.push(walker.currentNode.nodeValue);
    return out.join(' ');
}"""


# A <pre> or <table> is clipped when its content overflows it and it does not scroll, or
# when it reaches past the article's right edge with no scrolling box around it that ends
# inside the article.
CLIPPED = """() => {
    const article = document.querySelector('main .bd-article') || document.querySelector('main')
        || document.body;
    const limit = article.getBoundingClientRect().right + 1;
    const scrolls = e => ['auto', 'scroll'].includes(getComputedStyle(e).overflowX);
    const out = [];
    for (const el of article.querySelectorAll('pre, table')) {
        const box = el.getBoundingClientRect();
        if (!box.width) continue;  // not displayed (a closed dropdown)
        let bad = el.scrollWidth > el.clientWidth + 1 && !scrolls(el);
        if (!bad && box.right > limit) {
            bad = true;
            for (let a = el.parentElement; a && a !== article; a = a.parentElement)
                if (scrolls(a) && a.getBoundingClientRect().right <= limit) { bad = false; break; }
        }
        // printed prose (book/_ext marks it output-prose) wraps: it must not even scroll
        if (el.closest('.output-prose') && el.scrollWidth > el.clientWidth + 1) bad = true;
        if (bad) out.push(`${el.tagName} ${Math.round(box.width)} px: ${el.innerText.slice(0, 60)}`);
    }
    return out;
}"""


# A table or a code output is wider than the text column when a reader has to scroll it
# sideways: its content overflows its box (for a table, the box the theme scrolls it in).
WIDER = """() => {
    const article = document.querySelector('main .bd-article') || document.querySelector('main')
        || document.body;
    const out = [];
    for (const el of article.querySelectorAll('table, .cell_output pre')) {
        if (!el.getBoundingClientRect().width) continue;
        const table = el.tagName === 'TABLE';
        const box = table ? el.parentElement : el;
        if (box.scrollWidth > box.clientWidth + 1)
            out.push({table: table, text: `${table ? 'table' : 'output'} ${box.scrollWidth} px in `
                + `${box.clientWidth} px: ${el.innerText.slice(0, 60).replace(/\\s+/g, ' ')}`});
    }
    return out;
}"""


def wider_than_the_column(v: PageVisit, page: str) -> list[str]:
    """Tables wider than the text column, and code outputs beyond ``WIDE_OUTPUTS``."""
    found = v.page.evaluate(WIDER)
    problems = [f"wider than its column: {f['text']}" for f in found if f["table"]]
    outputs = [f["text"] for f in found if not f["table"]]
    if len(outputs) != WIDE_OUTPUTS.get(page, 0):
        problems.append(f"{len(outputs)} code outputs wider than the column, WIDE_OUTPUTS says "
                        f"{WIDE_OUTPUTS.get(page, 0)} (narrow them, or update the count):\n    "
                        + "\n    ".join(outputs))
    return problems


def check_page(v: PageVisit, page: str) -> list[str]:
    p = v.page
    problems = list(v.problems)

    broken = p.evaluate("""() => [...document.images]
        .filter(img => !(img.complete && img.naturalWidth > 0))
        .map(img => img.getAttribute('src'))""")
    problems += [f"image not loaded: {src}" for src in broken]

    text = p.evaluate(TEXT_OUTSIDE_CODE)
    for tex in RAW_TEX:
        if tex in text:
            i = text.index(tex)
            problems.append(f"raw TeX {tex!r} in the text: ...{text[max(0, i - 60):i + 60]}...")
    math = p.evaluate("""() => {
        const els = [...document.querySelectorAll('main .math')];
        return {math: els.length, typeset: els.filter(e => e.querySelector('mjx-container')).length,
                containers: document.querySelectorAll('mjx-container').length};
    }""")
    if math["math"] and math["typeset"] < math["math"]:
        problems.append(f"{math['math'] - math['typeset']} of {math['math']} formulas not typeset "
                        "by MathJax")

    body = p.evaluate("() => document.body.innerText")
    if "NBVAL" in body:
        i = body.index("NBVAL")
        problems.append(f"nbval marker on the page: ...{body[max(0, i - 60):i + 60]}...")

    before_title = p.evaluate("""() => {
        const article = document.querySelector('main .bd-article');
        const h1 = article && article.querySelector('h1');
        if (!h1) return null;
        const range = document.createRange();
        range.setStart(article, 0);
        range.setEndBefore(h1);
        return range.toString().trim();
    }""")
    if page not in EXTRA_PAGES and before_title is None:
        problems.append("no title (h1) in the article")
    elif before_title:
        problems.append(f"text above the page's title: {before_title[:80]!r}")

    clipped = p.evaluate(CLIPPED)
    problems += [f"clipped (too wide, does not scroll): {c}" for c in clipped]
    return problems + wider_than_the_column(v, page)


def chapter_problems(v: PageVisit) -> list[str]:
    problems = []
    found = v.page.evaluate(r"""() => {
        const outputs = document.querySelectorAll('main .cell_output');
        const html = document.querySelectorAll('main table').length;
        // printed tables (bigramlab.display.format_table): a rule line of dash runs
        const printed = [...document.querySelectorAll('main .cell_output pre')]
            .filter(pre => /^-{3,}(  +-{3,})+ *$/m.test(pre.innerText)).length;
        return {outputs: outputs.length, tables: html + printed};
    }""")
    if not found["outputs"]:
        problems.append("no code outputs on a chapter page")
    if not found["tables"]:
        problems.append("no table on a chapter page")
    return problems


def button_problems(v: PageVisit, doc: str) -> list[str]:
    """Colab and repository buttons of a page built from a notebook, against _config.yml."""
    repo = CONFIG["repository"]["url"].rstrip("/")
    branch = CONFIG["repository"].get("branch", "main")
    base = CONFIG["repository"].get("path_to_book", "").strip("/")
    path = "/".join(x for x in (base, doc + ".ipynb") if x)
    slug = repo.removeprefix("https://github.com/")
    want_colab = f"{CONFIG['launch_buttons']['colab_url']}/github/{slug}/blob/{branch}/{path}"
    links = v.page.evaluate("""() => [...document.querySelectorAll('.article-header-buttons a')]
        .map(a => ({title: a.getAttribute('data-bs-original-title') || a.getAttribute('title'),
                    href: a.href}))""")  # bootstrap moves title to data-bs-original-title
    by_title = {link["title"]: link["href"] for link in links}
    problems = []
    if by_title.get("Launch on Colab") != want_colab:
        problems.append(f"Colab button: {by_title.get('Launch on Colab')!r}, want {want_colab!r}")
    if by_title.get("Source repository") != repo:
        problems.append(f"repository button: {by_title.get('Source repository')!r}, want {repo!r}")
    for link in links:
        if "github.com" in link["href"] and "colab" not in link["href"] \
                and not link["href"].startswith(repo):
            problems.append(f"header link outside the repository: {link['href']}")
    return problems


# ----------------------------------------------------------------------- plotly sliders

SLIDER_FIGURES = """() => [...document.querySelectorAll('.plotly-graph-div')]
    .map((el, i) => ({index: i, sliders: (el.layout && el.layout.sliders || []).length}))"""

FIGURE_STATE = """(i) => {
    const el = document.querySelectorAll('.plotly-graph-div')[i];
    const layout = Object.assign({}, el.layout);
    delete layout.sliders;  // the slider's own position is not a change of the figure
    return JSON.stringify({data: el.data, layout: layout});
}"""


def slider_problems(v: PageVisit) -> tuple[int, list[str]]:
    """Move every slider of every plotly figure on the page by clicking its rail at
    another step; the figure's data or layout must change."""
    p = v.page
    problems = []
    figures = [f for f in p.evaluate(SLIDER_FIGURES) if f["sliders"]]
    for fig in figures:
        for s in range(fig["sliders"]):
            rail = p.locator(".plotly-graph-div").nth(fig["index"]) \
                .locator(".slider-container").nth(s).locator(".slider-rail-touch-rect")
            rail.scroll_into_view_if_needed()
            box = rail.bounding_box()
            info = p.evaluate("""([i, s]) => {
                const sl = document.querySelectorAll('.plotly-graph-div')[i].layout.sliders[s];
                return {steps: sl.steps.length, active: sl.active || 0};
            }""", [fig["index"], s])
            if box is None or info["steps"] < 2:
                problems.append(f"figure {fig['index']}, slider {s}: no rail or fewer than 2 steps")
                continue
            target = 0 if info["active"] == info["steps"] - 1 else info["steps"] - 1
            before = p.evaluate(FIGURE_STATE, fig["index"])
            x = box["x"] + box["width"] * (0.01 if target == 0 else 0.99)
            p.mouse.click(x, box["y"] + box["height"] / 2)
            try:
                p.wait_for_function(f"(before) => ({FIGURE_STATE})({fig['index']}) !== before",
                                    arg=before, timeout=5000)
            except Exception:  # playwright's TimeoutError
                problems.append(f"figure {fig['index']}, slider {s}: moving it to step {target} "
                                "changed neither the data nor the layout")
    return len(figures), problems


# ----------------------------------------------------------------------------- the tests

def test_every_page_of_the_book_is_checked(book_html):
    built = sorted(p.relative_to(book_html).as_posix() for p in book_html.rglob("*.html")
                   if not p.relative_to(book_html).parts[0].startswith("_"))
    assert built == sorted(PAGES + ["index.html"]), (
        "pages built and pages tested differ (update EXTRA_PAGES or _toc.yml): "
        f"{sorted(set(built) ^ set(PAGES + ['index.html']))}")


def test_explorer_pages_exist(book_html):
    for page in EXPLORER_PAGES:
        assert (book_html / page).is_file(), f"EXPLORER_PAGES lists {page}, not in the built book"


@pytest.mark.parametrize("page", PAGES)
def test_page_reads_offline(visits, page):
    v = visits(page)
    problems = check_page(v, page)
    doc = page.removesuffix(".html")
    if doc.startswith("chapters/"):
        problems += chapter_problems(v)
    if doc in DOCUMENTS and (ROOT / (doc + ".ipynb")).is_file():
        problems += button_problems(v, doc)
    n_sliders, slider_issues = slider_problems(v)
    problems += slider_issues
    if page in EXPLORER_PAGES and not n_sliders:
        problems.append("an explorer page (EXPLORER_PAGES) without a plotly figure with a slider")
    problems += [p for p in v.problems if p not in problems]  # raised while checking
    assert not problems, f"{page}:\n  " + "\n  ".join(problems)


def test_index_redirects_into_the_book(browser, book_html):
    v = PageVisit(browser, (book_html / "index.html").as_uri(), settle=False)
    try:
        v.page.wait_for_url((book_html / (TOC["root"] + ".html")).as_uri(), timeout=10000)
        v.page.wait_for_load_state("load")
        assert not v.problems, v.problems
    finally:
        v.close()


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    """The checks are not vacuous: a page with raw TeX, a CDN script, a missing image, a
    JavaScript error and a clipped wide block is reported on each count."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<html><body><main><p>Raw \\(x^2\\) and $$y$$, # NBVAL_IGNORE_OUTPUT</p>"
        '<img src="missing.png">'
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
        "<script>undefinedFunction()</script>"
        '<pre style="width: 200px; overflow-x: hidden">' + "x" * 500 + "</pre>"
        '<div style="width: 300px; overflow-x: auto"><table><tr>'
        + "<td>wide&nbsp;cell</td>" * 60 + "</tr></table></div>"
        '<div class="cell_output"><pre style="width: 300px; overflow-x: auto">' + "y" * 400
        + "</pre></div></main></body></html>")
    v = PageVisit(browser, page.as_uri())
    try:
        problems = "\n".join(check_page(v, "broken.html"))
    finally:
        v.close()
    for expected in ["request leaves the book", "JavaScript error", "image not loaded",
                     "raw TeX '\\\\('", "raw TeX '$$'", "nbval marker", "clipped",
                     "wider than its column: table", "1 code outputs wider than the column"]:
        assert expected in problems, f"{expected!r} not reported:\n{problems}"
