"""`bigramlab grade`: a kernel that dies as it starts is started again.

jupyter_client picks free ports, writes them down, then starts the kernel, which
binds them; another process (a second grading job, an nbval run beside it) can
take one in between, and the kernel dies before it answers. That once graded a
whole submission "grader error", 0/7, in a full test run. Here the kernel is
really killed before its first answer (the death the race causes), once and then
every time: once costs nothing, every time is a clear grader error, not a hang.
"""

from __future__ import annotations

import pytest

from bigramlab.grade import Limits, grade, runner
from bigramlab.grade.kernel import GuardedClient, kill_kernel
from tests.helpers import grading as fx


def _kill_at_start(monkeypatch, times: int) -> list[int]:
    """Kill the first ``times`` kernels before they answer; the list gets one item per
    kernel started."""
    original = GuardedClient.async_start_new_kernel_client
    starts = []

    async def dying(self):
        starts.append(1)
        if len(starts) <= times:
            kill_kernel(self)             # SIGKILL, as a failed bind ends the kernel
            await self.km.provisioner.wait()
        return await original(self)

    monkeypatch.setattr(GuardedClient, "async_start_new_kernel_client", dying)
    return starts


@pytest.mark.slow
@pytest.mark.notebooks
def test_a_kernel_that_dies_at_start_is_started_again(monkeypatch, tmp_path):
    starts = _kill_at_start(monkeypatch, times=1)
    sub, = grade([fx.write(fx.student(right="all", trim=True), tmp_path / "s.ipynb")],
                 tmp_path / "out", limits=Limits(cell_timeout=300))
    assert sub.status == "ok", sub.reason
    assert {o.id: o.score for o in sub.outcomes} == {"ch01-1.1": 2, "ch01-1.2": 2,
                                                      "ch01-1.3": 1, "ch01-1.4": 2}
    assert len(starts) == 2


@pytest.mark.slow
@pytest.mark.notebooks
def test_a_kernel_that_always_dies_at_start_is_a_grader_error(monkeypatch, tmp_path):
    starts = _kill_at_start(monkeypatch, times=99)
    sub, = grade([fx.write(fx.exercise_nb(), tmp_path / "s.ipynb")], tmp_path / "out")
    assert sub.status == "grader error" and "died before replying" in sub.reason
    assert len(starts) == runner.START_TRIES
    assert sub.score == 0   # its row in the class table is left blank, marked "grader error"
