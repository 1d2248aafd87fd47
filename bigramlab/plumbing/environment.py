"""What a notebook runs on, printed by the cell right after the install cell of every
notebook: the versions of bigramlab, torch and transformers, the device and
its memory, the profile and its budget; and a loud failure when the bigramlab that runs
is not the version the book was written for (the course's version is also the
``version`` of ``pyproject.toml``; ``tests/book/test_sync.py`` keeps them equal). Defined in Chapter 0.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

import torch

from . import devices, profiles

#: The version of this bigramlab; the one the course's pyproject.toml names.
__version__ = "0.1.0"


class VersionMismatchError(RuntimeError):
    """The running bigramlab is not the version the book expects."""


def _installed(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _fix(expected: str) -> str:
    return (f"fix: restart the runtime (Colab: Runtime > Restart session) and rerun the "
            f"install cell, which installs bigramlab=={expected}; outside Colab, "
            f"`pip install bigramlab=={expected}` (or `pip install -e .` in a checkout of "
            f"the book's v{expected} tag)")


_LOOK_UP = object()


def check_version(expected: str, running: str = __version__, installed=_LOOK_UP) -> None:
    """Raise `VersionMismatchError` unless the running bigramlab is ``expected`` and the
    installed distribution (``installed``, default: read from the package metadata;
    None when bigramlab runs from a source tree without being installed) is the same.

    Two ways to get it wrong: an install of another version (an old notebook, a stale
    pip cache), or a new install while the old bigramlab is still imported (the cell
    ran after ``import bigramlab``): only a restart loads the new one.
    """
    if installed is _LOOK_UP:
        installed = _installed("bigramlab")
    if running != expected:
        raise VersionMismatchError(
            f"this book expects bigramlab {expected}, but bigramlab {running} is running "
            f"(from {Path(__file__).parent.parent}); {_fix(expected)}")
    if installed is not None and installed != running:
        raise VersionMismatchError(
            f"bigramlab {installed} is installed, but bigramlab {running} is still "
            f"imported in this runtime; {_fix(expected)}")


def _budget_line(profile: profiles.Profile) -> str:
    if profile.is_tiny:
        return (f"budget: {profile.budget} (the tiny profile's own; BIGRAMLAB_BUDGET=session "
                "or =paper sets the budget of the real profiles)")
    other = "paper" if profile.budget == "session" else "session"
    why = {"session": "sized to fit a free Colab T4 session",
           "paper": "the paper's full budget"}[profile.budget]
    return (f"budget: {profile.budget} ({why}; os.environ['BIGRAMLAB_BUDGET'] = '{other}' "
            "switches, for the profiles got after it)")


def _device_line(device: torch.device) -> str:
    line = f"device: {devices.describe_device(device)}"
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        return f"{line}, {free / 2**30:.1f} of {total / 2**30:.1f} GiB GPU memory free"
    return f"{line}, no GPU"


def report(expected: str, device: torch.device | str | None = None) -> None:
    """Print the versions, the device and its GPU memory, the profile (``get_profile()``:
    ``$BIGRAMLAB_PROFILE``, else automatic) and its budget, then raise
    `VersionMismatchError` (after printing) when the running bigramlab is not
    ``expected``, the version the notebook was written for."""
    device = torch.device(device) if device is not None else devices.default_device()
    profile = profiles.get_profile(None)
    installed = _installed("bigramlab")
    ok = __version__ == expected and installed in (None, __version__)
    print(f"bigramlab {__version__} (this book: {expected}{'' if ok else ', MISMATCH'}) | "
          f"torch {torch.__version__} | transformers {_installed('transformers')} | "
          f"Python {sys.version.split()[0]}")
    print(_device_line(device))
    print(f"profile: {profile.name} (BIGRAMLAB_PROFILE picks another)")
    print(_budget_line(profile))
    check_version(expected, __version__, installed)
