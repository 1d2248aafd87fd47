"""``bigramlab grade``: grade students' exercise notebooks with the course's checks.

- ``assignments``: the exercise metadata (stable ids, checks, points) in the
  notebooks' cells, read from the instructor's reference notebooks;
- ``runner``: one submission, executed on a copy in a fresh kernel, with limits,
  then graded by one request per check;
- ``kernel_step``: the grading step sent into the kernel (never imported here);
- ``batch``: a class of submissions, the package snapshot, extra checks;
- ``reports``: the class table, Gradescope ``results.json``, feedback.

Grading runs the students' code: run it in a container when that code is not
trusted (``book/instructors.md``).
"""

from .assignments import Assignment, ExerciseMetadataError, Graded, load_references
from .batch import grade
from .runner import Limits, Submission

__all__ = ["Assignment", "ExerciseMetadataError", "Graded", "Limits", "Submission", "grade",
           "load_references"]
