"""What this machine offers: a device for tensors (CUDA, Apple's MPS, else the
CPU) and whether the Hugging Face Hub answers. The two facts the automatic
choice of a profile rests on. Defined in Chapter 0.
"""

from __future__ import annotations

import os
import socket

import torch

HUB_HOST = "huggingface.co"


def default_device() -> torch.device:
    """CUDA when available, else MPS, else CPU. ``$BIGRAMLAB_DEVICE`` overrides."""
    forced = os.environ.get("BIGRAMLAB_DEVICE")
    if forced:
        return torch.device(forced)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def numerics(device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> dict:
    """What decides the last bits of float results on ``device``: the device type,
    the torch build, and on a CPU the SIMD kernel set torch dispatches to
    (``$ATEN_CPU_CAPABILITY`` can lower it), MKL's code path (``$MKL_CBWR``) and
    the thread count; on a GPU its name. Part of the cache key of every trained
    artifact, so a cache is never reused where training would give other bits.

    For a float64 computation (``dtype``) only the device type, the torch build and
    the dtype: its last-bit differences across kernels and thread counts stay far below
    anything a mask or a printed digit can see (the tiny world: tested by
    ``tests/worlds/test_release.py``), so a mask trained on one thread is the one on two."""
    device = torch.device(device) if device is not None else default_device()
    out = {"device": device.type, "torch": torch.__version__}
    if dtype == torch.float64:
        return out | {"dtype": "float64"}
    if device.type == "cpu":
        out.update(kernels=torch.backends.cpu.get_cpu_capability(),
                   mkl_cbwr=os.environ.get("MKL_CBWR", ""), threads=torch.get_num_threads())
    elif device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
    return out


def describe_device(device: torch.device | None = None) -> str:
    """A one-line description, e.g. 'cuda (Tesla T4, 15.0 GiB)' or 'cpu (2 threads)'."""
    device = device or default_device()
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"cuda ({props.name}, {props.total_memory / 2**30:.1f} GiB)"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when huggingface.co answers a TCP connection within ``timeout`` seconds.

    Honours ``HF_HUB_OFFLINE=1``. A short timeout: the point is to fail fast
    on a machine without network instead of hanging inside a download.
    """
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False

