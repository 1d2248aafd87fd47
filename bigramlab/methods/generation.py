"""Text generation: one sampler for the bigram model and for any (masked) causal LM.

Chang & Bergen 2025, section 6.3 (Table 4), generate text from the full model,
its bigram subnetwork and the model with the subnetwork removed: from a
prompt, each next token is drawn from the model's next-token distribution
p raised to the power 1 / T and renormalised, until prompt + generated reach
128 tokens (no top-k, no top-p, no stop at an end-of-text token). Raising p
to 1 / T and renormalising is the same distribution as softmax(logits / T),
because p = softmax(logits): p_i^(1/T) / sum_j p_j^(1/T) = exp(l_i / T) /
sum_j exp(l_j / T). T = 0 means greedy decoding (the most probable token;
ties to the lowest id).

Everything goes through one loop, :func:`sample_tokens`, driven by a *step*:
a callable that takes the tokens appended since its last call (the prompt
first) and returns the next-token probabilities of every row, so that a model
with a key-value cache never recomputes the prefix. The bigram model's step
reads one row of its table (``bigrams.bigram_generate``); a causal LM's step
runs the model (:func:`lm_generate`; inside ``Subnetwork.apply`` it is the
masked model). Sampling happens on the generator's device (CPU by default)
in float64, so a seed gives the same text whichever device the model is on.

* :func:`tempered` - p^(1/T), renormalised or not; the one-hot argmax at T = 0.
* :func:`sample_next` - one token per row from probabilities (temperature,
  optional top-k / top-p, a seeded ``torch.Generator``).
* :func:`sample_tokens` - the loop; :func:`lm_generate` - a causal LM's text.
* :func:`top_token_share` - how much of a text is its most frequent token (a
  collapse into one repeated token shows as a share near 1).

Defined in Chapter 8 (Chapter 1's bigram samples use the same loop).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from ..plumbing.inputs import check_causal_lm, check_int, check_real, check_token_ids

__all__ = ["tempered", "sample_next", "sample_tokens", "lm_generate", "top_token_share"]


def _check_sampling(temperature, top_k, top_p, where: str) -> None:
    check_real("temperature", temperature, 0, float("inf"), hi_open=True, where=where,
               why="0 is greedy decoding; the paper samples at 0.3")
    if top_k is not None:
        check_int("top_k", top_k, 1, where=where, why="keep the k most probable tokens; "
                  "None keeps all, as the paper does")
    if top_p is not None:
        check_real("top_p", top_p, 0, 1, lo_open=True, where=where,
                   why="keep the most probable tokens up to this total probability; None "
                   "keeps all, as the paper does")


def tempered(probs: torch.Tensor, temperature: float, normalize: bool = True) -> torch.Tensor:
    """probs^(1/T) over the last axis (renormalised when ``normalize``); T = 0
    gives the one-hot distribution of the most probable token (ties: lowest id).

    ``probs`` need not sum to 1 (only ratios matter). A row whose largest entry
    underflows to 0 when raised to 1/T (tiny T) is raised after dividing by
    its maximum, which changes nothing but the scale."""
    if temperature == 0:
        top = torch.sort(probs, dim=-1, descending=True, stable=True).indices[..., :1]
        return torch.zeros_like(probs).scatter_(-1, top, 1.0)
    w = probs if temperature == 1 else probs.pow(1.0 / temperature)
    dead = ~(w.amax(-1) > 0)
    if bool(dead.any()):
        p = probs[dead]
        w = w.clone()
        w[dead] = (p / p.amax(-1, keepdim=True)).pow(1.0 / temperature)
    return w / w.sum(-1, keepdim=True) if normalize else w


def sample_next(probs: torch.Tensor, temperature: float = 1.0,
                generator: torch.Generator | None = None, *, top_k: int | None = None,
                top_p: float | None = None) -> torch.Tensor:
    """One token id per row of ``probs`` (batch, V), an int64 tensor (batch,).

    Draws from probs^(1/T) renormalised (= softmax(logits / T)); T = 0 takes the
    most probable token (ties to the lowest id). ``top_k`` / ``top_p`` (off by
    default, as in the paper) first keep only the k most probable tokens / the
    smallest set of most probable tokens whose probability reaches p.
    ``probs`` need not be normalised; sampling runs on its device with
    ``generator``."""
    if temperature == 0:
        # A stable sort puts the lowest id first among equal maxima.
        return torch.sort(probs, dim=1, descending=True, stable=True).indices[:, 0]
    if top_k is not None or top_p is not None:
        probs = _truncate(probs / probs.sum(1, keepdim=True), top_k, top_p)
    w = tempered(probs, temperature, normalize=False)
    return torch.multinomial(w, 1, generator=generator).squeeze(1)


def _truncate(probs: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """``probs`` with everything outside the top k / the top-p nucleus set to 0."""
    sorted_p, order = torch.sort(probs, dim=1, descending=True, stable=True)
    keep = torch.ones_like(sorted_p, dtype=torch.bool)
    if top_k is not None:
        keep[:, top_k:] = False
    if top_p is not None:  # keep a token while the mass before it is still below p
        keep &= (sorted_p.cumsum(1) - sorted_p) < top_p
    return torch.zeros_like(probs).scatter_(1, order, sorted_p * keep)


def sample_tokens(step: Callable[[torch.Tensor], torch.Tensor], prompt: torch.Tensor,
                  max_new_tokens: int, *, temperature: float = 1.0,
                  generator: torch.Generator | None = None, top_k: int | None = None,
                  top_p: float | None = None) -> torch.Tensor:
    """The sampling loop: ``prompt`` (batch, seq) int64 on the CPU, followed by
    ``max_new_tokens`` sampled ids, (batch, seq + max_new_tokens) on the CPU.

    ``step(new_tokens)`` gets the prompt first, then each sampled column
    (batch, 1), and returns the next-token probabilities (batch, V) of every
    row; they are sampled in float64 on the generator's device (CPU by default)."""
    where = "sample_tokens: "
    check_int("max_new_tokens", max_new_tokens, 0, where=where)
    _check_sampling(temperature, top_k, top_p, where)
    sample_device = generator.device if generator is not None else torch.device("cpu")
    out, new = [prompt], prompt
    for _ in range(max_new_tokens):
        p = step(new).to(sample_device, torch.float64)
        new = sample_next(p, temperature, generator, top_k=top_k, top_p=top_p).cpu()[:, None]
        out.append(new)
    return torch.cat(out, dim=1)


class _LMStep:
    """A causal LM's step: the prompt once, then one token a step, with its key-value cache."""

    def __init__(self, model, use_cache: bool):
        self.model, self.use_cache = model, use_cache
        self.device = next(model.parameters()).device
        self.past, self.seen = None, None
        # transformers 5.x names the key-value cache `cache`; earlier releases `past_key_values`
        params = inspect.signature(model.forward).parameters
        self.cache_key = "cache" if "cache" in params else "past_key_values"

    @torch.no_grad()
    def __call__(self, new: torch.Tensor) -> torch.Tensor:
        if self.use_cache:
            out = self.model(input_ids=new.to(self.device), use_cache=True,
                             **{self.cache_key: self.past})
            self.past = getattr(out, self.cache_key)
        else:  # the paper's way: the whole sequence again at every step
            self.seen = new if self.seen is None else torch.cat([self.seen, new], dim=1)
            out = self.model(input_ids=self.seen.to(self.device), use_cache=False)
        # every logit row (Pythia's padded vocabulary included), softmax in float64
        return torch.softmax(out.logits[:, -1].double(), dim=-1)


def lm_generate(model, prompt: torch.Tensor, length: int, *, temperature: float = 1.0,
                n: int = 1, generator: torch.Generator | None = None,
                top_k: int | None = None, top_p: float | None = None,
                use_cache: bool = True) -> torch.Tensor:
    """Text from a causal LM (the masked one inside ``Subnetwork.apply``): ``prompt``
    followed by sampled tokens up to ``length`` tokens in all (the paper: 128).

    ``prompt``: token ids, (seq,) or (batch, seq), at least one token (tokenize
    with ``add_special_tokens=False``, as the paper does); a 1-D prompt makes
    ``n`` samples. Returns (batch, length) int64 on the CPU (a 1-D prompt with
    n = 1 gives (length,)). Each step's distribution is softmax(logits / T)
    over every logit row; see :func:`sample_next` for ``temperature``,
    ``top_k``, ``top_p`` and ``generator``. ``use_cache=False`` recomputes the
    whole sequence at every step, as the paper's code does (same distribution,
    slower)."""
    where = "lm_generate: "
    vocab = check_causal_lm(model, where=where)
    ids = check_token_ids(prompt, vocab, ndim=(1, 2), where=where, name="prompt")
    check_int("n", n, 1, where=where)
    one_d = ids.dim() == 1
    ids = ids.cpu().long()
    ids = ids.expand(n, -1).clone() if one_d else ids
    if ids.shape[1] == 0:
        raise ValueError(f"{where}prompt is empty: an LM needs at least one token to start "
                         "from, e.g. tokenizer('This is', add_special_tokens=False)")
    check_int("length", length, ids.shape[1], where=where,
              why=f"prompt + generated tokens; the prompt has {ids.shape[1]}")
    was_training = model.training
    model.eval()
    try:
        out = sample_tokens(_LMStep(model, use_cache), ids, length - ids.shape[1],
                            temperature=temperature, generator=generator, top_k=top_k,
                            top_p=top_p)
    finally:
        model.train(was_training)
    return out[0] if one_d and n == 1 else out


def top_token_share(tokens: torch.Tensor) -> tuple[int, float]:
    """(the most frequent id, its share of the tokens) of a 1-D run of ids: 1.0 when
    a text has collapsed into one repeated token. Ties go to the lowest id."""
    t = torch.as_tensor(tokens).reshape(-1).long()
    if t.numel() == 0:
        raise ValueError("top_token_share: no tokens: pass the generated part of a text")
    counts = torch.bincount(t - t.min())
    top = int(counts.argmax())
    return top + int(t.min()), float(counts[top]) / t.numel()
