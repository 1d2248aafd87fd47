"""Run one submission in a fresh kernel and grade it: the kernel computes, the grader judges.

The notebook is copied into a new temporary folder and executed there cell by
cell, in its own order (nbclient; ``kernel``: a Jupyter kernel in its own
process group, the tiny profile, the CPU, offline, no credentials), with a limit
per cell, per notebook and per check, a cap on the bytes a cell may print and
one on the memory the kernel may take. A cell that raises, runs past its limit,
prints past the cap or ends the kernel is recorded as that cell's error and the
run goes on (a kernel that ended or would not stop is started again and the
notebook's good cells before it run again); an exercise whose own cell failed
scores 0 with that error, the others are graded.

Then each graded check runs here, in the grader's process (``judge``): it picks
its inputs, the student's kernel only calls the student's function on them and
sends back plain data, and the check compares that with bigramlab's own answer.
Each check has its own time limit; a function that loops, crashes the kernel or
floods costs that exercise only. For instructors: no chapter teaches it.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError

from .. import checks
from .assignments import Assignment, find_cells
from .judge import Exchange, Stop, code_for, judge
from .kernel import GuardedClient, kernel_env, kill_kernel, prelude

SENTINEL = ".bigramlab-grader"
#: Statuses that end a submission's run (the exercises not graded yet score 0).
FATAL = ("timeout", "kernel died", "deleted files", "tampered", "unreadable",
         "unknown assignment", "grader error")
#: Of those, the ones that score every exercise 0: the notebook attacked the grader's files.
VOID = ("deleted files", "tampered")
MAX_RESTARTS = 4
#: Tries at starting a kernel that dies before it answers. jupyter_client picks free ports,
#: writes them down and then starts the kernel, which binds them: another process (a second
#: grading job, another notebook run) can take one in between, and the new kernel dies
#: before any of the student's code has run. Starting it again on fresh ports is safe.
START_TRIES = 3


@dataclass
class Limits:
    """What one submission may take. Seconds, bytes; None: no limit."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 900.0
    check_timeout: float = 60.0
    max_output_bytes: int = 5 * 2**20   # per cell, and per check
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


def _first_error(cell) -> str | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return f"{o.get('ename', 'Error')}: {str(o.get('evalue', ''))[:300]}"
    return None


class KernelGone(Exception):
    """The kernel ended, would not stop, or garbled its messages (``why`` says which)."""


class Run:
    """One submission's execution and grading (use ``execute``)."""

    def __init__(self, sub: Submission, nb, limits: Limits, extra: dict | None = None):
        self.sub, self.nb, self.limits, self.extra = sub, nb, limits, extra or {}
        self.tmp = Path(tempfile.mkdtemp(prefix="bigramlab-grade-"))
        self.work, self.private = self.tmp / "work", self.tmp / "grader"
        self.work.mkdir()
        self.private.mkdir()
        self.copy = self.work / sub.path.name
        self.client = None
        self.exchange = Exchange(self.private)
        self.errors: dict[int, str] = {}   # cell index -> the error it raised
        self.skip: set[int] = set()        # cells not run again after a restart
        self.restarts = 0
        self.asked_exit = False            # a cell called exit(): Jupyter ends the kernel
        self.deadline = 0.0

    def _fatal(self, status: str, reason: str) -> None:
        if self.sub.status not in FATAL:
            self.sub.status, self.sub.reason = status, reason

    def _files_intact(self) -> bool:
        return self.copy.is_file() and (self.work / SENTINEL).is_file()

    # ------------------------------------------------------------ the kernel
    async def _run(self, cell, index: int, limit: float, store_history: bool = True) -> bool:
        """Execute ``cell``; True when it ran past ``limit`` (it was interrupted).
        KernelGone when the kernel ended, flooded, or did not stop when interrupted."""
        c = self.client
        c.limit_now, c.timed_out, c.output_bytes, self.asked_exit = max(limit, 0.1), False, 0, False
        try:
            await c.async_execute_cell(cell, index, store_history=store_history)
        except DeadKernelError as e:
            raise KernelGone(self._died("printed more than "
                                        f"{self.limits.max_output_bytes / 2**20:g} MB"
                                        if c.flooded else "the kernel exited or died "
                                        "(exit(), os._exit, a crash, or too much memory)")) from e
        except CellTimeoutError as e:
            raise KernelGone("did not answer in time") from e
        except Exception as e:  # garbled messages: the kernel's machinery was replaced
            raise KernelGone(f"the kernel stopped answering properly ({type(e).__name__}); "
                             "did the notebook replace json or the kernel's streams?") from e
        if c.flooded:
            raise KernelGone(self._died(f"printed more than "
                                        f"{self.limits.max_output_bytes / 2**20:g} MB"))
        if self.asked_exit:
            raise KernelGone("exited its kernel (exit() or quit()); Jupyter shuts a kernel "
                             "down then")
        timed_out = c.timed_out
        if timed_out and not await self._responsive():
            raise KernelGone(f"ran past the {limit:g} s limit and did not stop when "
                             "interrupted")
        return timed_out

    def _died(self, what: str) -> str:
        self.client.flooded = False
        return what

    async def _synthetic(self, source: str, limit: float) -> bool:
        """Run code that is not the student's (not stored in the notebook)."""
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)
        try:
            return await self._run(cell, len(self.nb.cells) - 1, limit, store_history=False)
        finally:
            self.nb.cells.pop()

    async def _responsive(self) -> bool:
        cell = nbformat.v4.new_code_cell("pass")
        self.nb.cells.append(cell)
        try:
            self.client.timed_out = False
            await self.client.async_execute_cell(cell, len(self.nb.cells) - 1,
                                                 store_history=False)
            return not self.client.timed_out
        except Exception:
            return False
        finally:
            self.nb.cells.pop()

    async def _start(self) -> None:
        c = self.client
        for attempt in range(1, START_TRIES + 1):
            c.km, c.kc = c.create_kernel_manager(), None
            await c.async_start_new_kernel(cwd=str(self.work), env=kernel_env(),
                                           stdout=self.log, stderr=self.log)
            try:
                await c.async_start_new_kernel_client()
                break
            except RuntimeError as e:  # nbclient has cleaned up the dead kernel
                # jupyter_client's wording is the only sign of a kernel that died at start
                if "died before replying" not in str(e) or attempt == START_TRIES:
                    raise
                self.log.write(f"bigramlab grade: the kernel died at start ({e}); "
                               f"starting it again ({attempt + 1}/{START_TRIES})\n".encode())
                self.log.flush()
        await self._synthetic(prelude(self.limits.memory_bytes), 60.0)

    async def _restart(self, upto: int) -> bool:
        """A fresh kernel with the good cells before ``upto`` run again; False when the
        notebook used up its restarts or its time."""
        await self._shutdown()
        self.restarts += 1
        if self.restarts > MAX_RESTARTS:
            self._fatal("kernel died", f"the kernel had to be restarted more than "
                                       f"{MAX_RESTARTS} times; the run was stopped")
            return False
        try:
            await self._start()
            return await self._cells(upto=upto)
        except KernelGone as e:
            self._fatal("kernel died", f"the kernel could not be started again: {e}")
            return False

    # ------------------------------------------------------------ the student's cells
    def _cell_failed(self, index: int, error: str) -> None:
        self.errors[index] = error
        self.sub.cell_errors.append(f"cell {index}: {error}")

    async def _cells(self, start: int = 0, upto: int | None = None) -> bool:
        """Run the student's cells from ``start`` (to ``upto``, a replay); False when the
        run must stop."""
        cells = list(self.nb.cells)
        for index in range(start, len(cells) if upto is None else upto):
            cell = cells[index]
            if cell.cell_type != "code" or not cell.source.strip() or index in self.skip:
                continue
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self._fatal("timeout", f"the notebook ran past its "
                                       f"{self.limits.notebook_timeout:g} s limit (cell {index})")
                return False
            limit = min(self.limits.cell_timeout, remaining)
            try:
                timed_out = await self._run(cell, index, limit)
            except KernelGone as e:
                if upto is not None:
                    raise
                self.skip.add(index)
                self._cell_failed(index, f"the cell {e}")
                if not await self._restart(index):
                    return False
                continue
            if upto is not None:
                continue
            if timed_out:
                self.skip.add(index)
                self._cell_failed(index, f"Timeout: the cell ran past the {limit:g} s limit "
                                         "(an endless loop?); it was stopped there")
            elif _first_error(cell):
                self._cell_failed(index, _first_error(cell))
            if not self._files_intact():
                self._fatal("deleted files", f"the notebook deleted files in its folder (cell "
                                             f"{index} removed the grader's copy of it)")
                return False
        return True

    # ------------------------------------------------------------ grading
    async def _ask(self, name: str, args, deadline: float) -> dict:
        """Have the kernel call the student's ``name`` on ``args``; its answer as data."""
        spec, out = self.exchange.request(name, args)
        left = deadline - time.monotonic()
        if left <= 0:
            raise Stop("timeout", "")
        try:
            timed_out = await self._synthetic(code_for(spec), left)
        except KernelGone as e:
            if not await self._restart(self.grading_from):
                raise Stop("died", f"your function {e}; then the run stopped: "
                                   f"{self.sub.reason}") from e
            raise Stop("died", f"your function {e}") from e
        if timed_out:
            raise Stop("timeout", "")
        return self.exchange.answer(spec, out)

    async def _grade(self, assignment: Assignment) -> None:
        cells = find_cells(self.nb, assignment)
        loop = asyncio.get_running_loop()
        self.grading_from = len(self.nb.cells)
        for g in assignment.graded:
            outcome = Outcome(g.id, g.id, "error", "", 0.0, g.points, cells.get(g.id))
            self.sub.outcomes.append(outcome)
            if cells.get(g.id) in self.errors:
                outcome.line = (f"✗ {g.id}: its cell (cell {cells[g.id]}) raised "
                                f"{self.errors[cells[g.id]]}: fix it so that the cell runs")
                continue
            if self.sub.status in FATAL:
                outcome.status, outcome.line = "not run", f"✗ not graded: {self.sub.reason}"
                continue
            check = self.extra[g.check] if g.source == "extra" else getattr(checks, g.check)
            deadline = time.monotonic() + self.limits.check_timeout

            async def ask(name, args, deadline=deadline):
                return await self._ask(name, args, deadline)
            try:
                found = await asyncio.to_thread(judge, check, g.args, ask, loop)
            except Stop as e:
                outcome.status = e.status
                outcome.line = e.line or (f"✗ {g.id}: your function ran past the check's "
                                          f"{self.limits.check_timeout:g} s limit (it loops "
                                          "forever or is very slow)")
                if e.status == "died":
                    outcome.status, outcome.line = "error", f"✗ {g.id}: {e.line}"
                continue
            outcome.name, outcome.status, outcome.line = found.name, found.status, found.line
            if found.correct:
                outcome.score = g.points

    # ------------------------------------------------------------ the whole run
    def _executed(self, cell=None, cell_index=None, execute_reply=None, **_) -> None:
        payload = ((execute_reply or {}).get("content") or {}).get("payload") or []
        if any(isinstance(p, dict) and p.get("source") == "ask_exit" for p in payload):
            self.asked_exit = True

    async def _main(self, assignment: Assignment) -> None:
        self.log = open(self.private / "kernel.log", "wb")
        self.client = GuardedClient(
            self.nb, kernel_name="python3", allow_errors=True, interrupt_on_timeout=True,
            error_on_timeout={"ename": "Timeout", "evalue": "the cell ran past its limit",
                              "traceback": []},
            record_timing=False, startup_timeout=120, iopub_timeout=10,
            resources={"metadata": {"path": str(self.work)}})
        self.client.max_output_bytes = self.limits.max_output_bytes
        self.client.on_cell_executed = self._executed
        self.client.timeout_func = lambda cell: self.client.limit_now
        self.deadline = time.monotonic() + self.limits.notebook_timeout
        try:
            await self._start()
            ran = await self._cells()
            if ran or self.sub.status not in VOID:
                await self._grade(assignment)
            if not self._files_intact():
                self._fatal("deleted files", "a function deleted files in the notebook's "
                                             "folder while it was graded")
        finally:
            await self._shutdown()
            self.log.close()

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
        if self.sub.status in VOID:
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
        if self.sub.status not in FATAL and self.sub.cell_errors:
            self.sub.status = "cell errors"

