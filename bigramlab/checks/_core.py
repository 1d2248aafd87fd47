"""The machinery every exercise check shares.

Each ``check_*`` function (one module per chapter) takes the student's function, runs it on cases
whose answers bigramlab computes itself, and prints one line:

    ✓ <exercise>: correct
    ✗ <exercise>: not implemented yet
    ✗ <exercise>: <what is wrong, on which input>

It returns a :class:`CheckResult` (truthy iff the answer is right; it also
compares equal to True or False) and never raises, so an unsolved exercise
notebook still runs from top to bottom. A notebook shows nothing for the result
itself, only the printed line. A stub that returns None counts as "not
implemented yet" (the generated exercises replace solutions by ``pass``).
``bigramlab grade`` reads the structured result (``as_dict``) instead of the
printed line.
"""

from __future__ import annotations

import contextvars
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from ..methods.anatomy import maskable_matrices
from ..methods.subnetwork import Subnetwork
from ..plumbing.profiles import TinyWorld
from ..worlds.models import make_model


class Wrong(Exception):
    """What a check found wrong, in words for the student."""


class NotDone(Exception):
    pass


#: Set by ``bigramlab grade`` while it judges: a salt for every case's seed (fresh random
#: inputs each grading run) and no printing. In a notebook: salt 0, the line is printed.
GRADING: contextvars.ContextVar[int | None] = contextvars.ContextVar("grading", default=None)


def rng(seed: int) -> torch.Generator:
    """The generator a check draws its random cases from: ``seed`` in a notebook, a fresh
    seed each grading run (so no answer can be looked up by its input)."""
    salt = GRADING.get()
    return torch.Generator().manual_seed(seed if salt is None else (seed * 1_000_003 + salt)
                                         % 2**62)


def wired(target: str, *args):
    """``target(*args)`` (``"bigramlab.module:name"``), remembering how it was made so that
    the grader can make the same object in a student's kernel (``grade.wire``)."""
    module, _, name = target.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    made = obj(*args)
    made.__bigramlab_wire__ = (target, args)
    return made


def _snapshot(x):
    """A copy of an input, to see later whether the student's function changed it."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    if isinstance(x, Mapping) and not hasattr(x, "__bigramlab_wire__"):
        return {k: _snapshot(v) for k, v in x.items()}
    if isinstance(x, (list, set)):
        return type(x)(_snapshot(v) for v in x) if isinstance(x, list) else set(x)
    return None


def _same(before, x) -> bool:
    if before is None:
        return True
    if isinstance(before, torch.Tensor):
        return (isinstance(x, torch.Tensor) and x.shape == before.shape
                and x.dtype == before.dtype and torch.equal(x, before))
    if isinstance(before, dict):
        return (isinstance(x, Mapping) and set(x) == set(before)
                and all(_same(before[k], x[k]) for k in before))
    if isinstance(before, list):
        return (isinstance(x, list) and len(x) == len(before)
                and all(_same(b, v) for b, v in zip(before, x)))
    return before == x


def call(fn: Callable, *args, inputs: tuple[str, ...] = ()) -> Any:
    """``fn(*args)`` for a check: NotDone for a stub, Wrong when it raised or changed one
    of its inputs in place (the caller, and the notebook's loops, still need them);
    ``inputs`` names the arguments for that message."""
    before = [_snapshot(a) for a in args]
    try:
        out = fn(*args)
    except NotImplementedError as e:  # a student may raise it themselves
        raise NotDone from e
    except Exception as e:  # the student's code failed: say how, don't crash the notebook
        raise Wrong(f"your function raised {type(e).__name__}: {e}") from e
    for i, (b, a) in enumerate(zip(before, args)):
        if not _same(b, a):
            kind = inputs[i] if i < len(inputs) else (
                "mask" if isinstance(b, dict) else "tensor" if isinstance(b, torch.Tensor)
                else type(a).__name__)
            raise Wrong(f"you changed the {kind} you were given (argument {i + 1}) in place; "
                        "copy it first (.clone(), dict(...), set(...)): the caller still "
                        "needs the original")
    if out is None:
        raise NotDone
    return out


#: The three outcomes of a check.
CORRECT, WRONG, NOT_DONE = "correct", "wrong", "not implemented"


@dataclass(frozen=True, eq=False)
class CheckResult:
    """What one check found: ``name`` (e.g. "Exercise 1.1 (count bigrams)"), ``status``
    (CORRECT, WRONG or NOT_DONE) and ``line``, the line it printed.

    Truthy iff correct, and equal to True or False accordingly, so code that treated
    the old boolean results keeps working. In a notebook it displays nothing (its line
    is already printed), so a check cell shows one line, not a stray ``True``.
    """

    name: str
    status: str
    line: str

    @property
    def correct(self) -> bool:
        return self.status == CORRECT

    def __bool__(self) -> bool:
        return self.correct

    def __eq__(self, other) -> bool:
        if isinstance(other, bool):
            return self.correct == other
        if isinstance(other, CheckResult):
            return (self.name, self.status, self.line) == (other.name, other.status, other.line)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.correct)  # equal to a bool, so hashed like one

    def _ipython_display_(self) -> None:
        """Show nothing: IPython then publishes no ``Out[n]`` for a check cell."""

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "line": self.line,
                "correct": self.correct}


def run(name: str, body: Callable[[], None]) -> CheckResult:
    """Run a check's ``body``, print its one line and return the result (never raises
    for the student's mistakes: ``Wrong`` and ``NotDone`` become the line)."""
    try:
        body()
    except NotDone:
        status, line = NOT_DONE, f"✗ {name}: not implemented yet"
    except Wrong as e:
        status, line = WRONG, f"✗ {name}: {e}"
    else:
        status, line = CORRECT, f"✓ {name}: correct"
    if GRADING.get() is None:
        print(line)
    return CheckResult(name, status, line)


def call_on_mask(fn: Callable, mask, *args) -> dict[str, torch.Tensor]:
    """``fn(copy of mask, *args)`` for a mask-editing exercise (4.3, 9.3): the student's
    new mask as a dict name -> bool tensor, or Wrong when ``fn`` changed the mask it
    was given, returned something that is not such a dict, or not exactly the mask's
    matrices."""
    given = {k: v.clone() for k, v in mask.items()}
    got = call(fn, given, *args)
    if not all(torch.equal(given[k], mask[k]) for k in mask):
        raise Wrong("you changed the mask you were given; copy it first (the caller still "
                    "needs the original)")
    try:
        got = {k: torch.as_tensor(v).bool() for k, v in dict(got).items()}
    except Exception as e:
        raise Wrong(f"expected a dict name -> bool tensor, got {type(got).__name__}") from e
    if set(got) != set(mask):
        raise Wrong(f"return every matrix of the mask, no more: "
                    f"{sorted(set(got) ^ set(mask))[0]!r}")
    return got


def expect_equal(got, want, what: str) -> None:
    if isinstance(want, torch.Tensor) or isinstance(got, torch.Tensor):
        got_t, want_t = torch.as_tensor(got), torch.as_tensor(want)
        if got_t.shape != want_t.shape:
            raise Wrong(f"{what}: expected shape {tuple(want_t.shape)}, got {tuple(got_t.shape)}")
        if not torch.allclose(got_t.double(), want_t.double(), rtol=1e-4, atol=1e-6,
                              equal_nan=True):
            raise Wrong(f"{what}: values differ from the expected ones")
        return
    if got != want:
        raise Wrong(f"{what}: expected {want!r}, got {got!r}")


def as_float(got, what: str) -> float:
    """A student's answer as a Python float, or Wrong naming what came instead."""
    try:
        return float(got.detach()) if isinstance(got, torch.Tensor) else float(got)
    except Exception as e:
        raise Wrong(f"{what}: expected a number, got {type(got).__name__}") from e


def as_tensor(got, what: str) -> torch.Tensor:
    """A student's answer as a float64 CPU tensor, or Wrong naming what came instead."""
    try:
        return torch.as_tensor(got).detach().cpu().double()
    except Exception as e:
        raise Wrong(f"{what}: expected a tensor, got {type(got).__name__}") from e
def small_model(arch: str, n_layer: int = 3):
    """A small random model of ``arch``: ``n_layer`` layers x 16, 2 heads, MLP 32, vocabulary 40."""
    torch.manual_seed(0)
    return make_model(arch, TinyWorld(n_layer=n_layer, d_model=16, n_head=2, d_mlp=32), 40,
                      12).eval()


def random_subnetwork(model, seed: int) -> Subnetwork:
    """A random subnetwork of ``model`` with a different density in every matrix."""
    g = rng(seed)
    masks = {}
    for i, m in enumerate(maskable_matrices(model)):  # a different density per matrix
        masks[m.name] = torch.rand(m.shape, generator=g) < (0.05 + 0.1 * i)
    return Subnetwork(masks, "check")
