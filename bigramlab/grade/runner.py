"""Run one submission in a fresh kernel and grade it with the installed checks.

The notebook is copied into a new temporary folder and executed there cell by
cell, in its own order (nbclient; a Jupyter kernel in its own process group),
in the tiny profile, on the CPU, offline (the Hub's offline switches set,
credentials left out of the environment), with a limit per cell, per notebook
and per check, a cap on the bytes it may print and one on the memory it may
take. A cell that raises is recorded and the next one runs; an exercise whose
own cell raised scores 0 with that error. A cell past its limit, a notebook past
its limit, a kernel that exits, dies or garbles its messages, a notebook that
prints more than the cap or deletes files in its folder stops the run: every
exercise scores 0 with the reason. Then each graded check runs as its own
request (``kernel_step``; interrupted past its limit, and the next one runs),
and only the result file it writes counts. For instructors: no chapter teaches it.
"""

from __future__ import annotations

import ast
import asyncio
import os
import re
import secrets
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from ..plumbing.cache import cache_dir
from .assignments import Assignment, find_cells

#: Environment variables never passed to a student's kernel (their names match).
SECRET_RE = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE", re.I)
SENTINEL = ".bigramlab-grader"
FATAL = ("timeout", "kernel died", "kernel broken", "output flood", "deleted files", "tampered",
         "unreadable", "unknown assignment", "grader error")


@dataclass
class Limits:
    """What one submission may take. Seconds, bytes; None: no limit."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 900.0
    check_timeout: float = 60.0
    max_output_bytes: int = 5 * 2**20
    memory_bytes: int | None = 8 * 2**30


@dataclass
class Outcome:
    """One graded check's result for one submission."""

    id: str
    name: str
    status: str          # correct, wrong, not implemented, missing, error, timeout, not run
    line: str
    score: float
    max_score: float
    cell: int | None = None   # the submission's cell that carries it (None: not found)


@dataclass
class Submission:
    path: Path
    label: str
    assignment: Assignment | None = None
    how: str = ""                    # how the assignment was identified
    status: str = "ok"               # ok, cell errors, or one of FATAL
    reason: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    cell_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    executed: object = None          # the notebook as it ran (outputs capped)
    traceback: str = ""              # the grader's own error, for the instructor

    @property
    def score(self) -> float:
        return sum(o.score for o in self.outcomes)

    @property
    def possible(self) -> float:
        return self.assignment.possible if self.assignment else 0.0


class GuardedClient(NotebookClient):
    """nbclient with an output cap (the kernel is killed past it) and a timeout flag."""

    max_output_bytes: int | None = None

    def __init__(self, nb, **kw):
        super().__init__(nb, **kw)
        self.limit_now: float = 60.0
        self.output_bytes = 0
        self.flooded = False
        self.timed_out = False

    def output(self, outs, msg, display_id, cell_index):
        content = msg.get("content", {})
        size = len(content.get("text", "")) + sum(len(str(v)) for v in
                                                  content.get("data", {}).values())
        size += sum(len(line) for line in content.get("traceback", []))
        self.output_bytes += size
        if self.max_output_bytes is not None and self.output_bytes > self.max_output_bytes:
            if not self.flooded:
                self.flooded = True
                kill_kernel(self)
            return None
        return super().output(outs, msg, display_id, cell_index)

    async def _async_handle_timeout(self, timeout, cell=None):
        self.timed_out = True
        return await super()._async_handle_timeout(timeout, cell)


def kill_kernel(client) -> None:
    """SIGKILL the kernel's whole process group (its children too)."""
    prov = getattr(getattr(client, "km", None), "provisioner", None)
    pgid, pid = getattr(prov, "pgid", None), getattr(prov, "pid", None)
    for target, kill in ((pgid, os.killpg), (pid, os.kill)):
        if target:
            try:
                kill(target, signal.SIGKILL)
                return
            except (ProcessLookupError, PermissionError, OSError):
                continue


def kernel_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not SECRET_RE.search(k)}
    env.update(BIGRAMLAB_PROFILE="tiny", BIGRAMLAB_DEVICE="cpu", CUDA_VISIBLE_DEVICES="",
               HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               TQDM_DISABLE="1", MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1",
               BIGRAMLAB_CACHE=str(cache_dir()))
    return env


def _prelude(limits: Limits) -> str:
    if not limits.memory_bytes:
        return "pass"
    n = int(limits.memory_bytes)
    return ("import resource as _r\n"
            "_h = _r.getrlimit(_r.RLIMIT_DATA)[1]\n"
            f"_n = {n} if _h == _r.RLIM_INFINITY else min({n}, _h)\n"
            "_r.setrlimit(_r.RLIMIT_DATA, (_n, _n))  # soft and hard: the notebook cannot lift it\n"
            "del _r, _h, _n\n")


def _first_error(cell) -> str | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename', 'Error')}: {str(o.get('evalue', ''))[:300]}"
    return None


def _broken_reason(error: Exception, where: str) -> str:
    return (f"the kernel stopped answering properly ({where}: {type(error).__name__}: "
            f"{str(error)[:120]}); did the notebook replace json, the kernel's machinery or "
            "its streams?")


def _read_result(path: Path, nonce: str, gid: str) -> dict | None:
    """The kernel step's result, or None when missing, malformed or not ours."""
    try:
        data = ast.literal_eval(path.read_text(encoding="utf8"))
    except (OSError, ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    keys = ("nonce", "id", "status", "name", "line")
    if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in keys):
        return None
    if data["nonce"] != nonce or data["id"] != gid:
        return None
    return data


class Run:
    """One submission's execution and grading (use ``execute``)."""

    def __init__(self, sub: Submission, nb, limits: Limits, sources: dict, kernel_src: str,
                 extra: dict | None):
        self.sub, self.nb, self.limits = sub, nb, limits
        self.sources, self.kernel_src, self.extra = sources, kernel_src, extra or {}
        self.tmp = Path(tempfile.mkdtemp(prefix="bigramlab-grade-"))
        self.work, self.private = self.tmp / "work", self.tmp / "grader"
        self.work.mkdir()
        self.private.mkdir()
        self.copy = self.work / sub.path.name
        self.client = None
        self.errors: dict[int, str] = {}   # cell index -> the error it raised
        self.asked_exit = False            # a cell called exit(): Jupyter ends the kernel

    def _fatal(self, status: str, reason: str) -> None:
        if self.sub.status not in FATAL:
            self.sub.status, self.sub.reason = status, reason

    def _files_intact(self) -> bool:
        return self.copy.is_file() and (self.work / SENTINEL).is_file()

    async def _cell(self, cell, index: int, limit: float, store_history: bool = True):
        self.client.limit_now, self.client.timed_out = max(limit, 0.1), False
        await self.client.async_execute_cell(cell, index, store_history=store_history)
        return self.client.timed_out

    async def _synthetic(self, source: str, limit: float) -> bool:
        """Run code that is not the student's; True when it ran past ``limit``."""
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        try:
            return await self._cell(cell, len(self.nb.cells) - 1, limit, store_history=False)
        finally:
            self.nb.cells.pop()

    async def _responsive(self) -> bool:
        try:
            return not await self._synthetic("pass", 15.0)
        except (DeadKernelError, CellTimeoutError):
            return False

    async def _student_cells(self, deadline: float) -> bool:
        """Run the student's cells in their order; False when the run must stop."""
        self.client.interrupt_on_timeout = False
        for index, cell in enumerate(list(self.nb.cells)):
            if cell.cell_type != "code" or not cell.source.strip():
                continue
            remaining = deadline - time.monotonic()
            limit = min(self.limits.cell_timeout, remaining)
            try:
                if remaining <= 0:
                    raise CellTimeoutError("no time left")
                await self._cell(cell, index, limit)
            except CellTimeoutError:
                if limit < self.limits.cell_timeout:
                    self._fatal("timeout", f"the notebook ran past its "
                                           f"{self.limits.notebook_timeout:g} s limit "
                                           f"(cell {index})")
                else:
                    self._fatal("timeout", f"cell {index} ran past the {limit:g} s limit per "
                                           "cell (an endless loop?); the notebook was stopped "
                                           "there")
                return False
            if self.asked_exit:
                self._fatal("kernel died", f"the notebook exited its kernel (exit() or quit() "
                                           f"in cell {index}); Jupyter shuts a kernel down then")
                return False
            error = _first_error(cell)
            if error:
                self.errors[index] = error
                self.sub.cell_errors.append(f"cell {index}: {error}")
            if not self._files_intact():
                self._fatal("deleted files", f"the notebook deleted files in its folder (cell "
                                             f"{index} removed the grader's copy of it)")
                return False
        self.client.interrupt_on_timeout = True
        return True

    async def _grade(self, assignment: Assignment) -> None:
        cells = find_cells(self.nb, assignment)
        nonce = secrets.token_hex(16)
        for g in assignment.graded:
            path = self.private / f"{nonce}-{len(self.sub.outcomes)}.txt"
            spec = {"nonce": nonce, "id": g.id, "check": g.check, "args": list(g.args),
                    "result_path": str(path), "sources": self.sources}
            if g.source == "extra":
                spec.update(extra_source=self.extra["source"],
                            extra_filename=self.extra["filename"])
            code = ("__bigramlab_grader = {'__name__': '__bigramlab_grader__'}\n"
                    f"exec(compile({self.kernel_src!r}, 'bigramlab-grader', 'exec'), "
                    "__bigramlab_grader)\n"
                    f"__bigramlab_grader['grade']({spec!r}, globals())\n")
            outcome = Outcome(g.id, g.id, "error", "", 0.0, g.points, cells.get(g.id))
            self.sub.outcomes.append(outcome)
            if cells.get(g.id) in self.errors:
                outcome.line = (f"✗ {g.id}: its cell (cell {cells[g.id]}) raised "
                                f"{self.errors[cells[g.id]]}: fix it so that the cell runs")
                continue
            try:
                timed_out = await self._synthetic(code, self.limits.check_timeout)
            except DeadKernelError:
                outcome.line = "✗ the kernel died while this check ran"
                self._fatal("output flood" if self.client.flooded else "kernel died",
                            self._died_reason(f"grading {g.id}"))
                break
            except Exception as e:  # the kernel's messages are garbled: it is broken
                outcome.line = "✗ the kernel stopped answering properly while this check ran"
                self._fatal("kernel broken", _broken_reason(e, f"grading {g.id}"))
                break
            if timed_out:
                outcome.status = "timeout"
                outcome.line = (f"✗ {g.id}: the check ran past its "
                                f"{self.limits.check_timeout:g} s limit (your function loops "
                                "forever or is very slow)")
                if not await self._responsive():
                    self._fatal("timeout", f"{g.id}: the check ran past its limit and the "
                                           "kernel did not stop when interrupted")
                    break
                continue
            data = _read_result(path, nonce, g.id)
            if data is None:
                outcome.line = f"✗ {g.id}: the grading step left no valid result (score 0)"
                continue
            outcome.name, outcome.status, outcome.line = data["name"], data["status"], data["line"]
            if outcome.status == "correct" and outcome.line.startswith("✓"):
                outcome.score = g.points

    def _executed(self, cell=None, cell_index=None, execute_reply=None, **_) -> None:
        payload = ((execute_reply or {}).get("content") or {}).get("payload") or []
        if any(isinstance(p, dict) and p.get("source") == "ask_exit" for p in payload):
            self.asked_exit = True

    def _died_reason(self, where: str) -> str:
        if self.client is not None and self.client.flooded:
            return (f"the notebook printed more than {self.limits.max_output_bytes / 2**20:g} MB "
                    f"({where}); it was stopped")
        return (f"the kernel exited or died ({where}): exit(), os._exit, a crash, or more memory "
                "than allowed")

    async def _main(self, assignment: Assignment) -> None:
        env = kernel_env()
        log = open(self.private / "kernel.log", "wb")
        self.client = GuardedClient(
            self.nb, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
            error_on_timeout={"ename": "Timeout", "evalue": "the cell ran past its limit",
                              "traceback": []},
            record_timing=False, startup_timeout=120, iopub_timeout=10,
            resources={"metadata": {"path": str(self.work)}})
        self.client.max_output_bytes = self.limits.max_output_bytes
        self.client.on_cell_executed = self._executed
        self.client.timeout_func = lambda cell: self.client.limit_now
        deadline = time.monotonic() + self.limits.notebook_timeout
        try:
            self.client.km = self.client.create_kernel_manager()
            await self.client.async_start_new_kernel(cwd=str(self.work), env=env, stdout=log,
                                                     stderr=log)
            await self.client.async_start_new_kernel_client()
            await self._synthetic(_prelude(self.limits), 60.0)
            try:
                ran = await self._student_cells(deadline)
            except DeadKernelError:
                self._fatal("output flood" if self.client.flooded else "kernel died",
                            self._died_reason("while running the notebook's cells"))
                ran = False
            except Exception as e:  # the kernel's messages are garbled: it is broken
                self._fatal("kernel broken", _broken_reason(e, "while running the notebook's "
                                                                "cells"))
                ran = False
            if ran:
                await self._grade(assignment)
                if not self._files_intact():
                    self._fatal("deleted files", "a function deleted files in the notebook's "
                                                 "folder while it was graded")
        finally:
            await self._shutdown()
            log.close()

    async def _shutdown(self) -> None:
        client = self.client
        try:
            if client.kc is not None:
                client.kc.stop_channels()
            if client.km is not None and client.km.has_kernel:
                await asyncio.wait_for(client.km.shutdown_kernel(now=True), 20)
        except Exception:  # a kernel already gone, or one that does not answer: kill it
            pass
        kill_kernel(client)

    def execute(self, assignment: Assignment) -> None:
        shutil.copyfile(self.sub.path, self.copy)
        (self.work / SENTINEL).write_text("bigramlab grade: do not delete\n")
        try:
            asyncio.run(self._main(assignment))
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)
        self.sub.executed = self.nb
        if self.sub.status in FATAL:
            for o in self.sub.outcomes:
                o.score = 0.0
                if o.status == "correct":
                    o.status, o.line = "not run", f"✗ {o.name}: scored 0: {self.sub.reason}"
            done = {o.id for o in self.sub.outcomes}
            cells = find_cells(self.nb, assignment)
            for g in assignment.graded:
                if g.id not in done:
                    self.sub.outcomes.append(Outcome(g.id, g.id, "not run",
                                                     f"✗ not graded: {self.sub.reason}", 0.0,
                                                     g.points, cells.get(g.id)))
        elif self.sub.cell_errors:
            self.sub.status = "cell errors"
