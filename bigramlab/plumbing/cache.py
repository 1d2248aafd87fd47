"""An on-disk cache of expensive artifacts, keyed by everything that made them.

Each entry is a folder ``<cache>/<kind>-<key>``. It is built in a sibling
``.partial`` folder and renamed into place only when complete, then a
``MANIFEST.json`` records the size and SHA-256 of every file. An entry whose
manifest is missing or whose files do not match it (a killed build, a
truncated download, a disk error) is treated as corrupt and rebuilt; a
builder that can resume (the tiny LM's pretraining) gets the intact rest
of it back instead of an empty folder. A file that matches the manifest but
cannot be read (``DamagedFileError`` from the loader, see :func:`cached_load`)
also gets its entry rebuilt.

Defined in Chapter 0, which lists what the cache holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock
from platformdirs import user_cache_dir

from .inputs import DamagedFileError

MANIFEST = "MANIFEST.json"


def cache_dir() -> Path:
    """``$BIGRAMLAB_CACHE``, else the user's cache folder (e.g. ~/.cache/bigramlab)."""
    env = os.environ.get("BIGRAMLAB_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(user_cache_dir("bigramlab"))


def short_path(path) -> str:
    """``path`` as a person reads it: under the home folder as ``~/...`` (so a printed
    cache path says where to look without naming the machine's user)."""
    path = Path(path)
    try:
        return str(Path("~") / path.relative_to(Path.home()))
    except ValueError:
        return str(path)


def key_of(*parts) -> str:
    """A short, stable hash of JSON-able parts (dicts, strings, numbers)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def entry_path(kind: str, key: str) -> Path:
    return cache_dir() / f"{kind}-{key}"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path, meta: dict | None = None) -> None:
    """Record every file's size and hash; the entry counts as complete after this."""
    files = {str(p.relative_to(folder)): {"bytes": p.stat().st_size, "sha256": _sha256(p)}
             for p in _files(folder)}
    (folder / MANIFEST).write_text(json.dumps({"meta": meta or {}, "files": files}, indent=1))


def _recorded(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return None


def _problem(folder: Path, rel: str, info: dict) -> str | None:
    p = folder / rel
    if not p.exists():
        return f"missing file {rel}"
    if p.stat().st_size != info["bytes"] or _sha256(p) != info["sha256"]:
        return f"file {rel} does not match its recorded hash"
    return None


def verify(folder: Path) -> str | None:
    """None when ``folder`` is a complete, intact entry; else what is wrong."""
    if not (folder / MANIFEST).exists():
        return "no manifest (the build did not finish)"
    files = _recorded(folder)
    if files is None:
        return "unreadable manifest"
    return next((p for rel, info in files.items() if (p := _problem(folder, rel, info))), None)


def damaged_files(folder: Path) -> list[str] | None:
    """The files of ``folder`` that are missing or differ from its manifest
    (relative paths); None when there is no readable manifest to tell."""
    files = _recorded(folder)
    if files is None:
        return None
    return [rel for rel, info in files.items() if _problem(folder, rel, info)]


def cached(kind: str, key: str, build: Callable[[Path], dict | None], *,
           verbose: bool = True, resumable: bool = False) -> Path:
    """The folder of entry ``kind-key``, building it with ``build(partial_dir)`` if
    it is absent or corrupt. ``build`` writes its files into the folder it gets and
    may return metadata for the manifest. A ``.partial`` folder left by a killed
    build is handed to ``build`` again, so builders that save progress can resume.

    ``resumable``: a corrupt entry is not deleted but handed back to ``build`` as
    a partial folder, less the files that differ from the manifest (with the
    manifest lost, nothing is removed): ``build`` must check what it reuses.
    """
    final = entry_path(kind, key)
    if final.exists() and verify(final) is None:
        return final
    locks = final.parent / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    # One builder at a time per entry: two processes (pytest-xdist workers, a notebook
    # and its solutions) that need the same entry wait for the first to finish it.
    with FileLock(str(locks / f"{final.name}.lock")):
        return _build_locked(final, build, verbose, resumable)


def _build_locked(final: Path, build, verbose: bool, resumable: bool) -> Path:
    partial = final.with_name(final.name + ".partial")
    if final.exists():
        problem = verify(final)
        if problem is None:
            return final
        if verbose:
            what = "resuming its build from the intact files" if resumable else "rebuilding it"
            print(f"bigramlab: cache entry {final} is corrupt ({problem}); {what}")
        if resumable:
            for rel in damaged_files(final) or []:
                (final / rel).unlink(missing_ok=True)
            (final / MANIFEST).unlink(missing_ok=True)
            shutil.rmtree(partial, ignore_errors=True)
            final.rename(partial)
        else:
            shutil.rmtree(final)
    partial.mkdir(parents=True, exist_ok=True)
    meta = build(partial)
    write_manifest(partial, meta)
    partial.rename(final)
    return final


def cached_load(kind: str, key: str, build: Callable[[Path], dict | None],
                load: Callable[[Path], object], *, verbose: bool = True):
    """``load(folder)`` of entry ``kind-key`` (built by :func:`cached` if needed).
    When ``load`` raises ``DamagedFileError`` (a file that matches the manifest
    but cannot be read: damaged before the manifest was written, or the manifest
    rewritten), the entry is reported as damaged, rebuilt and loaded again."""
    folder = cached(kind, key, build, verbose=verbose)
    try:
        return load(folder)
    except DamagedFileError as e:
        if verbose:
            print(f"bigramlab: cache entry {folder} is damaged ({e.path.name} cannot be read, "
                  "although it matches the manifest); rebuilding it")
        shutil.rmtree(folder)
    return load(cached(kind, key, build, verbose=verbose))


def list_entries() -> list[dict]:
    """What the cache holds: kind, key, size in MiB, and whether it is intact."""
    root = cache_dir()
    if not root.exists():
        return []
    rows = []
    for p in sorted(root.iterdir()):
        if not p.is_dir() or p.name.startswith("."):  # .locks: not an entry
            continue
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        state = "partial" if p.name.endswith(".partial") else (
            "ok" if verify(p) is None else "corrupt")
        rows.append({"entry": p.name, "MiB": round(size / 2**20, 1), "state": state})
    return rows
