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


# The authors' releases (github.com/tylerachang/bigram-subnetworks, circuit_loading_utils.py):
# short model name -> (name in the Hugging Face repo, released lambdas, default lambda first).
RELEASED_SUBNETWORKS = {
    "pythia-70m": ("pythia-70m", (10, 1)),
    "pythia-160m": ("pythia-160m", (10, 1)),
    "pythia-410m": ("pythia-410m", (10, 1)),
    "pythia-1b": ("pythia-1b", (100, 10, 1)),
    "gpt2": ("gpt2-small", (10, 1)),
    "gpt2-medium": ("gpt2-medium", (10, 1)),
    "gpt2-large": ("gpt2-large", (100, 10, 1)),
}
_LAMBDA_TAG = {1: "1", 10: "1e1", 100: "1e2"}


def load_released_subnetwork(model_name: str, lam: float | None = None):
    """The authors' released bigram subnetwork of ``model_name`` at sparsity ``lam``.

    ``model_name``: a short name (``pythia-70m``, ``gpt2``) or a hub id
    (``EleutherAI/pythia-70m``, ``openai-community/gpt2``). ``lam``: the
    lambda of the mask training, 1, 10 or 100 where released (default: the
    paper's choice, 10, or 100 for Pythia 1B and GPT-2 large). Read from the
    local Hugging Face cache when there, else downloaded (one byte per
    maskable weight, e.g. 0.8 GB for Pythia 1B, as a numpy bool pickle).
    """
    import huggingface_hub

    from .subnetwork import Subnetwork

    owner, _, short = model_name.rpartition("/")
    short = "gpt2" if short == "gpt2-small" else short
    if short not in RELEASED_SUBNETWORKS or owner not in ("", "EleutherAI", "openai-community"):
        raise ValueError(f"no released bigram subnetwork for {model_name!r}; released for: "
                         f"{', '.join(RELEASED_SUBNETWORKS)}")
    repo_name, lambdas = RELEASED_SUBNETWORKS[short]
    lam = lambdas[0] if lam is None else lam
    if lam not in lambdas:
        raise ValueError(f"no released bigram subnetwork of {short} at lambda {lam!r}; "
                         f"released lambdas: {', '.join(map(str, lambdas))}")
    repo_id = f"tylerachang/bigram-subnetworks-{repo_name}"
    filename = f"subnetwork_dict_lambda{_LAMBDA_TAG[int(lam)]}.pickle"
    try:
        path = huggingface_hub.hf_hub_download(repo_id, filename, local_files_only=True)
    except (OSError, ValueError):  # LocalEntryNotFoundError: not in the cache
        require_hub(f"the bigram subnetwork {repo_id}/{filename}")
        path = huggingface_hub.hf_hub_download(repo_id, filename)
    return Subnetwork.load(path)
