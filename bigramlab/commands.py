"""What the ``bigramlab`` commands do (``cli`` parses the command line and calls
:func:`run`): ``info``, ``build``, ``sweep`` and ``grade``. A ``--profile`` name is
resolved here, once, with ``get_profile``. Defined in Chapter 0 (``grade`` is for
instructors: ``book/instructors.md``; ``sweep`` for grids of masks that outgrow one
session: ``book/setup.md``, "Sweeps on a cluster").
"""

from __future__ import annotations

import sys
from pathlib import Path

from .experiments.sweep import collect, make_grid, point_status, run_sweep, write_table
from .grade import ExerciseMetadataError, Limits, grade
from .plumbing.cache import cache_dir, list_entries, short_path
from .plumbing.devices import describe_device
from .plumbing.environment import __version__
from .plumbing.profiles import UnknownProfileError, get_profile
from .worlds.loading import load_corpus
from .worlds.tiny.build import build_world
from .worlds.tiny.release import compare as compare_release

__all__ = ["run"]


def run(args) -> int:
    """Run the command ``args.command`` with the parsed ``args``; its exit status."""
    commands = {"info": _info, "build": _build, "sweep": _sweep, "grade": _grade}
    try:
        return commands[args.command](args)
    except UnknownProfileError as e:
        print(f"bigramlab: {e}", file=sys.stderr)
        return 2


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
