"""``bigramlab --help`` answers at once: it imports neither torch nor transformers, and
its text is written for users (no reStructuredText, no notes to developers)."""

import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT as REPO

HEAVY = ("torch", "transformers", "datasets", "numpy")


def run_help(*args: str) -> tuple[str, set[str]]:
    """(the help text, the top-level packages imported) of ``python -m <args> --help``."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", *args, "--help"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    # -X importtime writes one line per imported module to stderr: "import time: a | b | name"
    imported = {line.rpartition("|")[2].strip().split(".")[0]
                for line in out.stderr.splitlines() if line.startswith("import time:")}
    assert "argparse" in imported  # the report is there
    return out.stdout, imported


@pytest.mark.parametrize("args", [("bigramlab",), ("bigramlab.cli",),
                                  ("bigramlab", "info"), ("bigramlab", "build"),
                                  ("bigramlab", "sweep"), ("bigramlab", "grade")])
def test_help_imports_no_torch_and_reads_as_help(args):
    text, imported = run_help(*args)
    assert not imported & set(HEAVY), f"--help imported {sorted(imported & set(HEAVY))}"
    assert text.startswith(f"usage: bigramlab{' ' + args[1] if len(args) > 1 else ''} ")
    for raw in ("``", ":func:", ":class:", "resolved here", "Defined in Chapter", "entry point"):
        assert raw not in text, f"help text shows {raw!r}"
    if len(args) == 1 or args[0] == "bigramlab.cli":
        assert all(c in text for c in ("info", "build", "sweep", "grade", "examples:"))
    assert not re.search(r"\bTODO\b", text)


def test_the_commands_still_run_after_the_late_import(tmp_path, monkeypatch, capsys):
    """``main`` imports the commands once one is chosen: an unknown profile is still one
    line naming the valid ones (exit status 2), no traceback."""
    from bigramlab.cli import main

    assert main(["info", "--profile", "nope"]) == 2
    err = capsys.readouterr().err
    assert "valid profiles" in err and "Traceback" not in err
