"""Sphinx extension: plotly.js for the explorers' figures, from the book itself.

The chapters' explorers (``bigramlab.explorers``; Chapters 1, 3, 4, 5) store
their figures as HTML that calls ``Plotly.newPlot`` without loading plotly.js
(``include_plotlyjs=False``). This extension copies ``plotly.min.js`` out of
the installed ``plotly`` package into the built book's ``_static/`` and loads
it on the pages that hold such a figure, so the page works offline, with no
CDN. When a page also loads require.js (myst-nb does for pages with widget
state), plotly.js would register itself as an AMD module and leave
``window.Plotly`` undefined; it is therefore loaded with ``define`` hidden,
and ``define`` is put back right after.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import plotly

MARKER = "bigramlab-explorer"
SOURCE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _add_to_page(app, pagename, templatename, context, doctree):
    if app.builder.format != "html" or MARKER not in context.get("body", ""):
        return
    app.add_js_file(None, priority=10,
                    body="window.__bigramlabDefine = window.define; window.define = undefined;")
    app.add_js_file("plotly.min.js", priority=11)
    app.add_js_file(None, priority=12,
                    body="if (window.__bigramlabDefine) { window.define = window.__bigramlabDefine; }")


def _copy(app, exception):
    if exception is None and app.builder.format == "html":
        target = Path(app.builder.outdir) / "_static" / "plotly.min.js"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCE, target)


def setup(app):
    if not SOURCE.exists():
        raise RuntimeError(f"plotly_offline: {SOURCE} is missing: pip install 'plotly>=5'")
    app.connect("html-page-context", _add_to_page)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
