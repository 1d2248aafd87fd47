"""The ``bigramlab`` command line: ``bigramlab info``, ``bigramlab build``,
``bigramlab sweep`` and ``bigramlab grade``.

An entry point: the ``--profile`` name is resolved here, once. Defined in Chapter 0
(``grade`` is for instructors: ``book/instructors.md``; ``sweep`` for grids of masks
that outgrow one session: ``book/setup.md``, "Sweeps on a cluster").
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
from .experiments.sweep import collect, make_grid, point_status, run_sweep, write_table
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


def _setting(text: str):
    """``name=value`` of ``--set``, the value as an int or float when it is one."""
    name, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"--set {text!r}: use name=value, e.g. --set save_every=50")
    for kind in (int, float):
        try:
            return name.strip(), kind(value)
        except ValueError:
            pass
    return name.strip(), value


def _executor(args, folder: Path):
    """None (in this process) or a submitit executor for --executor local / slurm."""
    if args.executor == "inprocess":
        return None
    try:
        import submitit  # optional: only sweeps run as jobs need it
    except ImportError:
        raise ValueError("--executor local/slurm needs submitit: pip install submitit "
                         "(or pip install 'bigramlab[cluster]')") from None
    ex = submitit.AutoExecutor(folder=folder / "jobs", cluster=args.executor)
    params = dict(timeout_min=args.timeout_min)
    if args.executor == "slurm":
        params.update(gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
                      slurm_array_parallelism=args.array_parallelism,
                      **({"slurm_partition": args.partition} if args.partition else {}),
                      **({"mem_gb": args.mem_gb} if args.mem_gb else {}))
    ex.update_parameters(**params)
    return ex


def _sweep(args) -> int:
    try:  # a bad grid or setting: one line naming the fix, before anything runs
        changes = dict(_setting(s) for s in args.set or [])
        if args.max_steps is not None:
            changes["max_steps"] = args.max_steps
        points = make_grid(args.profiles or get_profile(None).name, args.checkpoints,
                           args.lambdas, args.targets, **changes)
        executor = None if args.status else _executor(args, args.folder)
    except (ValueError, TypeError) as e:
        print(f"bigramlab sweep: {e}", file=sys.stderr)
        return 2
    folder = args.folder
    status = [point_status(p, folder) for p in points]
    print(f"grid: {len(points)} masks; done {status.count('done')}, to run "
          f"{status.count('missing')}; rows in {folder / 'points'}")
    if args.status:
        for p, s in zip(points, status):
            print(f"  {s:<8} {p.label()}")
        return 0
    # a failed job raises here with its log's path; running the sweep again resumes it
    jobs = run_sweep(points, folder, executor, wait=not args.no_wait)
    if args.no_wait:
        ids = ", ".join(str(j.job_id) for j in jobs) or "none"
        print(f"submitted {len(jobs)} jobs ({ids}); logs in {folder / 'jobs'}. Run the same "
              "command again to collect the table (and resubmit whatever did not finish).")
        return 0
    out = write_table(collect(points, folder), args.out or folder / "table.csv")
    print(f"table: {out}")
    return 0


def _sweep_parser(sub) -> None:
    sp = sub.add_parser(
        "sweep", help="train a grid of masks into the shared cache and collect their table",
        description="Train every mask of a grid (profiles x checkpoints x lambdas x targets) "
                    "that is not done yet, measure it (kept entries, r, CE) and write the "
                    "table the figures need. In this process, or one job per mask through "
                    "submitit (a SLURM job array). Resumable: run it again after a crash; a "
                    "finished mask is never trained twice.")
    sp.add_argument("--profiles", help="comma-separated profile names (default: "
                                       "$BIGRAMLAB_PROFILE, else automatic)")
    sp.add_argument("--checkpoints", help="'all', or comma-separated revisions "
                                          "(default: each profile's final one)")
    sp.add_argument("--lambdas", help="comma-separated lambdas, inf/-inf for the endpoints "
                                      "(default: each profile's own sweep)")
    sp.add_argument("--targets", default="bigram", help="comma-separated: bigram, full, "
                                                        "trigram (default: bigram)")
    sp.add_argument("--max-steps", type=int, help="mask-training steps at most "
                                                  "(default: the profile's)")
    sp.add_argument("--set", action="append", metavar="NAME=VALUE",
                    help="any other mask-training setting, e.g. --set save_every=50")
    sp.add_argument("--folder", type=Path, default=Path("bigramlab-sweep"),
                    help="rows, job logs and the table; on a cluster a shared folder "
                         "(default: ./bigramlab-sweep)")
    sp.add_argument("--out", type=Path, help="the table, .csv or .json "
                                             "(default: FOLDER/table.csv)")
    sp.add_argument("--status", action="store_true", help="list the grid and what is done; "
                                                          "train nothing")
    sp.add_argument("--executor", choices=("inprocess", "local", "slurm"), default="inprocess",
                    help="inprocess: one mask after another here; local: submitit subprocesses; "
                         "slurm: a submitit job array (default: inprocess)")
    sp.add_argument("--no-wait", action="store_true", help="submit and exit (slurm, local)")
    sp.add_argument("--partition", help="SLURM partition")
    sp.add_argument("--gpus-per-node", type=int, default=1, help="GPUs per job (default: 1)")
    sp.add_argument("--cpus-per-task", type=int, default=8, help="CPUs per job (default: 8)")
    sp.add_argument("--mem-gb", type=int, help="memory per job, GB")
    sp.add_argument("--timeout-min", type=int, default=24 * 60,
                    help="time limit per job, minutes (default: 1440); a job cut off resumes "
                         "from its saved state when the sweep is run again")
    sp.add_argument("--array-parallelism", type=int, default=16,
                    help="jobs of the array running at once (default: 16)")
    sp.set_defaults(fn=_sweep)


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
    _sweep_parser(sub)
    _grade_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except UnknownProfileError as e:
        print(f"bigramlab: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
