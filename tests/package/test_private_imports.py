"""No module reaches into another module's private names (read with ``ast``).

A name with a leading underscore (``_loaded``, ``_LAMBDA_TAG``) is private to the module
that defines it; a module with a leading underscore (``checks._core``) is private to its
package. Every ``import`` / ``from ... import`` of bigramlab/ and tools/, and every
attribute read through an imported bigramlab module (``hub._LAMBDA_TAG``), is checked:
what another module needs is given a public name, or moved. Likewise no module reads
another object's private attributes (``x._name`` with ``x`` not ``self``/``cls``), but
for the few listed in ``OBJECT_PRIVATE_OK`` with their reasons.
"""

import ast
from pathlib import Path

from tests.helpers import ROOT as REPO

SCANNED = ("bigramlab", "tools")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


FILES = {module_name(p): p for top in SCANNED for p in sorted((REPO / top).rglob("*.py"))}


def absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import reads from."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if FILES[module].name == "__init__.py" else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def trespass(importer: str, dotted: str) -> str | None:
    """The private part of ``dotted`` (a module, or a module's attribute) that
    ``importer`` may not use, or None. A private component is visible to the module
    it names (``x._y``: to ``x``'s own code) and, for a private module, to the rest
    of its package."""
    parts = dotted.split(".")
    if parts[0] not in SCANNED:
        return None
    for i, part in enumerate(parts):
        if not is_private(part):
            continue
        owner = ".".join(parts[:i])  # the module or package that holds the private part
        owner_is_package = owner in FILES and FILES[owner].name == "__init__.py"
        inside = importer == owner or (owner_is_package and importer.startswith(owner + "."))
        if not inside:
            return ".".join(parts[: i + 1])
    return None


def violations(module: str, source: str) -> list[str]:
    tree = ast.parse(source)
    found, bound = [], {}  # bound: local name -> the bigramlab module it names
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if (bad := trespass(module, a.name)):
                    found.append(f"line {node.lineno}: import {bad}")
                if a.name.split(".")[0] in SCANNED:
                    bound[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            source_module = absolute(module, node)
            for a in node.names:
                dotted = f"{source_module}.{a.name}"
                if (bad := trespass(module, dotted)):
                    found.append(f"line {node.lineno}: from {source_module} import {a.name}")
                if dotted in FILES:
                    bound[a.asname or a.name] = dotted
    for node in ast.walk(tree):  # hub._LAMBDA_TAG through ``from bigramlab.worlds import hub``
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and bound.get(node.value.id) and is_private(node.attr)
                and (bad := trespass(module, f"{bound[node.value.id]}.{node.attr}"))):
            found.append(f"line {node.lineno}: {node.value.id}.{node.attr} ({bad})")
    return found


def test_the_scan_sees_the_files_and_the_rule():
    assert "bigramlab.experiments.necessity" in FILES and "tools.standin" in FILES
    assert violations("bigramlab.experiments.necessity",
                      "from .subnetworks import _loaded, train_subnetwork")
    assert violations("tools.standin", "from bigramlab.worlds.hub import _LAMBDA_TAG")
    assert violations("bigramlab.grade.judge", "from ..checks import _core")
    assert violations("bigramlab.grade.judge", "from bigramlab.checks._core import run")
    assert violations("tools.x", "from bigramlab.worlds import hub\nhub._LAMBDA_TAG")
    # a package's private module is its own; dunders and private aliases are fine
    assert not violations("bigramlab.checks.ch01", "from ._core import run, Wrong as _Wrong")
    assert not violations("bigramlab", "from .plumbing.environment import __version__")
    assert not violations("bigramlab.worlds.loading", "import numpy._core\nfrom os import _exit")


def test_no_module_imports_another_modules_private_names():
    found = [f"{m} {v}" for m, p in FILES.items() for v in violations(m, p.read_text())]
    assert not found, ("private names used outside their module (give them a public name, "
                       "or move them):\n  " + "\n  ".join(found))


# ---------------------------------------------------------------- attributes of objects
#: Reads of an object's private attribute that stay: (module, attribute) -> why.
OBJECT_PRIVATE_OK = {
    ("bigramlab.methods.subnetwork", "_masks"): "Subnetwork.__eq__ reads the other Subnetwork's",
    ("bigramlab.methods.subnetwork", "_reconstruct"): "numpy's pickle path (the released masks)",
    ("bigramlab.methods.subnetwork", "_frombuffer"): "numpy's pickle path (the released masks)",
    ("bigramlab.explorers", "_live"): "the explorer module sets its own Explorer's hook",
    ("bigramlab.grade.kernel", "_async_handle_timeout"): "nbclient's timeout hook, overridden",
}


def object_trespasses(module: str, source: str) -> list[str]:
    """``x._name`` where ``x`` is not ``self`` / ``cls``: another object's private state
    (the trigram model once read its bigram model's ``_row_of`` and ``_light_len``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and is_private(node.attr) and not (
                isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            if (module, node.attr) not in OBJECT_PRIVATE_OK:
                found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_the_object_scan_sees_a_reach_into_another_object():
    assert object_trespasses("bigramlab.methods.trigrams", "self.bigram._row_of[b]")
    assert object_trespasses("bigramlab.methods.trigrams", "model._store._light_len")
    assert not object_trespasses("bigramlab.methods.trigrams", "self._store.row_probs(rows)")


def test_no_module_reads_another_objects_private_state():
    found = [f"{m} {v}" for m, p in FILES.items() if m.startswith("bigramlab")
             for v in object_trespasses(m, p.read_text())]
    assert not found, ("private attributes of another object read (give the owner a public "
                       "method):\n  " + "\n  ".join(found))
