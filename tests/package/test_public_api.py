"""The package's public face: what the chapters use comes from the package root or one
level down (``bigramlab.methods``, ``.experiments``, ``.worlds``, ``.plumbing``), and
``import bigramlab`` stays light (names are imported on first use)."""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import bigramlab

from tests.helpers import ROOT as REPO

PACKAGES = ["bigramlab.methods", "bigramlab.experiments", "bigramlab.worlds",
            "bigramlab.plumbing", "bigramlab.checks", "bigramlab.grade"]


def test_import_bigramlab_imports_no_torch():
    code = ("import sys, bigramlab; heavy = [m for m in ('torch', 'transformers', 'numpy') "
            "if m in sys.modules]; print(heavy, len(bigramlab.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("[] "), out.stdout


def test_every_root_name_is_the_object_of_its_module():
    for name in bigramlab.__all__:
        value = getattr(bigramlab, name)
        if name in bigramlab._EXPORTS:
            module, attr = bigramlab._EXPORTS[name]
            assert value is getattr(importlib.import_module(module), attr), name
    for name in ("train_subnetwork", "BigramModel", "Subnetwork", "get_profile", "load_model",
                 "checks", "environment_report", "__version__"):
        assert name in bigramlab.__all__ or name == "checks", name
    from bigramlab import BigramModel, Subnetwork, checks, train_subnetwork  # noqa: F401
    assert set(bigramlab.__all__) <= set(dir(bigramlab))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        bigramlab.nope  # noqa: B018


@pytest.mark.parametrize("package", PACKAGES)
def test_one_level_down_exports_resolve(package):
    mod = importlib.import_module(package)
    missing = [n for n in mod.__all__ if not hasattr(mod, n)]
    assert not missing, f"{package}.__all__ names what it does not have: {missing}"
    assert len(set(mod.__all__)) == len(mod.__all__), f"{package}.__all__ repeats a name"
    # a name that is also a submodule's would hide the module: import a.b.c as x breaks
    folder = Path(mod.__file__).parent
    shadowed = [n for n in mod.__all__ if (folder / f"{n}.py").exists()
                and not isinstance(getattr(mod, n), type(mod))]
    assert not shadowed, f"{package} exports {shadowed}, which hide its modules of that name"
