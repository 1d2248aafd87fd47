"""The residual stream: reading it (hidden states per layer, what each block
writes, the logit lens) and intervening on it (a head that writes nothing,
weight entries set to zero).

The residual stream of a model with L blocks is the sequence of hidden states
``h_0, ..., h_L`` (each of shape (batch, seq, d_model), in the model's own
activation units): ``h_0`` is the input embedding (GPT-2 adds its position
embedding; Pythia's rotary positions live inside attention), and block ``l``
adds its attention and MLP outputs to ``h_l`` to give ``h_{l+1}``:

- GPT-NeoX / Pythia (``use_parallel_residual``):
  ``h_{l+1} = h_l + attn(ln1(h_l)) + mlp(ln2(h_l))``;
- GPT-2 (sequential): ``a = attn(ln1(h_l))``, ``h_{l+1} = h_l + a + mlp(ln2(h_l + a))``.

The model's logits are ``unembed(ln_f(h_L))``. Following the paper (Chang &
Bergen 2025, section 5), ``h_L`` is the state *before* the final layer norm. Hugging Face's
``output_hidden_states`` returns L + 1 states whose last one is *after* it
(for both GPT-NeoX and GPT-2), so :func:`hidden_states` takes ``h_L`` from a
hook on the final layer norm's input instead.

The logit lens {nostalgebraist 2020} reads any ``h_l`` as a prediction:
``unembed(ln_f(h_l))``. Where the blocks, the attention output projection,
the MLP and the final norm are comes from the architecture table; the
heatmap of the lens is ``display.plot_lens_heatmap``. Defined in Chapter 2.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import torch
from torch import nn

from .precision import upcast
from .architectures import architecture
from .masks import masked


def _device(model) -> torch.device:
    return next(model.parameters()).device


def blocks(model) -> nn.ModuleList:
    """The Transformer blocks of a supported model, in order."""
    return architecture(model).blocks_of(model)


def final_layer_norm(model) -> nn.Module:
    """The final layer norm, applied to ``h_L`` before the unembedding."""
    return architecture(model).final_norm_of(model)


def unembedding(model) -> nn.Module:
    """The unembedding (d_model -> vocab logits): Pythia's own matrix, GPT-2's tied embedding."""
    return model.get_output_embeddings()


@torch.no_grad()
def hidden_states(model, input_ids: torch.Tensor,
                  attention_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The residual stream: a (L + 1, batch, seq, d_model) float tensor on the
    model's device, ``[h_0, ..., h_L]``, with ``h_L`` taken *before* the final
    layer norm (Chang & Bergen 2025, section 5).

    ``input_ids`` is (batch, seq) or (seq,) (then batch = 1). Computed without
    gradients: this reads the stream, it does not train through it."""
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    device = _device(model)
    captured = []
    handle = final_layer_norm(model).register_forward_pre_hook(
        lambda module, args: captured.append(args[0]))
    try:
        out = model.base_model(input_ids.to(device), use_cache=False, output_hidden_states=True,
                               attention_mask=None if attention_mask is None
                               else attention_mask.to(device))
    finally:
        handle.remove()
    n_blocks = len(blocks(model))
    if len(out.hidden_states) != n_blocks + 1 or len(captured) != 1:
        raise RuntimeError(f"expected {n_blocks + 1} hidden states and one call of the final "
                           f"layer norm, got {len(out.hidden_states)} and {len(captured)}")
    # out.hidden_states[l] is the input of block l for l < L; the last entry is ln_f(h_L).
    return torch.stack([*out.hidden_states[:-1], captured[0]])


def logit_lens(model, hidden: torch.Tensor) -> torch.Tensor:
    """Logits (unnormalised, natural-log scale) of the logit lens:
    ``unembed(ln_f(h))`` for every vector in ``hidden`` (..., d_model) ->
    (..., vocab). On ``hidden_states(model, ids)`` the last layer gives the
    model's own logits."""
    with torch.no_grad():
        return unembedding(model)(final_layer_norm(model)(hidden.to(_device(model))))


@torch.no_grad()
def residual_writes(model, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """What each block adds to the residual stream: ``{"attn": ..., "mlp": ...}``,
    each (L, batch, seq, d_model), such that
    ``hidden_states(...)[l + 1] == hidden_states(...)[l] + attn[l] + mlp[l]``.
    Also ``"mlp_in"``: the MLP's input (after its layer norm), (L, batch, seq, d_model)."""
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    spec = architecture(model)
    attn, mlp, mlp_in, handles = [], [], [], []
    for block in spec.blocks_of(model):
        # the attention's output projection (with its bias) is what attention writes
        o_proj, block_mlp = spec.attn_out_of(block), spec.mlp_of(block)
        handles.append(o_proj.register_forward_hook(lambda m, a, out: attn.append(out)))
        handles.append(block_mlp.register_forward_hook(lambda m, a, out: mlp.append(out)))
        handles.append(block_mlp.register_forward_pre_hook(lambda m, a: mlp_in.append(a[0])))
    try:
        model.base_model(input_ids.to(_device(model)), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return {"attn": torch.stack(attn), "mlp": torch.stack(mlp), "mlp_in": torch.stack(mlp_in)}


@torch.no_grad()
def _lens_batches(model, input_ids: torch.Tensor, batch_size: int):
    """Per batch of sequences: (surprisal in bits, top-1 token) of the logit lens at
    every layer, each (L + 1, batch, seq - 1), on the CPU. One layer's logits
    (batch, seq, vocab) at a time, so memory stays at one model output."""
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    for start in range(0, input_ids.shape[0], batch_size):
        ids = input_ids[start:start + batch_size].to(_device(model))
        hidden = hidden_states(model, ids)
        target = ids[:, 1:, None]
        bits, top = [], []
        for layer in range(hidden.shape[0]):
            logp = torch.log_softmax(upcast(logit_lens(model, hidden[layer, :, :-1])), dim=-1)
            bits.append(-logp.gather(-1, target)[..., 0].cpu() / math.log(2))
            top.append(logp.argmax(-1).cpu())
        yield torch.stack(bits), torch.stack(top)


def lens_surprisal(model, input_ids: torch.Tensor, batch_size: int = 8) -> torch.Tensor:
    """Surprisal in **bits** of the actual next token under the logit lens at
    every layer: a (L + 1, batch, seq - 1) float tensor on the CPU; entry
    [l, b, i] is ``-log2 softmax(unembed(ln_f(h_l)))[input_ids[b, i + 1]]`` at
    position i. Layer L is the model's own surprisal. Probabilities: ``2 ** -s``."""
    return torch.cat([bits for bits, _ in _lens_batches(model, input_ids, batch_size)], dim=1)


def lens_stats(model, input_ids: torch.Tensor, batch_size: int = 8) -> list[dict]:
    """One row per layer l = 0..L of the logit lens over every next-token position
    of ``input_ids`` (batch, seq): ``surprisal_bits`` (mean surprisal of the
    actual next token, bits), ``top1_acc`` (share of positions whose top-1 token
    is the actual next token, 0-1) and ``agrees_with_model`` (share whose top-1
    token is the full model's own top-1, 0-1)."""
    bits, top = map(lambda xs: torch.cat(xs, dim=1),
                    zip(*_lens_batches(model, input_ids, batch_size)))
    ids = input_ids if input_ids.dim() == 2 else input_ids[None]
    target = ids[:, 1:].cpu()
    return [dict(layer=layer, surprisal_bits=float(bits[layer].double().mean()),
                 top1_acc=float((top[layer] == target).double().mean()),
                 agrees_with_model=float((top[layer] == top[-1]).double().mean()))
            for layer in range(bits.shape[0])]


def lens_top_tokens(model, tokenizer, input_ids: torch.Tensor) -> list[dict]:
    """One row per position of a single sequence: the input token, the actual
    next token, and the logit lens's top-1 token at every layer (``L0`` = the
    embedding, ``L{n}`` = after block n; the last column is the model's own
    prediction). Tokens are shown with ``repr`` so spaces are visible."""
    ids = input_ids.reshape(-1)
    top = logit_lens(model, hidden_states(model, ids)).argmax(-1)[:, 0].cpu()  # (L + 1, seq)

    def show(i: int) -> str:
        return repr(tokenizer.decode([int(i)]))
    rows = []
    for pos in range(len(ids)):
        row = {"pos": pos, "token": show(ids[pos]),
               "next": show(ids[pos + 1]) if pos + 1 < len(ids) else ""}
        row |= {f"L{layer}": show(top[layer, pos]) for layer in range(top.shape[0])}
        rows.append(row)
    return rows


@contextmanager
def zero_head_output(model, layer: int, head: int):
    """Within the ``with`` block, attention head ``head`` of block ``layer`` writes
    nothing: its slice of the attention output (the input of the output projection,
    ``head_size`` columns per head) is set to zero by a forward pre-hook."""
    spec = architecture(model)
    o_proj = spec.attn_out_of(spec.blocks_of(model)[layer])
    hs = spec.head_size(model.config)

    def hook(module, args):
        x = args[0].clone()
        x[..., head * hs:(head + 1) * hs] = 0
        return (x, *args[1:])
    handle = o_proj.register_forward_pre_hook(hook)
    try:
        yield model
    finally:
        handle.remove()


def zeroed(model, entries: dict[str, torch.Tensor]):
    """A context manager: within the ``with`` block, the parameter entries selected by
    each bool mask in ``entries`` (parameter name -> bool tensor of the parameter's
    shape) are zero; the original values are restored on exit. Built on
    ``masks.masked`` (it keeps everything else)."""
    params = dict(model.named_parameters())
    for name, mask in entries.items():  # check everything before changing anything
        if name not in params:
            raise KeyError(f"the model has no parameter {name!r}")
        if tuple(mask.shape) != tuple(params[name].shape):
            raise ValueError(f"mask for {name} has shape {tuple(mask.shape)}, "
                             f"the parameter {tuple(params[name].shape)}")
    return masked(model, {name: ~mask.to(dtype=torch.bool) for name, mask in entries.items()})
