"""The judge: the course's checks, run in the grader's own process on a student's functions.

A check (``bigramlab.checks``, or an instructor's ``--extra`` file) takes the
student's function and calls it on cases it chose (fresh random ones each
grading run: ``checks._core.rng``, plus its fixed edge cases), then compares
what came back with bigramlab's own answer. Here the check gets a ``Remote``
instead of the function: calling it writes the inputs as plain data
(``wire``), asks the student's kernel to call the function of that name on
them (``kernel_step``), and reads back what it returned, what it raised, and
the inputs as they are afterwards (an input changed in place is changed here
too, so the check sees it). No student code runs in this process: what comes
back is data, read with JSON and safetensors, never unpickled. For instructors:
no chapter teaches it.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import secrets
import time
from pathlib import Path

import torch

from ..checks import GRADING, CheckResult, wired
from . import wire


class Stop(BaseException):
    """The kernel could not answer for this exercise (past its time limit, dead, or the
    function is not defined). A BaseException, so that no check turns it into a wrong
    answer: it ends the check, and the grader scores it."""

    def __init__(self, status: str, line: str):
        super().__init__(line)
        self.status, self.line = status, line


def _raised(name: str, message: str) -> Exception:
    """An exception that reads like the student's own (its class name and message)."""
    name = name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,60}", str(name)) else "Error"
    return type(name, (Exception,), {})(str(message)[:500])


def mirror(arg, after) -> None:
    """Apply to ``arg`` what the student's function did to its copy in the kernel."""
    if isinstance(arg, torch.Tensor) and isinstance(after, torch.Tensor):
        if after.shape == arg.shape and after.dtype == arg.dtype:
            arg.copy_(after)
        else:   # the check sees a different tensor: any mismatch is enough
            arg.data = after.to(arg.dtype) if after.shape == arg.shape else after
    elif isinstance(arg, dict) and isinstance(after, dict):
        for k in list(arg):
            if k not in after:
                del arg[k]
        for k, v in after.items():
            if k in arg and isinstance(arg[k], (torch.Tensor, dict, list, set)):
                mirror(arg[k], v)
            else:
                arg[k] = v
    elif isinstance(arg, list) and isinstance(after, list):
        arg[:] = after
    elif isinstance(arg, set) and isinstance(after, set):
        arg.clear()
        arg.update(after)


class Remote:
    """Stands for the student's function ``name``; calling it asks the kernel."""

    def __init__(self, name: str, ask, loop: asyncio.AbstractEventLoop):
        self.name, self.ask, self.loop = name, ask, loop
        self.__name__ = name

    def __call__(self, *args):
        got = asyncio.run_coroutine_threadsafe(self.ask(self.name, args), self.loop).result()
        status = got.get("status") if isinstance(got, dict) else None
        for arg, after in zip(args, (got or {}).get("after") or []):
            mirror(arg, after)
        if status == "returned":
            return got.get("value")
        if status == "not implemented":
            raise NotImplementedError
        if status == "missing":
            raise Stop("missing", f"✗ `{self.name}` is not defined in the notebook")
        if status == "raised":
            name, message = (list(got.get("error") or []) + ["Error", ""])[:2]
            raise _raised(name, message)
        raise Stop("error", "✗ the kernel's answer was not readable (score 0)")


def fixture(name: str):
    """An object the grader makes itself (``@name`` in the metadata)."""
    if name == "@tokenizer":
        return wired("bigramlab:load_tokenizer", "tiny")
    raise KeyError(name)


def judge(check, arg_names, ask, loop) -> CheckResult:
    """Run ``check`` here, on Remotes for the student's functions (call in a thread:
    each Remote waits for the event loop ``loop``, which talks to the kernel)."""
    args = [fixture(n) if n.startswith("@") else Remote(n, ask, loop) for n in arg_names]

    def work():
        GRADING.set(secrets.randbits(40))
        return check(*args)
    return contextvars.copy_context().run(work)


class Exchange:
    """Files the grader and the kernel pass inputs and answers through."""

    def __init__(self, folder: Path):
        self.folder, self.count = folder, 0

    def request(self, name: str, args) -> tuple[dict, Path]:
        self.count += 1
        base = self.folder / f"call-{self.count}"
        inp, out = base.with_suffix(".in"), base.with_suffix(".out")
        out.unlink(missing_ok=True)
        wire.write(inp, list(args), strict=True)
        spec = {"fn": name, "inp": str(inp), "out": str(out), "nonce": secrets.token_hex(8)}
        return spec, out

    @staticmethod
    def answer(spec: dict, out: Path) -> dict | None:
        try:
            got = wire.read(out)
        except (OSError, wire.WireError):
            return None
        if not isinstance(got, dict) or got.get("nonce") != spec["nonce"]:
            return None
        return got


def code_for(spec: dict) -> str:
    return ("import bigramlab.grade.kernel_step as __bigramlab_step\n"
            f"__bigramlab_step.call({spec!r})\n"
            "del __bigramlab_step\n")


def remaining(deadline: float) -> float:
    return deadline - time.monotonic()
