"""Sphinx extension of the book (registered in ``_config.yml``: ``sphinx: local_extensions``).

Two things the rendered book needs and no configuration option gives:

* **Test markers off the page.** Code cells carry nbval's markers (``# NBVAL_IGNORE_OUTPUT``,
  ``# NBVAL_TOLERANCE rel=...``) for the test run; a reader has no use for them. Lines that
  start with ``# NBVAL`` are dropped from every code cell's source as shown on the page, with
  the parenthesised reason right after a marker (``# (output not compared in tests: ...)``),
  which only explains the marker. Other comments stay. The notebooks are not changed: Colab,
  nbval and the downloads keep the markers.
* **Author-year bibliography labels.** Citations are author-year
  (``bibtex_reference_style: author_year``); pybtex's styles label the bibliography ``[1]``,
  ``[2]``, ... The ``bigramlab`` formatting style is pybtex's ``plain`` with labels such as
  ``Chang and Bergen, 2025`` or ``Belrose et al., 2023`` (``a``, ``b``, ... appended when two
  entries would get the same label); ``_config.yml`` selects it with ``bibtex_default_style``.
* **Prose outputs wrap.** A printed output whose lines hold no column gaps (two spaces
  inside a line) is prose, such as Chapter 0's corpus passages: it gets the class
  ``output-prose`` and wraps (``book/_static/custom.css``); printed tables, tensors and
  other aligned outputs keep their lines and scroll sideways.
* **Each script once.** sphinx-thebe adds its inline configuration script
  (``const THEBE_JS_URL = ...``) through ``app.add_js_file`` after the builder started, and
  Sphinx puts such inline scripts on every page twice (once with filename ``None``, once
  with ``''``, which its own de-duplication tells apart): a JavaScript error ("Identifier
  'THEBE_JS_URL' has already been declared") on every page. Duplicates are dropped.
"""

from __future__ import annotations

import re

from docutils import nodes

MARKER_RE = re.compile(r"^\s*#\s*NBVAL")
REASON_START_RE = re.compile(r"^\s*#\s*\(")
REASON_END_RE = re.compile(r"\)\s*$")


def strip_markers(source: str) -> str:
    """``source`` without its ``# NBVAL...`` lines and the ``# (...)`` reason after each."""
    out: list[str] = []
    lines = source.split("\n")
    i = 0
    while i < len(lines):
        if MARKER_RE.match(lines[i]):
            i += 1
            if i < len(lines) and REASON_START_RE.match(lines[i]):
                while i < len(lines) and lines[i].lstrip().startswith("#"):
                    done = REASON_END_RE.search(lines[i])
                    i += 1
                    if done:
                        break
            continue
        out.append(lines[i])
        i += 1
    return "\n".join(out)


ALIGNED_RE = re.compile(r"\S  +\S")


def is_prose(text: str) -> bool:
    """True for printed text with no aligned columns (no run of two spaces inside a line)."""
    return bool(text.strip()) and not any(ALIGNED_RE.search(line) for line in text.splitlines())


def mark_prose_outputs(app, doctree: nodes.document) -> None:
    for block in doctree.findall(nodes.literal_block):
        classes = block.get("classes", [])
        if "output" in classes and "stream" in classes and is_prose(block.astext()):
            block["classes"].append("output-prose")


def _in_code_cell(node: nodes.Node) -> bool:
    parent = node.parent
    while parent is not None:
        if isinstance(parent, nodes.container) and "cell_input" in parent.get("classes", []):
            return True
        parent = parent.parent
    return False


def hide_nbval_markers(app, doctree: nodes.document) -> None:
    for block in list(doctree.findall(nodes.literal_block)):
        text = block.astext()
        if "NBVAL" not in text or not _in_code_cell(block):
            continue
        new = strip_markers(text)
        if new == text:
            continue
        replacement = block.copy()  # same attributes (language, classes); new text only
        replacement += nodes.Text(new)
        replacement.rawsource = new
        block.replace_self(replacement)


def _author_year_style():
    from pybtex.style.formatting.plain import Style as Plain
    from pybtex.style.labels import BaseLabelStyle

    def surname(person) -> str:
        return " ".join(person.prelast_names + person.last_names) or str(person)

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = []
            for entry in sorted_entries:
                people = entry.persons.get("author") or entry.persons.get("editor") or []
                names = [surname(p) for p in people]
                if not names:
                    who = entry.fields.get("title", entry.key)
                elif len(names) == 1:
                    who = names[0]
                elif len(names) == 2:
                    who = f"{names[0]} and {names[1]}"
                else:
                    who = f"{names[0]} et al."
                labels.append(f"{who}, {entry.fields.get('year', 'n.d.')}")
            seen = {label: labels.count(label) for label in labels}
            suffix: dict[str, int] = {}
            for label in labels:
                if seen[label] > 1:
                    n = suffix.get(label, 0)
                    suffix[label] = n + 1
                    yield f"{label}{chr(ord('a') + n)}"
                else:
                    yield label

    class AuthorYearStyle(Plain):
        default_label_style = AuthorYearLabels

    return AuthorYearStyle


def drop_duplicate_scripts(app, pagename, templatename, context, doctree) -> None:
    files = context.get("script_files")
    if not files:
        return
    seen, kept = set(), []
    for js in files:
        attributes = getattr(js, "attributes", {}) or {}
        key = (getattr(js, "filename", None) or "",  # inline scripts: None or ''
               tuple(sorted((k, str(v)) for k, v in attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    files[:] = kept


def setup(app):
    from pybtex.plugin import register_plugin

    register_plugin("pybtex.style.formatting", "bigramlab", _author_year_style())
    app.connect("doctree-read", hide_nbval_markers)
    app.connect("doctree-read", mark_prose_outputs)
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)  # after the others
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
