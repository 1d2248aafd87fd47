"""Loading the language models we study, through ``from_pretrained`` in both worlds.

Real profiles load a hub id (``revision="stepN"`` for Pythia checkpoints);
the tiny profiles load a local folder written by ``save_pretrained`` when the
tiny world was built. Same function, same ``from_pretrained`` call.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import (AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel,
                          GPTNeoXConfig, GPTNeoXForCausalLM)

from .devices import default_device
from .profiles import Profile, TinyWorld, get_profile


class UnknownCheckpointError(ValueError):
    """A checkpoint name the profile does not have; lists the valid ones."""


def _check_checkpoint(profile: Profile, checkpoint: str | None) -> str:
    checkpoint = checkpoint or profile.final_checkpoint
    if checkpoint not in profile.checkpoints:
        raise UnknownCheckpointError(
            f"profile {profile.name!r} has no checkpoint {checkpoint!r}; "
            f"valid checkpoints: {', '.join(profile.checkpoints)}")
    return checkpoint


@contextmanager
def _quiet_loading():
    """Silence transformers' per-tensor 'Loading weights' bar (noise in notebooks
    and logs: a tiny model loads in milliseconds); restore the setting after."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _from_hub(loader, model_id: str, **kwargs):
    """``loader.from_pretrained`` from the local HF cache, else from the Hub,
    failing fast with a clear message when the Hub cannot be reached."""
    try:
        return loader.from_pretrained(model_id, local_files_only=True, **kwargs)
    except OSError:
        pass
    from .hub import require_hub
    require_hub(f"{model_id} ({kwargs.get('revision') or 'main'})")
    return loader.from_pretrained(model_id, **kwargs)


def load_tokenizer(profile: Profile | str | None = None):
    """The profile's tokenizer (a ``transformers`` fast tokenizer)."""
    profile = get_profile(profile)
    if profile.is_tiny:
        from .tinyworld import build_tokenizer
        return AutoTokenizer.from_pretrained(build_tokenizer(profile))
    return _from_hub(AutoTokenizer, profile.model_id)


def load_model(profile: Profile | str | None = None, checkpoint: str | None = None,
               device: torch.device | str | None = None):
    """``(model, tokenizer)`` of a profile at ``checkpoint`` (default: the final
    one), in eval mode on ``device`` (default: CUDA when present, else CPU)."""
    profile = get_profile(profile)
    checkpoint = _check_checkpoint(profile, checkpoint)
    with _quiet_loading():
        if profile.is_tiny:
            from .tinyworld import build_lm
            folder = build_lm(profile) / "checkpoints" / checkpoint
            model = AutoModelForCausalLM.from_pretrained(str(folder))
        else:
            kwargs = {"revision": checkpoint} if checkpoint != "main" else {}
            model = _from_hub(AutoModelForCausalLM, profile.model_id, **kwargs)
    model.to(device or default_device()).eval()
    return model, load_tokenizer(profile)


def make_meta_model(profile: Profile | str):
    """A real profile's architecture built from its shape on the ``meta`` device:
    right names and shapes, no weights, no memory, no download (for counting)."""
    profile = get_profile(profile)
    s = profile.shape
    if s is None:
        raise ValueError(f"profile {profile.name!r} has no recorded shape; use load_model")
    world = TinyWorld(n_layer=s.n_layer, d_model=s.d_model, n_head=s.n_head, d_mlp=s.d_mlp)
    with torch.device("meta"):
        return make_model(profile.arch, world, s.vocab_size, 2048 if profile.arch == "gpt_neox"
                          else 1024)


def make_model(arch: str, world: TinyWorld, vocab_size: int, seq_len: int):
    """A freshly initialised model of the given architecture and size (seed it
    first). GPT-NeoX follows Pythia: rotary on 25% of each head, parallel
    attention and MLP, untied embeddings; GPT-2 keeps its tied ones."""
    if arch == "gpt_neox":
        config = GPTNeoXConfig(
            vocab_size=vocab_size, hidden_size=world.d_model, num_hidden_layers=world.n_layer,
            num_attention_heads=world.n_head, intermediate_size=world.d_mlp,
            max_position_embeddings=seq_len, rotary_pct=0.25, use_parallel_residual=True,
            tie_word_embeddings=False, bos_token_id=0, eos_token_id=0)
        return GPTNeoXForCausalLM(config)
    if arch == "gpt2":
        config = GPT2Config(
            vocab_size=vocab_size, n_positions=seq_len, n_embd=world.d_model,
            n_layer=world.n_layer, n_head=world.n_head, n_inner=world.d_mlp,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=0)
        return GPT2LMHeadModel(config)
    from .anatomy import UnsupportedArchitectureError
    raise UnsupportedArchitectureError(f"cannot build a tiny {arch!r} model; use 'gpt_neox' or 'gpt2'")
