"""Checks for the exercises of Chapter 2 (inside the Transformer).

Each check builds small GPT-NeoX and GPT-2 models with random weights (no
download, no tiny world needed) and compares the student's function with
bigramlab's own answer: ``anatomy.count_maskable``, ``MaskableMatrix.part``
and ``residual.logit_lens``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..methods.anatomy import architecture, count_maskable, maskable_matrices
from ..methods.residual import final_layer_norm, hidden_states, logit_lens, unembedding
from ..plumbing.profiles import TinyWorld
from ..worlds.models import make_model
from ._core import CheckResult, Wrong, call, rng, run

_WORLD = dict(n_layer=2, d_model=32, n_head=4, d_mlp=64)
_VOCAB, _SEQ = 40, 12


def _model(arch: str, seed: int = 0, **world):
    torch.manual_seed(seed)
    return make_model(arch, TinyWorld(**(_WORLD | world)), _VOCAB, _SEQ).eval()


def _tensor(got, what: str) -> torch.Tensor:
    try:
        return torch.as_tensor(got).detach().cpu()
    except Exception as e:
        raise Wrong(f"{what}: expected a tensor, got {type(got).__name__}") from e


def _same(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), rtol=tol, atol=tol)


# ---------------------------------------------------------------------------
# Exercise 2.1: count the maskable parameters


def check_count_maskable(fn: Callable) -> CheckResult:
    """Exercise 2.1: ``fn(model)`` -> number of maskable weight entries of a
    GPT-NeoX or GPT-2 model (the four weight matrices of every block)."""

    def body():
        for arch in ("gpt_neox", "gpt2"):
            model = _model(arch, d_mlp=48)   # attention and MLP of different sizes
            want = count_maskable(model)
            got = call(fn, model)
            try:
                got = int(got)
            except Exception as e:
                raise Wrong(f"expected an int, got {type(got).__name__}") from e
            if got == want:
                continue
            names = {m.name for m in maskable_matrices(model)}
            params = dict(model.named_parameters())
            biases = sum(params[n.removesuffix("weight") + "bias"].numel() for n in names
                         if n.removesuffix("weight") + "bias" in params)
            total = sum(p.numel() for p in model.parameters())
            unembed = model.get_output_embeddings().weight.numel()
            tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
            linear = sum(m.weight.numel() for m in model.modules()
                         if isinstance(m, torch.nn.Linear))
            where = f"on a small {arch} model"
            if got == total:
                raise Wrong(f"{where} you counted every parameter ({total:,}); embeddings, "
                            "unembedding, layer norms and biases are never masked")
            if got == want + biases:
                raise Wrong(f"{where} you counted the biases of the four block matrices too: "
                            "only their weights are masked, biases are always kept")
            if not tied and got == want + unembed:
                raise Wrong(f"{where} you counted the unembedding ({unembed:,} entries): it is "
                            "an nn.Linear too, but it is never masked")
            if architecture(model).stores_in_out and got == linear:
                raise Wrong(f"{where} you counted nn.Linear weights, but GPT-2's block weights "
                            "are transformers' Conv1D modules (its only nn.Linear is the tied "
                            "unembedding): select the matrices by name")
            mats = maskable_matrices(model)
            attention = sum(m.numel for m in mats if m.role in ("qkv", "o"))
            if got == attention:
                raise Wrong(f"{where} you counted the attention matrices only; the MLP's two "
                            "matrices of every block are maskable too")
            if got == want - attention:
                raise Wrong(f"{where} you counted the MLP matrices only; the attention's "
                            "query_key_value and output matrices are maskable too")
            norms = sum(p.numel() for n, p in params.items() if ("norm" in n or ".ln_" in n)
                        and (".layers." in n or ".h." in n))
            if got in (want + norms, want + norms // 2):
                raise Wrong(f"{where} you counted the layer norms' parameters too: they are "
                            "never masked, only the four weight matrices of every block")
            layers = 1 + max(m.layer for m in mats)
            if layers > 1 and got * layers == want:
                raise Wrong(f"{where} you counted one block; count the matrices of every "
                            f"block ({layers} here)")
            embed = model.get_input_embeddings().weight.numel()
            if got == want + embed or got == want + embed + (0 if tied else unembed):
                raise Wrong(f"{where} you counted the embeddings too: they are never masked, "
                            "only the four weight matrices of every block")
            raise Wrong(f"{where}: expected {want:,} maskable entries, got {got:,}")
    return run("Exercise 2.1 (count maskable parameters)", body)


# ---------------------------------------------------------------------------
# Exercise 2.2: one head's rows of GPT-NeoX's query_key_value


def check_head_slice(fn: Callable) -> CheckResult:
    """Exercise 2.2: ``fn(weight, head, kind, n_heads)`` -> the (head_size, d_model)
    rows of ``kind`` ('q', 'k' or 'v') for ``head`` in a GPT-NeoX
    ``query_key_value`` weight (3 * d_model, d_model)."""

    def body():
        for n_head in (4, 2):
            model = _model("gpt_neox", n_head=n_head)
            mat = next(m for m in maskable_matrices(model) if m.role == "qkv")
            weight = dict(model.named_parameters())[mat.name].detach()
            hs, d = mat.head_size, weight.shape[1]
            for head in range(n_head):
                for kind in "qkv":
                    want = weight[mat.part(kind, head)].reshape(hs, d)
                    what = f"head_slice(weight, head={head}, kind={kind!r}, n_heads={n_head})"
                    got = _tensor(call(fn, weight.clone(), head, kind, n_head), what)
                    if _same(got, want):
                        continue
                    if _same(got, want.T):
                        raise Wrong(f"{what}: you returned the transpose, shape {tuple(got.shape)};"
                                    f" GPT-NeoX weights are nn.Linear (out, in): return rows, "
                                    f"shape ({hs}, {d})")
                    if got.shape == (3 * hs, d):
                        together = ("you returned the head's q, k and v rows together; "
                                    if _same(got, weight[3 * head * hs:3 * (head + 1) * hs])
                                    else "")
                        raise Wrong(f"{what}: {together}{3 * hs} rows, 3 * head_size: "
                                    f"head_size is d_model / n_heads = weight.shape[1] // "
                                    f"n_heads = {hs} (weight.shape[0] is 3 * d_model); return "
                                    f"the {hs} rows of {kind!r}")
                    if got.shape == (weight.shape[0], hs):
                        raise Wrong(f"{what}: you sliced columns; nn.Linear stores (out, in), "
                                    f"and q, k and v are outputs: slice rows, shape ({hs}, {d})")
                    if got.shape != want.shape:
                        raise Wrong(f"{what}: expected shape ({hs}, {d}), got {tuple(got.shape)}")
                    j = "qkv".index(kind)
                    if _same(got, weight[(j * n_head + head) * hs:(j * n_head + head + 1) * hs]):
                        raise Wrong(
                            f"{what}: you sliced query_key_value as [Q all heads | K | V]. That "
                            "is GPT-2's c_attn layout (and the paper's public helper's mistake); "
                            "GPT-NeoX groups the rows per head: [q_0 k_0 v_0 | q_1 k_1 v_1 | ...]")
                    for h2 in range(n_head):
                        for k2 in "qkv":
                            if _same(got, weight[mat.part(k2, h2)].reshape(hs, d)):
                                raise Wrong(f"{what}: you returned head {h2}'s {k2!r} rows "
                                            f"instead of head {head}'s {kind!r} rows")
                    raise Wrong(f"{what}: values differ from head {head}'s {kind!r} rows")
    return run("Exercise 2.2 (slice one head out of query_key_value)", body)


# ---------------------------------------------------------------------------
# Exercise 2.3: the logit lens at one layer and position


def _randomize_layer_norms(model) -> None:
    """Fresh models have layer norms with weight 1 and bias 0, under which applying one
    twice changes almost nothing; random ones make that mistake visible."""
    gen = rng(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name or ".ln_" in name:
                p.copy_(1.0 + 0.5 * torch.randn(p.shape, generator=gen) if name.endswith("weight")
                        else 0.5 * torch.randn(p.shape, generator=gen))


def check_logit_lens_at(fn: Callable) -> CheckResult:
    """Exercise 2.3: ``fn(model, input_ids, layer, position)`` -> the (vocab,) logits
    of the logit lens at hidden state ``layer`` (0 = embedding, L = last block's
    output, before the final layer norm) and ``position`` of a (1, seq) batch."""

    def body():
        for arch in ("gpt_neox", "gpt2"):
            model = _model(arch, seed=2)
            _randomize_layer_norms(model)
            ids = torch.randint(0, _VOCAB, (1, _SEQ), generator=rng(3))
            hidden = hidden_states(model, ids)
            lens = logit_lens(model, hidden)[:, 0]               # (L + 1, seq, vocab)
            n_layers = hidden.shape[0] - 1
            for layer, pos in [(0, 3), (1, 0), (1, 7), (n_layers, 5), (n_layers, _SEQ - 1)]:
                what = f"logit_lens_at(model, ids, layer={layer}, position={pos}) on a small {arch}"
                got = _tensor(call(fn, model, ids.clone(), layer, pos), what)
                want = lens[layer, pos]
                if _same(got, want):
                    continue
                if got.shape == lens[layer].shape:
                    raise Wrong(f"{what}: you returned every position ({tuple(got.shape)}); "
                                f"return the logits at position {pos} only, shape "
                                f"{tuple(want.shape)}")
                if got.numel() == want.numel() and got.shape != want.shape:
                    got = got.reshape(want.shape)
                    if _same(got, want):
                        raise Wrong(f"{what}: right values, but return shape {tuple(want.shape)}")
                if got.shape != want.shape:
                    raise Wrong(f"{what}: expected vocab logits of shape {tuple(want.shape)}, "
                                f"got {tuple(got.shape)}")
                with torch.no_grad():
                    no_norm = unembedding(model)(hidden[layer, 0, pos])
                    twice = unembedding(model)(final_layer_norm(model)(
                        final_layer_norm(model)(hidden[layer, 0, pos])))
                if layer == n_layers and _same(got, twice):
                    raise Wrong(f"{what}: you applied the final layer norm twice. Hugging Face's "
                                "last output_hidden_states entry is already after the final layer "
                                "norm; the lens of the last layer is the model's own logits")
                if _same(got, no_norm):
                    raise Wrong(f"{what}: apply the final layer norm before the unembedding")
                if _same(got, torch.log_softmax(want, -1)) or _same(got, torch.softmax(want, -1)):
                    raise Wrong(f"{what}: return the logits themselves, not (log-)probabilities")
                if layer != n_layers and _same(got, lens[n_layers, pos]):
                    raise Wrong(f"{what}: those are the model's own output logits (the last "
                                f"layer); read hidden state {layer}")
                for p2 in (pos - 1, pos + 1):
                    if 0 <= p2 < _SEQ and _same(got, lens[layer, p2]):
                        raise Wrong(f"{what}: you read position {p2}; the lens at position "
                                    f"{pos} is hidden_states[{layer}][0, {pos}]")
                for other in (layer - 1, layer + 1):
                    if 0 <= other <= n_layers and _same(got, lens[other, pos]):
                        raise Wrong(f"{what}: you read layer {other}: hidden state 0 is the "
                                    f"embedding, hidden state l the output of block l - 1")
                raise Wrong(f"{what}: values differ from unembed(ln_f(h_{layer})) at that position")
    return run("Exercise 2.3 (logit lens at one position)", body)
