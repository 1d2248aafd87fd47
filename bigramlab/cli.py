"""The ``bigramlab`` command line: ``bigramlab info``, ``bigramlab build`` and
``bigramlab grade``.

An entry point: the ``--profile`` name is resolved here, once. Defined in Chapter 0
(``grade`` is for instructors: ``book/instructors.md``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .plumbing.cache import cache_dir, list_entries, short_path
from .plumbing.devices import describe_device
from .grade import ExerciseMetadataError, Limits, grade
from .plumbing.profiles import UnknownProfileError, get_profile
from .worlds.loading import load_corpus
from .worlds.tiny.build import build_world
from .worlds.tiny.release import compare as compare_release


def _info(args) -> int:
    p = get_profile(args.profile)
    print(f"bigramlab {__version__}")
    print(f"profile:  {p.name} ({p.model_id or 'tiny world, built locally'}; arch {p.arch})")
    print(f"          checkpoints {p.checkpoints[0]} .. {p.final_checkpoint} "
          f"({len(p.checkpoints)}), corpus {p.corpus.path}, seq_len {p.seq_len}")
    print(f"device:   {describe_device()}")
    print(f"cache:    {short_path(cache_dir())}")
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
    folders = build_world(p, released=False)
    for stage, folder in folders.items():
        print(f"{stage:<10} {folder}")
    released = build_world(p, stage="lm")
    if released == folders["lm"]:
        return 0  # nothing released for these settings: the chapters use this build
    d = compare_release(folders["lm"], released, p.final_checkpoint, load_corpus(p, "eval"))
    print(f"\nThe chapters read the tiny LM released with the course ({released}), not this "
          f"build.\nThis build against it at {p.final_checkpoint}: weights differ by up to "
          f"{d['max_rel_weight_diff']:.1e} (relative); training loss of the last 100 steps "
          f"{d['built_last100_loss']:.4f} vs {d['released_last100_loss']:.4f} nats; eval "
          f"cross-entropy {d['built_eval_ce']:.4f} vs {d['released_eval_ce']:.4f} nats.\n"
          "Identical on the machine that made the release; on another CPU the last digits "
          "of pretraining differ and grow over its 1,500 steps.")
    return 0


def _grade(args) -> int:
    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.timeout,
                    check_timeout=args.check_timeout,
                    max_output_bytes=int(args.max_output_mb * 2**20),
                    memory_bytes=int(args.memory_gb * 2**30) if args.memory_gb else None)
    try:
        subs = grade(args.submissions, args.out, reference=args.reference,
                     assignment=args.assignment, extra=args.extra, limits=limits, jobs=args.jobs)
    except (FileNotFoundError, ExerciseMetadataError, ValueError) as e:
        print(f"bigramlab grade: {e}", file=sys.stderr)
        return 2
    if not subs:
        print("bigramlab grade: no submissions found", file=sys.stderr)
        return 2
    return 1 if any(s.status == "grader error" for s in subs) else 0


def _grade_parser(sub) -> None:
    sp = sub.add_parser(
        "grade", help="grade students' exercise notebooks (runs their code: use a container)",
        description="Run each submission in a fresh kernel (tiny profile, CPU, offline) and "
                    "score its exercises with the course's checks, called by the grader on the "
                    "student's objects. Writes grades.csv, and results.json (Gradescope) and "
                    "feedback.md per submission. Exit status 0 unless the grader itself fails.")
    sp.add_argument("submissions", nargs="+", type=Path,
                    help="exercise notebooks, or folders of them")
    sp.add_argument("--out", type=Path, default=Path("grades"),
                    help="folder for the reports (default: ./grades)")
    sp.add_argument("--reference", type=Path, action="append",
                    help="the instructor's exercise (or solution) notebooks, a folder or a file "
                         "(default: the course's exercises/ folder); may be repeated")
    sp.add_argument("--assignment", help="grade every submission as this notebook, e.g. "
                                         "ch01_exercises (default: found from its cells)")
    sp.add_argument("--extra", type=Path, help="a Python file of instructor-only checks "
                                               "(EXERCISES and its check functions)")
    sp.add_argument("--cell-timeout", type=float, default=120.0, help="seconds per cell")
    sp.add_argument("--timeout", type=float, default=900.0, help="seconds per notebook")
    sp.add_argument("--check-timeout", type=float, default=60.0, help="seconds per check")
    sp.add_argument("--max-output-mb", type=float, default=5.0,
                    help="output a notebook may print before it is stopped")
    sp.add_argument("--memory-gb", type=float, default=8.0,
                    help="memory a kernel may take (0: no limit)")
    sp.add_argument("--jobs", type=int, default=1, help="submissions graded at once")
    sp.set_defaults(fn=_grade)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bigramlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, fn, help_ in [("info", _info, "profile, device, cache folder and its contents"),
                            ("build", _build, "build (or verify) the offline tiny world")]:
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--profile", default=None,
                        help="profile name (default: $BIGRAMLAB_PROFILE, else automatic)")
        sp.set_defaults(fn=fn)
    _grade_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except UnknownProfileError as e:
        print(f"bigramlab: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
