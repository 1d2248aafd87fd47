"""``bigramlab grade``: grade students' exercise notebooks with the course's checks.

- ``assignments``: the exercise metadata (stable ids, checks, points) in the
  notebooks' cells, read from the instructor's reference notebooks;
- ``runner``: one submission, executed on a copy in a fresh kernel, with limits;
  a cell or function that fails costs only its exercise;
- ``judge``: the checks, run in the grader's process on the answers the kernel sends back
  (``wire``: plain data), ``kernel_step``: what the kernel runs, ``kernel``: its limits;
- ``batch``: a class of submissions, the package snapshot, extra checks;
- ``reports``: the class table, Gradescope ``results.json``, feedback.

The students' code runs only in their kernels; the process that decides a score
never runs it. Their kernels can still touch the machine: run grading in a
container when that code is not trusted (``book/instructors.md``).
"""

from .assignments import Assignment, ExerciseMetadataError, Graded, load_references
from .batch import grade
from .runner import Limits, Submission

__all__ = ["Assignment", "ExerciseMetadataError", "Graded", "Limits", "Submission", "grade",
           "load_references"]
