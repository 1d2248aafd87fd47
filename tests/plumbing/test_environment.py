"""The version report printed after every notebook's install cell
(``bigramlab.environment_report``, ``bigramlab/plumbing/environment.py``)."""

import re

import pytest
import torch

import bigramlab
from bigramlab.plumbing import environment
from bigramlab.plumbing.environment import VersionMismatchError, check_version, report
from tests.helpers import ROOT


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setenv("BIGRAMLAB_PROFILE", "tiny")
    monkeypatch.delenv("BIGRAMLAB_BUDGET", raising=False)


def test_exported_and_one_version():
    assert bigramlab.environment_report is report
    assert bigramlab.__version__ == environment.__version__


def test_report_on_cpu_prints_versions_device_profile_budget(tiny, capsys):
    report(bigramlab.__version__, device="cpu")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4, out
    assert out[0].startswith(f"bigramlab {bigramlab.__version__} (this book: {bigramlab.__version__}) |")
    assert f"torch {torch.__version__}" in out[0]
    transformers = re.search(r"transformers (\S+)", out[0]).group(1)
    import transformers as hf
    assert transformers == hf.__version__
    assert "MISMATCH" not in out[0]
    assert out[1] == f"device: cpu ({torch.get_num_threads()} threads), no GPU"
    assert out[2] == "profile: tiny (BIGRAMLAB_PROFILE picks another)"
    assert out[3].startswith("budget: tiny (") and "BIGRAMLAB_BUDGET=session" in out[3]


@pytest.mark.parametrize("budget, other", [(None, "paper"), ("session", "paper"), ("paper", "session")])
def test_report_names_a_real_profiles_budget_and_how_to_switch(monkeypatch, capsys, budget, other):
    monkeypatch.setenv("BIGRAMLAB_PROFILE", "pythia-70m")
    if budget is None:
        monkeypatch.delenv("BIGRAMLAB_BUDGET", raising=False)
    else:
        monkeypatch.setenv("BIGRAMLAB_BUDGET", budget)
    report(bigramlab.__version__, device="cpu")
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith(f"budget: {budget or 'session'} (")
    assert f"os.environ['BIGRAMLAB_BUDGET'] = '{other}'" in last


def test_report_on_a_gpu_prints_its_memory(tiny, monkeypatch, capsys):
    gib = 2**30
    monkeypatch.setattr(environment.devices, "describe_device",
                        lambda d: "cuda (Tesla T4, 14.6 GiB)" if d.type == "cuda" else "?")
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda d: (int(13.25 * gib), int(14.6 * gib)))
    report(bigramlab.__version__, device="cuda")
    line = capsys.readouterr().out.splitlines()[1]
    assert line == "device: cuda (Tesla T4, 14.6 GiB), 13.2 of 14.6 GiB GPU memory free"


def test_mismatch_prints_then_raises_naming_the_fix(tiny, capsys):
    with pytest.raises(VersionMismatchError) as err:
        report("9.9.9", device="cpu")
    message = str(err.value)
    assert "\n" not in message
    assert f"expects bigramlab 9.9.9, but bigramlab {bigramlab.__version__} is running" in message
    assert "restart the runtime" in message and "rerun the install cell" in message
    assert "bigramlab==9.9.9" in message
    out = capsys.readouterr().out
    assert "(this book: 9.9.9, MISMATCH)" in out and "device: cpu" in out


def test_installed_but_not_yet_imported_version_raises():
    check_version("1.2.3", running="1.2.3", installed="1.2.3")
    check_version("1.2.3", running="1.2.3", installed=None)  # a source tree, not installed
    with pytest.raises(VersionMismatchError, match=r"bigramlab 1\.2\.4 is installed, but "
                       r"bigramlab 1\.2\.3 is still imported.*restart the runtime"):
        check_version("1.2.3", running="1.2.3", installed="1.2.4")
    with pytest.raises(VersionMismatchError, match=r"expects bigramlab 1\.2\.4, but bigramlab 1\.2\.3"):
        check_version("1.2.4", running="1.2.3", installed="1.2.4")


def test_installed_version_mismatch_fails_the_report(tiny, monkeypatch, capsys):
    real = environment._installed
    monkeypatch.setattr(environment, "_installed",
                        lambda p: "0.0.1" if p == "bigramlab" else real(p))
    with pytest.raises(VersionMismatchError, match="0.0.1 is installed"):
        report(bigramlab.__version__, device="cpu")
    assert "MISMATCH" in capsys.readouterr().out


@pytest.mark.notebooks
def test_nbval_fails_a_notebook_whose_bigramlab_version_differs(tmp_path):
    """The report cell's output is not compared (NBVAL_IGNORE_OUTPUT), but its raise
    still fails nbval: ch00's first two code cells, as stored and with another version."""
    import copy
    import os
    import subprocess
    import sys
    from pathlib import Path

    import nbformat

    root = ROOT
    nb = nbformat.read(root / "chapters" / "ch00_setup.ipynb", as_version=4)
    install, report_cell = [c for c in nb.cells if c.cell_type == "code"][:2]
    version = bigramlab.__version__
    assert f'environment_report("{version}")' in report_cell.source
    for name, v in (("same", version), ("other", "9.9.9")):
        out = nbformat.v4.new_notebook(metadata=nb.metadata)
        out.cells = [copy.deepcopy(install), copy.deepcopy(report_cell)]
        out.cells[1].source = out.cells[1].source.replace(f'"{version}"', f'"{v}"')
        nbformat.write(out, tmp_path / f"{name}.ipynb")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(root), *filter(None, [os.environ.get("PYTHONPATH")])]), "BIGRAMLAB_PROFILE": "tiny"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--nbval", "--nbval-current-env", "same.ipynb", "other.ipynb"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert "FAILED other.ipynb::Cell 1" in done.stdout, done.stdout[-3000:]
    assert "1 failed, 3 passed" in done.stdout, done.stdout[-3000:]
    assert "VersionMismatchError" in done.stdout
