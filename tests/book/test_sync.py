"""Sync checks for the course's notebooks.

1. Every .ipynb in chapters/, solutions/, exercises/ has its jupytext .md twin
   (MyST) and vice versa, and each pair holds the same cells.
2. exercises/ is exactly what tools/make_exercises.py generates from solutions/.
3. Every solutions notebook has an exercises notebook and vice versa.
4. No exercise notebook contains a BEGIN/END SOLUTION marker.
5. Every notebook's first code cell is the Colab install cell: bigramlab==<version>
   from PyPI, else the git tag v<version> of the repository in _config.yml, with a
   constraints file that keeps torch, numpy and ipywidgets (run with pip replaced by
   a recorder); the next cell reports the versions and fails on a mismatch. Book
   pages that show a pip install pin the same repository and version.
6. Unit tests of the generator on small in-memory notebooks.

Tests that loop over notebooks are parametrized over the files that exist;
with none yet they run one "no-notebooks-yet" case that checks the folders
really are empty, so nothing is ever silently skipped.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tests.helpers import ROOT

NOTEBOOK_DIRS = ("chapters", "solutions", "exercises")


def _load_generator():
    path = ROOT / "tools" / "make_exercises.py"
    spec = importlib.util.spec_from_file_location("make_exercises", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_exercises", module)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def files(pattern: str, dirs=NOTEBOOK_DIRS) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).glob(pattern) if p.is_file())


def params(paths: list[Path]):
    """One case per file; a single 'no-notebooks-yet' case when there are none."""
    if not paths:
        return [pytest.param(None, id="no-notebooks-yet")]
    return [pytest.param(p, id=rel(p)) for p in paths]


def assert_no_notebooks() -> None:
    present = files("*.ipynb") + files("*.md")
    assert not present, f"notebooks appeared during the run: {[rel(p) for p in present]}"


def code_sources(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


# ---------------------------------------------------------------------------
# 1. jupytext pairs


def test_every_notebook_has_its_md_twin_and_back():
    problems = []
    for ipynb in files("*.ipynb"):
        if not ipynb.with_suffix(".md").exists():
            problems.append(
                f"{rel(ipynb)} has no .md twin: run `jupytext --set-formats ipynb,md:myst {rel(ipynb)}`"
            )
    for md in files("*.md"):
        if not md.with_suffix(".ipynb").exists():
            problems.append(
                f"{rel(md)} has no .ipynb twin: run `jupytext --sync {rel(md)}` "
                f"(its jupytext header must list formats: ipynb,md:myst)"
            )
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("ipynb", params(files("*.ipynb")))
def test_pair_in_sync(ipynb):
    if ipynb is None:
        return assert_no_notebooks()
    md = ipynb.with_suffix(".md")
    if not md.exists():
        pytest.fail(f"{rel(ipynb)} has no .md twin: run `jupytext --sync {rel(ipynb)}`")
    nb_ipynb = jupytext.read(ipynb)
    nb_md = jupytext.read(md)
    formats = nb_ipynb.metadata.get("jupytext", {}).get("formats", "")
    assert "md:myst" in formats, (
        f"{rel(ipynb)}: notebook metadata jupytext.formats is {formats!r}; it must pair "
        f"with MyST markdown: run `jupytext --set-formats ipynb,md:myst {rel(ipynb)}`"
    )
    cells_ipynb = [(c.cell_type, c.source) for c in nb_ipynb.cells]
    cells_md = [(c.cell_type, c.source) for c in nb_md.cells]
    if cells_ipynb != cells_md:
        first = next(
            (i for i, (a, b) in enumerate(zip(cells_ipynb, cells_md)) if a != b),
            min(len(cells_ipynb), len(cells_md)),
        )
        pytest.fail(
            f"{rel(ipynb)} and {rel(md)} are out of sync ({len(cells_ipynb)} vs "
            f"{len(cells_md)} cells, first difference at cell {first}): "
            f"run `jupytext --sync {rel(ipynb)}`"
        )


# ---------------------------------------------------------------------------
# 2. exercises/ is what the generator makes


@pytest.mark.parametrize("solution", params(gen.solution_notebooks(ROOT / "solutions")))
def test_exercises_match_generator(solution):
    if solution is None:
        return assert_no_notebooks()
    exercise_nb = gen.make_exercise(nbformat.read(solution, as_version=4), rel(solution))
    expected = {
        ROOT / "exercises" / f"{solution.stem}.ipynb": gen.render_ipynb(exercise_nb),
        ROOT / "exercises" / f"{solution.stem}.md": gen.render_md(exercise_nb),
    }
    for path, text in expected.items():
        assert path.exists(), (
            f"{rel(path)} is missing (generated from {rel(solution)}): "
            f"run `python tools/make_exercises.py`"
        )
        assert gen.content(path.read_text(encoding="utf8")) == gen.content(text), (
            f"{rel(path)} differs from what {rel(solution)} generates: edit the solution, "
            f"not the exercise, and run `python tools/make_exercises.py`"
        )


def test_generator_check_reports_nothing_stale():
    stale = gen.stale_files(ROOT / "solutions", ROOT / "exercises")
    assert not stale, "exercises/ is out of date: run `python tools/make_exercises.py`\n" + "\n".join(
        f"  {rel(p)}: {why}" for p, why in stale
    )


# ---------------------------------------------------------------------------
# 3. solutions <-> exercises


def test_solutions_and_exercises_pair_up():
    solutions = {p.name for p in (ROOT / "solutions").glob("*.ipynb")}
    exercises = {p.name for p in (ROOT / "exercises").glob("*.ipynb")}
    problems = [
        f"solutions/{name} has no exercises/{name}: run `python tools/make_exercises.py`"
        for name in sorted(solutions - exercises)
    ] + [
        f"exercises/{name} has no solutions/{name}: exercises are generated from solutions; "
        f"add the solution or delete the exercise (`python tools/make_exercises.py` removes it)"
        for name in sorted(exercises - solutions)
    ]
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------
# 4. no solution markers in exercises


@pytest.mark.parametrize("exercise", params(files("*", dirs=("exercises",))))
def test_exercise_has_no_solution_markers(exercise):
    if exercise is None:
        return assert_no_notebooks()
    if exercise.suffix not in (".ipynb", ".md"):
        pytest.fail(f"{rel(exercise)}: exercises/ holds only generated notebooks and their .md twins")
    text = exercise.read_text(encoding="utf8")
    if exercise.suffix == ".ipynb":
        text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
    found = gen.MARKER_RE.search(text)
    assert not found, (
        f"{rel(exercise)} contains a solution marker ({found.group(0).strip()!r}): "
        f"run `python tools/make_exercises.py`"
    )


# ---------------------------------------------------------------------------
# 5. the Colab install cell pins the book's repository and version


def repository_url() -> str:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf8"))
    url = config["repository"]["url"].rstrip("/")
    assert url.startswith("https://"), f"_config.yml repository.url is not an https URL: {url!r}"
    return url


def package_version() -> str:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


PIP_LINE_RE = re.compile(r"^.*\bpip\s+install\b.*$", re.MULTILINE)
GIT_SPEC_RE = re.compile(r"git\+(?P<url>https?://[^\s@\"'#]+?)(?:\.git)?(?:@(?P<ref>[^\s\"'#]+))?(?=[\s\"'#]|$)")


def install_problems(code: str, where: str, url: str, version: str) -> list[str]:
    """What is wrong with the `pip install` lines of `code` (empty: all good)."""
    expected = f"git+{url}@v{version}"
    lines = PIP_LINE_RE.findall(code)
    problems, pinned = [], False
    for line in lines:
        specs = list(GIT_SPEC_RE.finditer(line))
        for spec in specs:
            if spec.group("url").rstrip("/") != url:
                problems.append(
                    f"{where}: installs from {spec.group('url')}, not the repository in "
                    f"_config.yml ({url}): use {expected!r}"
                )
            elif spec.group("ref") not in (f"v{version}", version):
                problems.append(
                    f"{where}: installs ref {spec.group('ref')!r}, not the version in "
                    f"pyproject.toml ({version}): use {expected!r}"
                )
            else:
                pinned = True
        if not specs and re.search(r"\bbigramlab\b", re.sub(r"\s#.*$", "", line)):
            problems.append(f"{where}: installs bigramlab without the pinned git URL: use {expected!r}")
    if lines and not pinned and not problems:
        problems.append(
            f"{where}: has `pip install` but does not install the course package pinned: "
            f"add `%pip install -q \"bigramlab @ {expected}\"`"
        )
    return problems


def first_code_cells(nb):
    """(install cell, report cell): the first two code cells (None where missing)."""
    codes = [c for c in nb.cells if c.cell_type == "code"] + [None, None]
    return codes[0], codes[1]


PYPI_SPEC_RE = re.compile(r"""["']bigramlab\s*==\s*([^"'\s]+)["']""")
KEPT = ("torch", "numpy", "ipywidgets")  # Colab's own: never reinstalled by an install cell


def install_cell_problems(source: str, where: str, url: str, version: str) -> list[str]:
    """What is wrong with the text of an install cell (empty: all good): Colab only,
    bigramlab==<version> from PyPI first, then exactly the git tag of that version."""
    problems = []
    if 'if "google.colab" in sys.modules:' not in source:
        problems.append(f'{where}: the first code cell must be the install cell, run only '
                        f'`if "google.colab" in sys.modules:`')
    pypi = PYPI_SPEC_RE.findall(source)
    if pypi != [version]:
        problems.append(f"{where}: installs {['bigramlab==' + v for v in pypi]} from PyPI; it must "
                        f"install exactly \"bigramlab=={version}\" (the version in pyproject.toml)")
    gits = list(GIT_SPEC_RE.finditer(source))
    if [(g.group("url").rstrip("/"), g.group("ref")) for g in gits] != [(url, f"v{version}")]:
        problems.append(f"{where}: its fallback must be exactly one \"bigramlab @ git+{url}@v{version}\" "
                        f"(_config.yml repository.url, pyproject.toml version); found "
                        f"{[g.group(0) for g in gits]}")
    elif pypi and source.index(gits[0].group(0)) < PYPI_SPEC_RE.search(source).start():
        problems.append(f"{where}: tries the git tag before PyPI; PyPI first, the tag when it fails")
    if PIP_LINE_RE.search(source):
        problems.append(f"{where}: has a `pip install` line; install through the cell's `pip` "
                        f"command, which keeps {', '.join(KEPT)} with a constraints file")
    return problems


def run_install_cell(source: str, tmp_path: Path, monkeypatch, results: list[int],
                     colab: bool = True):
    """Execute an install cell as Colab would, with pip replaced by a recorder that
    answers ``results`` in turn; (the pip commands, {file name: text written})."""
    import subprocess
    import types

    calls, written = [], {}

    def fake_run(args, check=False, **kwargs):
        calls.append(list(args))
        code = results[len(calls) - 1]
        if check and code:
            raise subprocess.CalledProcessError(code, args)
        return subprocess.CompletedProcess(args, code)

    def fake_open(path, mode="r", *args, **kwargs):
        assert "w" in mode, f"the install cell reads {path}"
        target = tmp_path / Path(path).name
        written[str(path)] = target
        return open(target, mode, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", fake_run)
    if colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    try:
        code = compile(source, "<install cell>", "exec")
    except SyntaxError as e:
        pytest.fail(f"the install cell must be plain Python (no %pip / !pip magics): {e}")
    exec(code, {"__name__": "__main__", "open": fake_open})
    return calls, {p: t.read_text(encoding="utf8") for p, t in written.items()}


def install_behaviour_problems(source: str, where: str, url: str, version: str,
                               tmp_path: Path, monkeypatch) -> list[str]:
    """Run the cell three times (PyPI answers; PyPI fails; both fail) and off Colab."""
    from importlib.metadata import version as installed

    problems = []
    expected_keep = [f"{p}=={installed(p)}" for p in KEPT]
    pypi_spec, git_spec = f"bigramlab=={version}", f"bigramlab @ git+{url}@v{version}"
    for results, specs in (([0], [pypi_spec]), ([1, 0], [pypi_spec, git_spec])):
        calls, written = run_install_cell(source, tmp_path, monkeypatch, results)
        if [c[-1] for c in calls] != specs:
            problems.append(f"{where}: with PyPI {'answering' if results[0] == 0 else 'failing'} "
                            f"it installs {[c[-1] for c in calls]}, expected {specs}")
        for call in calls:
            if call[:4] != [sys.executable, "-m", "pip", "install"] or "-c" not in call:
                problems.append(f"{where}: runs {call}; expected `{sys.executable} -m pip install "
                                f"... -c <constraints> <bigramlab spec>`")
                continue
            keep = call[call.index("-c") + 1]
            lines = written.get(keep, "").split()
            if lines != expected_keep:
                problems.append(f"{where}: its constraints file {keep} holds {lines}, expected "
                                f"the installed {expected_keep}")
            others = [a for a in call[4:] if not a.startswith("-") and a != keep and a != call[-1]]
            if others:
                problems.append(f"{where}: also installs {others}")
    try:
        run_install_cell(source, tmp_path, monkeypatch, [1, 1])
        problems.append(f"{where}: with both PyPI and the git tag failing it does not raise")
    except Exception as e:  # the failure must be loud: subprocess.CalledProcessError
        if type(e).__name__ != "CalledProcessError":
            problems.append(f"{where}: with both installs failing it raises {e!r}")
    calls, written = run_install_cell(source, tmp_path, monkeypatch, [], colab=False)
    if calls or written:
        problems.append(f"{where}: off Colab it runs {calls} and writes {list(written)}")
    return problems


def report_cell_problems(cell, where: str, version: str, stored: bool) -> list[str]:
    """The cell after the install cell prints the versions and fails on a mismatch."""
    if cell is None:
        return [f"{where}: no code cell after the install cell"]
    problems, lines = [], cell.source.splitlines()
    if lines[:1] != ["# NBVAL_IGNORE_OUTPUT"] or not (len(lines) > 1 and lines[1].startswith("# (")):
        problems.append(f"{where}: the report cell must start with `# NBVAL_IGNORE_OUTPUT` and a "
                        f"`# (reason)` line (its versions and device differ by machine)")
    calls = re.findall(r"""\bbigramlab\.environment_report\(\s*["']([^"']*)["']\s*\)""", cell.source)
    if calls != [version]:
        problems.append(f"{where}: the cell after the install cell must call "
                        f"`bigramlab.environment_report(\"{version}\")` once (pyproject.toml "
                        f"version); it calls it with {calls}")
    if stored:
        text = "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("name") == "stdout")
        if not text.startswith(f"bigramlab {version} (this book: {version}) |") or "MISMATCH" in text:
            problems.append(f"{where}: the report cell's stored output ({text[:60]!r}) is not a "
                            f"report of bigramlab {version}: execute that cell and store its output")
    return problems


@pytest.mark.parametrize("ipynb", params(files("*.ipynb")))
def test_install_cell_pins_repository_and_version(ipynb, tmp_path, monkeypatch):
    if ipynb is None:
        return assert_no_notebooks()
    url, version = repository_url(), package_version()
    install, report = first_code_cells(nbformat.read(ipynb, as_version=4))
    if install is None:
        pytest.fail(f"{rel(ipynb)} has no code cell: its first must be the install cell")
    problems = install_cell_problems(install.source, rel(ipynb), url, version)
    problems += install_behaviour_problems(install.source, rel(ipynb), url, version,
                                           tmp_path, monkeypatch)
    problems += report_cell_problems(report, rel(ipynb), version,
                                     stored=not rel(ipynb).startswith("exercises/"))
    assert not problems, "\n".join(problems)


def test_install_cell_checks_catch_drift(tmp_path, monkeypatch):
    url, version = repository_url(), package_version()
    good, report = first_code_cells(nbformat.read(ROOT / "chapters" / "ch00_setup.ipynb", as_version=4))
    good = good.source
    assert install_cell_problems(good, "nb", url, version) == []
    assert install_behaviour_problems(good, "nb", url, version, tmp_path, monkeypatch) == []
    assert report_cell_problems(report, "nb", version, stored=True) == []
    older = good.replace(f"@v{version}", "@v0.0.1").replace(f"=={version}", "==0.0.1")
    assert len(install_cell_problems(older, "nb", url, version)) == 2
    assert install_behaviour_problems(older, "nb", url, version, tmp_path, monkeypatch)
    assert install_cell_problems(good.replace(url, "https://github.com/x/r"), "nb", url, version)
    assert install_cell_problems(good.replace('if "google.colab" in sys.modules:', "if True:"),
                                 "nb", url, version)
    legacy = f'import sys\nif "google.colab" in sys.modules:\n    %pip install -q "bigramlab @ git+{url}@v{version}"'
    assert len(install_cell_problems(legacy, "nb", url, version)) == 2  # no PyPI; a %pip line
    reinstalls = good.replace('["bigramlab==', '["torch", "bigramlab==')
    assert any("also installs ['torch']" in p for p in
               install_behaviour_problems(reinstalls, "nb", url, version, tmp_path, monkeypatch))
    unkept = good.replace('"numpy", ', "")
    assert any("constraints file" in p for p in
               install_behaviour_problems(unkept, "nb", url, version, tmp_path, monkeypatch))
    quiet = good.replace(",\n                       check=True)", ")")
    assert quiet != good and any("does not raise" in p for p in
                                 install_behaviour_problems(quiet, "nb", url, version, tmp_path, monkeypatch))
    stale = nbformat.v4.new_code_cell(report.source.replace(f'report("{version}")', 'report("0.0.1")'),
                                      outputs=report.outputs)
    assert len(report_cell_problems(stale, "nb", version, stored=False)) == 1
    unmarked = nbformat.v4.new_code_cell(report.source.replace("# NBVAL_IGNORE_OUTPUT\n", ""))
    assert len(report_cell_problems(unmarked, "nb", version, stored=True)) == 2  # no marker, no output


def test_package_version_is_pyproject_version():
    text = (ROOT / "bigramlab" / "plumbing" / "environment.py").read_text(encoding="utf8")
    assert re.findall(r'^__version__ = "([^"]+)"$', text, re.MULTILINE) == [package_version()], (
        "bigramlab/plumbing/environment.py's __version__ must be pyproject.toml's version")


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.md")), ids=lambda p: rel(p))
def test_book_pages_pin_repository_and_version(page):
    text = page.read_text(encoding="utf8")
    problems = install_problems(text, rel(page), repository_url(), package_version())
    # A book page may show `pip install torch` etc. without installing bigramlab.
    problems = [p for p in problems if "does not install the course package" not in p]
    url = repository_url()
    problems += [f"{rel(page)}: names bigramlab=={v}, not the version in pyproject.toml "
                 f"({package_version()})" for v in re.findall(r"\bbigramlab==([\w.]+)", text)
                 if v != package_version()]
    for other in sorted(set(re.findall(r"https://github\.com/[\w.-]*bigramlab[\w./-]*", text))):
        if other.rstrip("/").removesuffix(".git") != url and not other.startswith(url + "/"):
            problems.append(f"{rel(page)}: links {other}, not the repository in _config.yml ({url})")
    assert not problems, "\n".join(problems)


def test_install_checker_catches_drift():
    url, version = "https://github.com/o/r", "1.2.3"
    good = f'%pip install -q "bigramlab @ git+{url}@v{version}"'
    assert install_problems(good, "nb", url, version) == []
    assert install_problems(f"!pip install git+{url}.git@{version}", "nb", url, version) == []
    assert install_problems(f'%pip install "bigramlab @ git+{url}@v1.2.2"', "nb", url, version)
    assert install_problems(f'%pip install "bigramlab @ git+https://github.com/x/r@v{version}"', "nb", url, version)
    assert install_problems(f'%pip install "bigramlab @ git+{url}"', "nb", url, version)
    assert install_problems("%pip install bigramlab", "nb", url, version)
    assert install_problems("%pip install torch", "nb", url, version)
    assert install_problems("pip install -e .   # the bigramlab package", "page", url, version) == [
        f"page: has `pip install` but does not install the course package pinned: "
        f"add `%pip install -q \"bigramlab @ git+{url}@v{version}\"`"
    ]


def test_repository_url_and_version_configured():
    assert repository_url() == "https://github.com/bigramlab/bigramlab-course"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", package_version())


# ---------------------------------------------------------------------------
# Table of contents: every published notebook is in _toc.yml


def toc_files() -> set[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf8"))
    found = {toc["root"]}

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.add(str(node["file"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(toc)
    return {f[: -len(Path(f).suffix)] if Path(f).suffix in (".md", ".ipynb") else f for f in found}


def test_toc_book_pages_exist():
    # Chapter and exercise entries may be listed before their notebooks land
    # (the book build reports those); the front matter in book/ must exist.
    missing = [
        f for f in sorted(toc_files())
        if f.startswith("book/") and not (ROOT / f"{f}.md").exists()
    ]
    assert not missing, f"_toc.yml lists pages that do not exist: {missing}"


@pytest.mark.parametrize("ipynb", params(files("*.ipynb", dirs=("chapters", "exercises"))))
def test_notebook_is_in_toc(ipynb):
    if ipynb is None:
        return assert_no_notebooks()
    entry = rel(ipynb)[: -len(".ipynb")]
    assert entry in toc_files(), (
        f"{rel(ipynb)} is not in _toc.yml (the book build fails with -W on a page outside "
        f"the toc): add `- file: {entry}` to _toc.yml"
    )


# ---------------------------------------------------------------------------
# 6. unit tests of the generator


def small_solution():
    nb = new_notebook(
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "jupytext": {"formats": "ipynb,md:myst"},
            "widgets": {"state": {}},
        }
    )
    nb.cells = [
        new_markdown_cell("# Chapter 0: exercises"),
        new_code_cell(
            "def double(x):\n"
            '    """Return 2 * x."""\n'
            "    # BEGIN SOLUTION\n"
            "    y = x + x\n"
            "    return y\n"
            "    # END SOLUTION\n"
            "\n"
            "class Box:\n"
            "    def get(self):\n"
            "        # BEGIN SOLUTION\n"
            "        return 1\n"
            "        # END SOLUTION\n"
            "\n"
            "check_double(double)",
            execution_count=3,
            outputs=[new_output("stream", name="stdout", text="✓ double\n")],
            metadata={"execution": {"iopub.execute_input": "2025-01-01"}},
        ),
        new_code_cell(
            "answer = 42",
            metadata={"tags": ["solution", "keep-me"]},
            execution_count=4,
            outputs=[new_output("execute_result", data={"text/plain": "42"}, execution_count=4)],
        ),
        new_markdown_cell("The answer is 42 because ...", metadata={"tags": ["solution-only"]}),
        new_code_cell("# BEGIN SOLUTION\ntop = 1\n# END SOLUTION\nprint(top)", execution_count=5),
        new_markdown_cell("Hint: use `+`."),
    ]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i}"
    return nb


def test_markers_replaced_at_begin_indentation():
    src = "def f():\n    doc = 1\n    # BEGIN SOLUTION\n    return 2\n    # END SOLUTION\n\nf()"
    assert gen.strip_solution_source(src) == "def f():\n    doc = 1\n    pass  # YOUR CODE HERE\n\nf()"
    nested = "class A:\n    def g(self):\n        # BEGIN SOLUTION\n        return 1\n        # END SOLUTION\n"
    out = gen.strip_solution_source(nested)
    assert out == "class A:\n    def g(self):\n        pass  # YOUR CODE HERE\n"
    compile(out, "<stub>", "exec")  # still valid Python
    two = "# BEGIN SOLUTION\na = 1\n# END SOLUTION\nb = 2\n# BEGIN SOLUTION\nc = 3\n# END SOLUTION"
    assert gen.strip_solution_source(two) == "pass  # YOUR CODE HERE\nb = 2\npass  # YOUR CODE HERE"
    tabs = "if True:\n\t# BEGIN SOLUTION\n\tx = 1\n\t# END SOLUTION"
    assert gen.strip_solution_source(tabs) == "if True:\n\tpass  # YOUR CODE HERE"


def test_stub_returns_none():
    src = gen.strip_solution_source(
        "def f(x):\n    '''doc'''\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n"
    )
    scope: dict = {}
    exec(src, scope)
    assert scope["f"](3) is None


@pytest.mark.parametrize(
    "src, complaint",
    [
        ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n# END SOLUTION\n", "without a '# BEGIN SOLUTION'"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside the block"),
    ],
)
def test_unbalanced_markers_are_errors(src, complaint):
    with pytest.raises(gen.SolutionMarkerError, match=complaint) as err:
        gen.strip_solution_source(src, where="solutions/x.ipynb, cell 2")
    assert "solutions/x.ipynb, cell 2" in str(err.value)


def test_make_exercise_on_small_notebook():
    solution = small_solution()
    before = nbformat.writes(solution)
    ex = gen.make_exercise(solution, "solutions/ch00_exercises.ipynb")
    assert nbformat.writes(solution) == before, "the solution notebook must not be modified"
    nbformat.validate(ex)

    note, title, code, tagged, top, hint = ex.cells  # solution-only cell dropped
    assert note.cell_type == "markdown"
    assert "solutions/ch00_exercises.ipynb" in note.source
    assert "python tools/make_exercises.py" in note.source
    assert "do not edit" in note.source.lower()
    assert title.source == "# Chapter 0: exercises"
    assert code.source == (
        "def double(x):\n"
        '    """Return 2 * x."""\n'
        "    pass  # YOUR CODE HERE\n"
        "\n"
        "class Box:\n"
        "    def get(self):\n"
        "        pass  # YOUR CODE HERE\n"
        "\n"
        "check_double(double)"
    )
    assert tagged.source == "# YOUR CODE HERE"
    assert tagged.metadata["tags"] == ["keep-me"]
    assert top.source == "pass  # YOUR CODE HERE\nprint(top)"
    assert hint.source == "Hint: use `+`."
    assert all("The answer is 42" not in c.source for c in ex.cells)
    for cell in ex.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            assert "execution" not in cell.metadata
    assert not gen.MARKER_RE.search("\n".join(c.source for c in ex.cells))
    assert ex.metadata["kernelspec"]["name"] == "python3"
    assert ex.metadata["jupytext"]["formats"] == "ipynb,md:myst"
    assert "widgets" not in ex.metadata
    assert [c.id for c in ex.cells] == [gen.NOTE_CELL_ID, "c0", "c1", "c2", "c4", "c5"]
    # the maintainers' note stays off the book's page, which opens with the title
    assert ex.cells[0].metadata["tags"] == ["remove-cell"]


def test_make_exercise_is_deterministic_and_round_trips_through_jupytext():
    ex1 = gen.make_exercise(small_solution(), "solutions/ch00_exercises.ipynb")
    ex2 = gen.make_exercise(small_solution(), "solutions/ch00_exercises.ipynb")
    assert gen.render_ipynb(ex1) == gen.render_ipynb(ex2)
    assert gen.render_md(ex1) == gen.render_md(ex2)
    assert gen.render_ipynb(ex1).endswith("}\n")
    back = jupytext.reads(gen.render_md(ex1), fmt="md:myst")
    assert [(c.cell_type, c.source) for c in back.cells] == [(c.cell_type, c.source) for c in ex1.cells]


def test_cells_without_ids_get_deterministic_ids():
    solution = small_solution()
    for cell in solution.cells:
        del cell["id"]
    ex = gen.make_exercise(solution, "solutions/ch00_exercises.ipynb")
    assert [c.id for c in ex.cells] == [gen.NOTE_CELL_ID, "cell-0", "cell-1", "cell-2", "cell-4", "cell-5"]


def test_generator_end_to_end_on_disk(tmp_path):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    exercises.mkdir()
    nbformat.write(small_solution(), solutions / "ch00_exercises.ipynb")
    (exercises / "ch09_exercises.ipynb").write_text("{}", encoding="utf8")  # orphan

    stale = dict(gen.stale_files(solutions, exercises))
    assert stale[exercises / "ch00_exercises.ipynb"] == "missing"
    assert stale[exercises / "ch00_exercises.md"] == "missing"
    assert "no solutions/" in stale[exercises / "ch09_exercises.ipynb"]

    for path, text in gen.expected_exercises(solutions, exercises).items():
        path.write_text(text, encoding="utf8")
    (exercises / "ch09_exercises.ipynb").unlink()
    assert gen.stale_files(solutions, exercises) == []

    # A regenerated pair is in sync the way test_pair_in_sync checks it.
    a = jupytext.read(exercises / "ch00_exercises.ipynb")
    b = jupytext.read(exercises / "ch00_exercises.md")
    assert [(c.cell_type, c.source) for c in a.cells] == [(c.cell_type, c.source) for c in b.cells]

    # Editing an exercise by hand is caught.
    ipynb = exercises / "ch00_exercises.ipynb"
    ipynb.write_text(ipynb.read_text(encoding="utf8").replace("YOUR CODE HERE", "x"), encoding="utf8")
    assert dict(gen.stale_files(solutions, exercises)) == {ipynb: "differs from its solution"}


# ---------------------------------------------------------------------------
# 7. exercise metadata: every check a solution calls is graded, by a stable id


@pytest.mark.parametrize("solution", params(gen.solution_notebooks(ROOT / "solutions")))
def test_every_check_call_is_graded(solution):
    """Each cell that calls a check carries the metadata that grades it (so that
    `bigramlab grade` scores it), and the ids are those the exercises carry."""
    if solution is None:
        return assert_no_notebooks()
    nb = nbformat.read(solution, as_version=4)
    problems = []
    for index, cell in enumerate(nb.cells):
        called = re.findall(r"\bchecks\.(check_\w+)\(", cell.source) if cell.cell_type == "code" else []
        meta = cell.get("metadata", {}).get(gen.assignments.KEY)
        graded = [g["check"] for g in meta["graded"]] if meta else []
        if sorted(called) != sorted(graded):
            problems.append(f"{rel(solution)}, cell {index}: calls {called} but its "
                            f"'{gen.assignments.KEY}' metadata grades {graded}")
    assert not problems, "\n".join(problems) + (
        "\nadd the metadata (see bigramlab/grade/assignments.py) and run "
        "`python tools/make_exercises.py`")
    ids = list(gen.assignments.read_assignment(nb, solution.stem, solution).cells)
    exercise = ROOT / "exercises" / solution.name
    ex_ids = list(gen.assignments.read_assignment(
        nbformat.read(exercise, as_version=4), solution.stem, exercise).cells)
    assert ids and ids == ex_ids


def test_exercise_ids_are_unique_across_the_course():
    refs = gen.assignments.load_references([ROOT / "solutions"])
    ids = [g.id for a in refs.values() for g in a.graded]
    assert len(ids) == len(set(ids)) and len(ids) >= 3 * len(refs)


def _graded_solution(meta_change=None, badge=None, source=None):
    meta = {"exercise": "0.1", "difficulty": 2, "importance": 3, "minutes": 10,
            "graded": [{"id": "ch00-0.1", "check": "check_double", "args": ["double"],
                        "points": 2}]}
    line = gen.assignments.badge(meta) if badge is None else badge
    if meta_change:
        meta_change(meta)
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    nb.cells = [new_markdown_cell(f"## Exercise 0.1: double\n\n{line}\n\n**Goal.** Double."),
                new_code_cell(source or "def double(x):\n    # BEGIN SOLUTION\n    return 2 * x\n"
                              "    # END SOLUTION\n\n\nchecks.check_double(double)",
                              metadata={"bigramlab": meta})]
    return nb


def test_generator_copies_exercise_metadata():
    ex = gen.make_exercise(_graded_solution(), "solutions/ch00_exercises.ipynb")
    assert ex.cells[2].metadata["bigramlab"]["graded"][0]["id"] == "ch00-0.1"
    assert ex.cells[2].source.startswith("def double(x):\n    pass  # YOUR CODE HERE")
    assert "🔴🔴⚪⚪⚪" in ex.cells[1].source and "about 10 minutes · 2 points" in ex.cells[1].source


@pytest.mark.parametrize("change, complaint", [
    (lambda m: m["graded"][0].update(id="1.1"), "id must look like"),
    (lambda m: m["graded"][0].update(id="ch01-0.1"), "does not start with the notebook's chapter"),
    (lambda m: m["graded"][0].update(points=0), "'points' must be a positive number"),
    (lambda m: m["graded"][0].update(check="check_triple"), "which the cell never calls"),
    (lambda m: m["graded"][0].update(args=["halve"]), "does not define"),
    (lambda m: m["graded"][0].update(args=["@model"]), "unknown grader object"),
    (lambda m: m.update(difficulty=6), "from 1 to 5"),
    (lambda m: m.pop("minutes"), "'minutes' must be"),
    (lambda m: m["graded"].append(dict(m["graded"][0])), "is used twice"),
])
def test_generator_rejects_bad_exercise_metadata(change, complaint):
    with pytest.raises(gen.ExerciseMetadataError, match=complaint):
        gen.make_exercise(_graded_solution(change), "solutions/ch00_exercises.ipynb")


def test_generator_rejects_a_stale_badge():
    with pytest.raises(gen.ExerciseMetadataError, match="badge line made from the metadata"):
        gen.make_exercise(_graded_solution(badge="> **Difficulty** 🔴⚪⚪⚪⚪"),
                          "solutions/ch00_exercises.ipynb")
