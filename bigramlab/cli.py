"""The ``bigramlab`` command line: ``info``, ``build``, ``sweep`` and ``grade``.

This module only parses the command line, so that ``bigramlab --help`` answers at
once; the commands themselves (and torch) are imported by ``main`` once a command
is chosen (``commands``). Defined in Chapter 0.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = """\
The command line of the course on bigram subnetworks (Chang & Bergen 2025):
what this machine runs the course with, the offline tiny world, grids of masks
trained in one go, and grading students' exercise notebooks."""

EXAMPLES = """\
examples:
  bigramlab info                      the profile, device and cache in use
  bigramlab build --profile tiny      build (or verify) the offline tiny world
  bigramlab sweep --lambdas 1,10 --status
                                      list a grid of masks and what is done
  bigramlab grade submissions/        grade a folder of exercise notebooks

Run 'bigramlab COMMAND --help' for the options of one command."""

AUTOMATIC = "$BIGRAMLAB_PROFILE, else pythia-70m on a GPU with network, else tiny"


def _profile_parser(sub, name: str, help_: str, description: str) -> None:
    sp = sub.add_parser(name, help=help_, description=description)
    sp.add_argument("--profile", default=None,
                    help=f"a profile name, e.g. tiny or pythia-160m (default: {AUTOMATIC})")


def _sweep_parser(sub) -> None:
    sp = sub.add_parser(
        "sweep", help="train a grid of masks into the shared cache and collect their table",
        description="Train every mask of a grid (profiles x checkpoints x lambdas x targets) "
                    "that is not done yet, measure it (kept entries, r, CE) and write the "
                    "table the figures need. In this process, or one job per mask through "
                    "submitit (a SLURM job array). Resumable: run it again after a crash; a "
                    "finished mask is never trained twice.")
    sp.add_argument("--profiles", help="comma-separated profile names (default: " + AUTOMATIC + ")")
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
    sp.add_argument("--cell-timeout", type=float, default=120.0, help="seconds a cell may run (default: %(default)g)")
    sp.add_argument("--timeout", type=float, default=900.0, help="seconds a notebook may run (default: %(default)g)")
    sp.add_argument("--check-timeout", type=float, default=60.0, help="seconds a check may run (default: %(default)g)")
    sp.add_argument("--max-output-mb", type=float, default=5.0,
                    help="MB of output a notebook may print before it is stopped "
                         "(default: %(default)g)")
    sp.add_argument("--memory-gb", type=float, default=8.0,
                    help="GB of memory a kernel may take (0: no limit; default: %(default)g)")
    sp.add_argument("--jobs", type=int, default=1, help="submissions graded at once (default: %(default)d)")


def parser() -> argparse.ArgumentParser:
    """The parser of the whole command line."""
    top = argparse.ArgumentParser(prog="bigramlab", description=DESCRIPTION, epilog=EXAMPLES,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _profile_parser(sub, "info", "show the profile, device and cache this machine uses",
                    "Show the profile the course runs with here (its model, checkpoints and "
                    "corpus), the device, and the cache folder with what it holds.")
    _profile_parser(sub, "build", "build (or verify) the offline tiny world",
                    "Build the offline tiny world (corpus, tokenizer, tokens, language model) "
                    "into the cache, or verify what is there, and compare the language model "
                    "built here with the one released with the course.")
    _sweep_parser(sub)
    _grade_parser(sub)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .commands import run  # here, not at the top: --help answers without importing torch
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
