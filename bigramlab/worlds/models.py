"""Fresh language models of a given architecture and size: the tiny world's LMs, the
small random models of the tests and checks, and weightless models of a real
profile's shape on the ``meta`` device (for counting, no download).

GPT-NeoX follows Pythia (rotary on 25% of each head, parallel attention and
MLP, untied embeddings); GPT-2 keeps its tied ones. Defined in Chapter 0.
"""

from __future__ import annotations

import torch
from transformers import GPT2Config, GPT2LMHeadModel, GPTNeoXConfig, GPTNeoXForCausalLM

from ..methods.architectures import ARCHITECTURES, UnsupportedArchitectureError
from ..plumbing.profiles import Profile, TinyWorld, entry_point


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
    raise UnsupportedArchitectureError(f"cannot build a {arch!r} model; bigramlab builds "
                                       f"{', '.join(ARCHITECTURES)}")


@entry_point
def make_meta_model(profile: Profile):
    """A real profile's architecture built from its shape on the ``meta`` device:
    right names and shapes, no weights, no memory, no download (for counting)."""
    s = profile.shape
    if s is None:
        raise ValueError(f"profile {profile.name!r} has no recorded shape; use load_model")
    world = TinyWorld(n_layer=s.n_layer, d_model=s.d_model, n_head=s.n_head, d_mlp=s.d_mlp)
    with torch.device("meta"):
        return make_model(profile.arch, world, s.vocab_size, 2048 if profile.arch == "gpt_neox"
                          else 1024)
