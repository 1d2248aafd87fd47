"""The package's layers, read from its source: who may import whom.

Every import of every bigramlab module is collected with ``ast`` (module level
and inside functions, absolute and relative), and the tests fail on an import
cycle, on an import against the layer order

    plumbing < methods < worlds < experiments < display, explorers, checks, cli, bigramlab

(a module may import its own layer and the layers before it), on an import
inside a function that is not an optional heavy dependency with its reason
beside it (or, in the command line, the commands once one is chosen), on an architecture-name branch outside the architecture table and
the worlds, on a module of 400 lines or more, and on a module docstring that
does not say which chapter teaches it.
"""

import ast
import re
from pathlib import Path

import pytest

from tests.helpers import ROOT as REPO

ROOT = REPO / "bigramlab"
LAYERS = ["plumbing", "methods", "worlds", "experiments", "top"]
TOP = {"display", "explorers", "checks", "grade", "cli", "commands", "loaders", "__main__",
       ""}  # "" is bigramlab/__init__.py itself
#: Modules that import bigramlab modules inside a function, and why.
LATE_IMPORTS = {"bigramlab.cli": "`bigramlab --help` answers without importing torch"}
ARCH_NAMES = {"gpt_neox", "gpt2"}
ARCH_ALLOWED = ("bigramlab.methods.architectures", "bigramlab.worlds")


def module_name(path: Path) -> str:
    parts = ["bigramlab", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def layer(module: str) -> int:
    first = module.split(".")[1] if "." in module else ""
    return LAYERS.index("top" if first in TOP else first)


def is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def resolve(module: str, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The bigramlab modules an import statement in ``module`` loads (empty for others)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
    else:
        if node.level:
            base = module.split(".")
            base = base if is_package(module) else base[:-1]
            base = base[: len(base) - (node.level - 1)]
            prefix = ".".join(base + ([node.module] if node.module else []))
        else:
            prefix = node.module
        # "from pkg import name": name is a submodule or an attribute of pkg
        names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in MODULES else prefix
                 for a in node.names]
    return sorted({n for n in names if n in MODULES})


def imports(module: str):
    """(imported module, line, inside a function?) for every import of ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    in_function = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            in_function |= {id(n) for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for target in resolve(module, node):
                yield target, node.lineno, id(node) in in_function


GRAPH = {m: sorted({t for t, _, _ in imports(m) if t != m}) for m in MODULES}


def test_the_walk_sees_the_package():
    """A guard against a walk that finds nothing: known edges and layers are there."""
    assert len(MODULES) > 30
    assert "bigramlab.plumbing.cache" in GRAPH["bigramlab.plumbing.profiles"]
    assert "bigramlab.methods.subnetwork" in GRAPH["bigramlab.methods.sparsify"]
    assert "bigramlab.worlds.tiny.build" in GRAPH["bigramlab.worlds.loading"]
    assert [layer(m) for m in ("bigramlab.plumbing.files", "bigramlab.methods.masks",
                               "bigramlab.worlds.hub", "bigramlab.experiments.bigram",
                               "bigramlab.checks.ch01", "bigramlab")] == [0, 1, 2, 3, 4, 4]


def test_relative_imports_resolve():
    node = ast.parse("from ..plumbing.files import atomic_write").body[0]
    assert resolve("bigramlab.methods.bigrams", node) == ["bigramlab.plumbing.files"]
    node = ast.parse("from . import hub").body[0]
    assert resolve("bigramlab.worlds.loading", node) == ["bigramlab.worlds.hub"]
    node = ast.parse("from .bigram import bigram_model").body[0]
    assert resolve("bigramlab.experiments", node) == ["bigramlab.experiments.bigram"]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    wrong = [(t, line) for t, line, _ in imports(module) if layer(t) > layer(module)]
    assert not wrong, (f"{module} (layer {LAYERS[layer(module)]}) imports from a layer above it: "
                       + ", ".join(f"{t} (line {line})" for t, line in wrong))


def test_methods_take_no_profile_and_touch_no_cache_or_network():
    """The algorithms see tensors and models only: from plumbing they use progress
    bars, the atomic write and the checks of bad input, never profiles, the cache or the
    device/network probe."""
    allowed = {"bigramlab.plumbing", "bigramlab.plumbing.progress", "bigramlab.plumbing.files",
               "bigramlab.plumbing.inputs"}
    for module in MODULES:
        if module.startswith("bigramlab.methods"):
            used = {t for t in GRAPH[module] if layer(t) == 0}
            assert used <= allowed, f"{module} imports {sorted(used - allowed)}"


def test_no_import_cycles():
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in GRAPH[m]:
            if state.get(t) == "open":
                cycle = stack[stack.index(t):] + [t]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in MODULES:
        if m not in state:
            visit(m)


def test_imports_inside_functions_are_optional_dependencies_with_a_reason():
    for module, path in MODULES.items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    where = f"{module} line {sub.lineno}"
                    if module not in LATE_IMPORTS:
                        assert not resolve(module, sub), \
                            f"{where}: import bigramlab modules at the top"
                    assert "#" in lines[sub.lineno - 1], f"{where}: say why this import is here"


def test_no_architecture_branches_outside_the_table_and_the_worlds():
    """Comparisons with, and lookups by, an architecture name belong in the table."""
    for module, path in MODULES.items():
        if module.startswith(ARCH_ALLOWED):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
            elif isinstance(node, ast.Subscript):
                operands = [node.slice]
            elif isinstance(node, ast.Dict):
                operands = [k for k in node.keys if k is not None]
            else:
                continue
            names = {o.value for o in operands if isinstance(o, ast.Constant)} & ARCH_NAMES
            assert not names, (f"{module} line {node.lineno} branches on {names}: read the "
                               "architecture table (methods.architectures) instead")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_are_short_and_say_what_they_are_for(module):
    text = MODULES[module].read_text()
    assert len(text.splitlines()) < 400, f"{module} has {len(text.splitlines())} lines"
    doc = ast.get_docstring(ast.parse(text))
    assert doc, f"{module} has no docstring"
    if not is_package(module) and module.split(".")[1] not in ("checks",):
        assert re.search(r"[Dd]efined\s+in\s+Chapters?\s+\d|no\s+chapter\s+teaches", doc), \
            f"{module}: say which chapter teaches it ('Defined in Chapter N')"
    assert "METHOD.md" not in text, f"{module} cites METHOD.md, which is not in the book"
