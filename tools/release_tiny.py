"""Release the tiny world's tokenizer and LM: build them here and copy them into the package.

    python tools/release_tiny.py [--profile tiny]      # or tiny-d32, tiny-d48 (the family)

Pretrains the tiny LM from scratch on this machine (``bigramlab build``'s
``build_world(..., released=False)``, about 2-3 minutes on 2 cores), then
writes ``bigramlab/worlds/tiny/released/<profile>/``: the tokenizer, every
checkpoint's ``config.json``, ``generation_config.json`` and ``model.safetensors``,
the training log, ``RELEASE.json`` (the settings' key and the machine it was built
on) and a ``MANIFEST.json`` of hashes. Every stored notebook output is computed on
these weights: after a new release, re-execute the notebooks
(``make notebooks UPDATE=1``). The tiny family's other sizes (``TINY_FAMILY``) are released
at their final checkpoint only, with a copy of the tiny LM's released tokenizer, which
their tokens are made with (``release.released_tokenizer``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bigramlab import get_profile  # noqa: E402
from bigramlab.plumbing.devices import numerics  # noqa: E402
from bigramlab.worlds.tiny import build, release  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="tiny")
    args = ap.parse_args(argv)
    p = get_profile(args.profile)
    folders = build.build_world(p, released=False)
    report = json.loads((folders["lm"] / "report.json").read_text())
    # the tokenizer the tokens were made with: a matching release's where there is one
    out = release.write_release(p, build.tokenizer_key(p), build.tokenizer_folder(p), folders["lm"],
                                {"built_on": numerics("cpu") | {"machine": platform.machine()},
                                 "train_seconds": report["train_seconds"]})
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"released {p.name} into {out} ({size / 2**20:.1f} MiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
