"""The Hugging Face Hub: is it reachable, and a clear error when it is not."""

from __future__ import annotations

import os
import socket

HUB_HOST = "huggingface.co"


class HubUnavailableError(RuntimeError):
    """The Hub cannot be reached and the files are not in the local cache."""


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


def require_hub(what: str) -> None:
    """Raise ``HubUnavailableError`` naming ``what`` and the offline fix."""
    if not hub_reachable():
        raise HubUnavailableError(
            f"cannot download {what}: the Hugging Face Hub ({HUB_HOST}) is not reachable "
            "from this machine and the files are not in the local cache. Connect to the "
            "network, or use the offline world: get_profile('tiny') or BIGRAMLAB_PROFILE=tiny.")
