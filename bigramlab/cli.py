"""The ``bigramlab`` command line: ``bigramlab info`` and ``bigramlab build``.

An entry point: the ``--profile`` name is resolved here, once. Defined in Chapter 0.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .plumbing.cache import cache_dir, list_entries
from .plumbing.devices import describe_device
from .plumbing.profiles import UnknownProfileError, get_profile
from .worlds.tiny.build import build_world


def _info(args) -> int:
    p = get_profile(args.profile)
    print(f"bigramlab {__version__}")
    print(f"profile:  {p.name} ({p.model_id or 'tiny world, built locally'}; arch {p.arch})")
    print(f"          checkpoints {p.checkpoints[0]} .. {p.final_checkpoint} "
          f"({len(p.checkpoints)}), corpus {p.corpus.path}, seq_len {p.seq_len}")
    print(f"device:   {describe_device()}")
    print(f"cache:    {cache_dir()}")
    entries = list_entries()
    if not entries:
        print("          (empty)")
    for e in entries:
        print(f"          {e['entry']:<40} {e['MiB']:>8.1f} MiB  {e['state']}")
    return 0


def _build(args) -> int:
    p = get_profile(args.profile)
    if not p.is_tiny:
        print(f"'bigramlab build' makes the offline tiny world; {p.name!r} loads from the Hub "
              "on first use instead.", file=sys.stderr)
        return 2
    for stage, folder in build_world(p).items():
        print(f"{stage:<10} {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bigramlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_ in [("info", _info, "profile, device, cache folder and its contents"),
                            ("build", _build, "build (or verify) the offline tiny world")]:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--profile", default=None,
                        help="profile name (default: $BIGRAMLAB_PROFILE, else automatic)")
        sp.set_defaults(fn=fn)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except UnknownProfileError as e:
        print(f"bigramlab: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
