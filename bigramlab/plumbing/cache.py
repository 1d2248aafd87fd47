"""An on-disk cache of expensive artifacts, keyed by everything that made them.

Each entry is a folder ``<cache>/<kind>-<key>``. It is built in a sibling
``.partial`` folder and renamed into place only when complete, then a
``MANIFEST.json`` records the size and SHA-256 of every file. An entry whose
manifest is missing or whose files do not match it (a killed build, a
truncated download, a disk error) is treated as corrupt and rebuilt.

Defined in Chapter 0, which lists what the cache holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from platformdirs import user_cache_dir

MANIFEST = "MANIFEST.json"


def cache_dir() -> Path:
    """``$BIGRAMLAB_CACHE``, else the user's cache folder (e.g. ~/.cache/bigramlab)."""
    env = os.environ.get("BIGRAMLAB_CACHE")
    if env:
        return Path(env).expanduser()
    return Path(user_cache_dir("bigramlab"))


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


def verify(folder: Path) -> str | None:
    """None when ``folder`` is a complete, intact entry; else what is wrong."""
    manifest = folder / MANIFEST
    if not manifest.exists():
        return "no manifest (the build did not finish)"
    try:
        files = json.loads(manifest.read_text())["files"]
    except (ValueError, KeyError):
        return "unreadable manifest"
    for rel, info in files.items():
        p = folder / rel
        if not p.exists():
            return f"missing file {rel}"
        if p.stat().st_size != info["bytes"] or _sha256(p) != info["sha256"]:
            return f"file {rel} does not match its recorded hash"
    return None


def cached(kind: str, key: str, build: Callable[[Path], dict | None], *,
           verbose: bool = True) -> Path:
    """The folder of entry ``kind-key``, building it with ``build(partial_dir)`` if
    it is absent or corrupt. ``build`` writes its files into the folder it gets and
    may return metadata for the manifest. A ``.partial`` folder left by a killed
    build is handed to ``build`` again, so builders that save progress can resume.
    """
    final = entry_path(kind, key)
    if final.exists():
        problem = verify(final)
        if problem is None:
            return final
        if verbose:
            print(f"bigramlab: cache entry {final} is corrupt ({problem}); rebuilding it")
        shutil.rmtree(final)
    partial = final.with_name(final.name + ".partial")
    partial.mkdir(parents=True, exist_ok=True)
    meta = build(partial)
    write_manifest(partial, meta)
    partial.rename(final)
    return final


def list_entries() -> list[dict]:
    """What the cache holds: kind, key, size in MiB, and whether it is intact."""
    root = cache_dir()
    if not root.exists():
        return []
    rows = []
    for p in sorted(root.iterdir()):
        if not p.is_dir():
            continue
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
        state = "partial" if p.name.endswith(".partial") else (
            "ok" if verify(p) is None else "corrupt")
        rows.append({"entry": p.name, "MiB": round(size / 2**20, 1), "state": state})
    return rows
