"""The one dispatch between the two worlds: a profile's model, tokenizer and corpus.

Real profiles load a hub id through ``from_pretrained`` (``revision="stepN"``
for Pythia's checkpoints) and stream their corpus (``hub``); the tiny
profiles load the folders of the tiny world, which they ask for by name from
its one build call (``tiny.build.build_world(profile, stage="lm")``: the
released tiny LM shipped with the package, else built once and cached). Same functions, same ``from_pretrained`` calls, in both worlds.

These take a checked ``Profile``; ``bigramlab.load_model`` and its siblings are the
entry points that accept a profile's name. Defined in Chapter 0.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from ..plumbing.devices import default_device
from ..plumbing.progress import quiet_transformers
from ..plumbing.profiles import Profile
from . import hub
from .tiny.build import build_world
from .tokens import SPLITS, read_split


class UnknownCheckpointError(ValueError):
    """A checkpoint name the profile does not have; lists the valid ones."""


#: How a spliced model is named: "<checkpoint>+embeddings@<donor>" (see ``with_embeddings``).
_SPLICE = "+embeddings@"


def with_embeddings(checkpoint: str, donor: str) -> str:
    """The name of a model that no checkpoint is: ``checkpoint``'s weights with the token
    embedding and the unembedding of ``donor`` (Chang & Bergen 2025, appendix A.4: random
    blocks with trained embeddings is ``with_embeddings("step0", final)``). Pass it wherever
    a checkpoint name goes (``load_model``, ``train_subnetwork``, ``evaluate_subnetwork``);
    it names its own cached masks. Chapter 5."""
    return f"{checkpoint}{_SPLICE}{donor}"


def check_checkpoint(profile: Profile, checkpoint: str | None) -> str:
    """``checkpoint`` (None: the final one) when the profile has it, or a ``with_embeddings``
    name of two checkpoints it has; else a clear error."""
    checkpoint = checkpoint or profile.final_checkpoint
    for part in checkpoint.split(_SPLICE, 1):
        if part not in profile.checkpoints:
            raise UnknownCheckpointError(
                f"profile {profile.name!r} has no checkpoint {part!r}; "
                f"valid checkpoints: {', '.join(profile.checkpoints)}")
    return checkpoint


def load_tokenizer(profile: Profile):
    """The profile's tokenizer (a ``transformers`` fast tokenizer)."""
    if profile.is_tiny:
        return AutoTokenizer.from_pretrained(build_world(profile, stage="tokenizer"))
    return hub.hub_tokenizer(profile)


def load_model(profile: Profile, checkpoint: str | None = None,
               device: torch.device | str | None = None):
    """``(model, tokenizer)`` of a profile at ``checkpoint`` (default: the final
    one), in eval mode on ``device`` (default: CUDA when present, else CPU), its
    weights in the profile's ``weights_dtype`` (fp32; fp16 for Pythia 1B and GPT-2
    large, which are masked in low memory; float64 for the tiny profiles, whose
    released fp32 weights are computed on in float64, the same on every CPU)."""
    checkpoint = check_checkpoint(profile, checkpoint)
    base, *donor = checkpoint.split(_SPLICE, 1)
    model = _from_pretrained(profile, base)
    if donor:  # appendix A.4: another checkpoint's embedding and unembedding put in
        trained = _from_pretrained(profile, donor[0])
        with torch.no_grad():
            for get in ("get_input_embeddings", "get_output_embeddings"):
                getattr(model, get)().weight.copy_(getattr(trained, get)().weight)
    # weights_dtype: fp16 storage for the profiles too large to mask in fp32 on a T4,
    # float64 for the tiny world (bit-stable across CPU kernels)
    model.to(device or default_device()).eval()
    if profile.weights_dtype != "float32":
        model.to(getattr(torch, profile.weights_dtype))
    return model, load_tokenizer(profile)


def _from_pretrained(profile: Profile, checkpoint: str):
    with quiet_transformers():
        if profile.is_tiny:
            folder = build_world(profile, stage="lm") / "checkpoints" / checkpoint
            return AutoModelForCausalLM.from_pretrained(str(folder))
        # in weights_dtype whatever the stored dtype, padding rows dropped (hub_model)
        return hub.hub_model(profile, checkpoint)


def load_corpus(profile: Profile, split: str = "train") -> torch.Tensor:
    """The ``split`` ('train' or 'eval') token ids of a profile's corpus as an
    (n_sequences, seq_len) int64 tensor on the CPU, built once and cached."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    folder = build_world(profile, stage="tokens") if profile.is_tiny else hub.build_corpus(profile)
    return read_split(folder, split)
