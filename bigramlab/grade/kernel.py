"""The student's kernel: a Jupyter kernel in its own process group, with limits.

``GuardedClient`` is nbclient with a cap on the bytes one cell may print (the
kernel is killed past it) and a flag for a cell that ran past its limit;
``kernel_env`` is the kernel's environment (the tiny profile, the CPU, offline,
no credentials); ``prelude`` caps its memory. For instructors: no chapter teaches it.
"""

from __future__ import annotations

import os
import re
import signal

from nbclient import NotebookClient

from ..plumbing.cache import cache_dir

#: Environment variables never passed to a student's kernel (their names match).
SECRET_RE = re.compile(r"TOKEN|SECRET|PASSW|CREDENTIAL|API_?KEY|ACCESS_?KEY|PRIVATE", re.I)


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


def prelude(memory_bytes: int | None) -> str:
    """Code run before the notebook: the step the grader calls is imported now, before
    any student code (so it holds the real json, torch, safetensors), and the memory
    cap is set."""
    code = "import bigramlab.grade.kernel_step\n"
    if not memory_bytes:
        return code
    n = int(memory_bytes)
    return code + ("import resource as _r\n"
                   "_h = _r.getrlimit(_r.RLIMIT_DATA)[1]\n"
                   f"_n = {n} if _h == _r.RLIM_INFINITY else min({n}, _h)\n"
                   "_r.setrlimit(_r.RLIMIT_DATA, (_n, _n))  # the notebook cannot lift it\n"
                   "del _r, _h, _n\n")
