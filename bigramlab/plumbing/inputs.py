"""Checks of what a caller passes in: one line naming the problem and the fix.

The functions users call (``SparsifyConfig``, the experiments' entry points,
``lm_surprisal``, ``BigramModel.surprisal``, ``Subnetwork.share``,
``surprisal_correlation``, ...) call these at their top, so that a careless
argument fails at once, in the caller's words, instead of deep inside torch
or, worse, silently with a wrong number. A message says what was passed (a
short description, never the repr of a model) and what to pass instead. The
The book's appendix ("Reliability") lists the bad inputs tried and their errors.

A leaf module: it imports nothing from bigramlab (transformers only lazily,
to tell a causal LM from a masked one). Every chapter relies on it, though
no chapter teaches it.
"""

from __future__ import annotations

import functools
import math
import numbers
import pickle
import zipfile
from pathlib import Path

import torch

__all__ = ["describe", "check_real", "check_int", "check_type", "check_token_ids",
           "check_causal_lm", "check_no_nan", "DamagedFileError", "load_torch_file"]


def describe(value) -> str:
    """A short, one-line description of ``value`` for an error message: the
    value itself for numbers and short strings, dtype and shape for tensors
    and arrays, else "a <type>" (a model's repr is dozens of lines)."""
    if value is None or isinstance(value, (bool, numbers.Number)):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else repr(value[:37] + "...")
    if isinstance(value, torch.Tensor) or hasattr(value, "dtype") and hasattr(value, "shape"):
        return f"a {value.dtype} {type(value).__name__} of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_real(name: str, value, lo: float = -math.inf, hi: float = math.inf, *,
               lo_open: bool = False, hi_open: bool = False, also: tuple = (),
               why: str = "", where: str = "") -> None:
    """Raise ValueError unless ``value`` is a real number in the interval from
    ``lo`` to ``hi`` (open at an end when ``lo_open`` / ``hi_open``; an open
    infinite end excludes that infinity) or one of ``also``. NaN never passes.
    ``why`` is added to the message (what the setting does), ``where`` prefixes it."""
    interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    allowed = f"a number in {interval}" + "".join(f" or {a:g}" for a in also)
    if _is_real(value) and not math.isnan(value):
        v = float(value)
        inside = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if inside or v in also:
            return
    raise ValueError(f"{where}{name} = {describe(value)} is not allowed: use {allowed}"
                     + (f" ({why})" if why else ""))


def check_int(name: str, value, lo: int, hi: int | None = None, *, why: str = "",
              where: str = "") -> None:
    """Raise ValueError unless ``value`` is a whole number (an int, not a bool
    or a float) with ``lo <= value`` (``<= hi`` when given)."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and lo <= value \
        and (hi is None or value <= hi)
    if not ok:
        allowed = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{where}{name} = {describe(value)} is not allowed: use a whole number "
                         f"{allowed}" + (f" ({why})" if why else ""))


def check_type(name: str, value, kind: type | tuple, fix: str, where: str = "") -> None:
    """Raise TypeError unless ``isinstance(value, kind)``; ``fix`` says what to pass."""
    if not isinstance(value, kind):
        kinds = kind if isinstance(kind, tuple) else (kind,)
        wanted = " or ".join("None" if k is type(None) else f"a {k.__name__}" for k in kinds)
        raise TypeError(f"{where}{name} must be {wanted}, got {describe(value)}: {fix}")


def check_token_ids(ids, vocab_size: int | None, *, ndim: tuple = (2,),
                    where: str = "", name: str = "input_ids") -> torch.Tensor:
    """``ids`` checked to be an integer tensor with ``ndim`` axes and values in
    ``0 .. vocab_size - 1`` (not checked when vocab_size is None); returned as is.
    One device sync (min and max together)."""
    shapes = " or ".join({1: "(seq,)", 2: "(batch, seq)"}.get(d, f"{d}-D") for d in ndim)
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{where}{name} must be a torch tensor of token ids {shapes}, got "
                        f"{describe(ids)}: use torch.tensor(ids), or the tokenizer's "
                        "return_tensors='pt'")
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise TypeError(f"{where}{name} must hold integer token ids, got a {ids.dtype} tensor: "
                        "pass the tokenizer's ids (int64), not scores or embeddings")
    if ids.dim() not in ndim:
        hint = ("add a batch axis: ids[None]" if ids.dim() == 1 else
                "flatten the leading axes: ids.reshape(-1, ids.shape[-1])")
        raise ValueError(f"{where}{name} must have shape {shapes}, got {tuple(ids.shape)}: {hint}")
    if vocab_size is not None and ids.numel():
        lo, hi = torch.stack([ids.min(), ids.max()]).tolist()
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"{where}{name} hold ids from {lo} to {hi}, outside the model's "
                             f"vocabulary 0..{vocab_size - 1}: tokenize with the model's own "
                             "tokenizer (load_tokenizer(profile))")
    return ids


@functools.lru_cache(maxsize=1)
def _lm_class_names() -> tuple[frozenset, frozenset]:
    """(causal-LM class names, masked-LM class names) that transformers knows."""
    from transformers.models.auto import modeling_auto as auto  # heavy: only this check needs it

    def names(mapping):
        out = set()
        for v in mapping.values():
            out.update(v if isinstance(v, (tuple, list)) else (v,))
        return frozenset(out)
    return (names(auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES),
            names(auto.MODEL_FOR_MASKED_LM_MAPPING_NAMES))


def check_causal_lm(model, where: str = "") -> int | None:
    """Raise TypeError unless ``model`` is a torch module and, when it is a
    Hugging Face model, a causal (next-token) LM: a causal-LM class, a decoder
    config, or a model that generates and is not a masked LM. Returns the size
    of its input vocabulary (embedding rows) when it can tell, else None."""
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{where}model must be a torch language model, got {describe(model)}: "
                        "load one with load_model(profile)")
    inner = getattr(model, "_orig_mod", model)  # torch.compile's wrapper
    config = getattr(inner, "config", None)
    if config is not None and hasattr(config, "is_decoder"):  # a Hugging Face model
        causal_names, masked_names = _lm_class_names()
        names = {c.__name__ for c in type(inner).__mro__}
        causal = bool(names & causal_names) or bool(config.is_decoder)
        can_generate = getattr(inner, "can_generate", None)
        generates = bool(can_generate()) if callable(can_generate) else False
        if not causal and (names & masked_names or not generates):
            raise TypeError(f"{where}needs a causal (next-token) language model, got a "
                            f"{type(inner).__name__}, which does not predict the next token: "
                            "load a causal LM (AutoModelForCausalLM, e.g. Pythia or GPT-2)")
    emb = getattr(model, "get_input_embeddings", None)
    emb = emb() if callable(emb) else None
    return emb.num_embeddings if isinstance(emb, torch.nn.Embedding) else None


def check_no_nan(name: str, values, fix: str, where: str = "") -> None:
    """Raise ValueError when a float tensor or array ``values`` holds NaN."""
    t = torch.as_tensor(values)
    if t.dtype.is_floating_point:
        n_nan = int(torch.isnan(t).sum())
        if n_nan:
            raise ValueError(f"{where}{name} holds {n_nan} NaN of {t.numel()} values: {fix}")


class DamagedFileError(ValueError):
    """A saved file that cannot be read back (truncated or corrupt). ``.path`` is the file."""

    def __init__(self, path, message: str):
        super().__init__(message)
        self.path = Path(path)


def load_torch_file(path, map_location=None):
    """``torch.load(path, weights_only=True)``; a file that cannot be read that
    way raises :class:`DamagedFileError` (one line, naming the file; never
    torch's advice to load unsafely, and without its traceback)."""
    path = Path(path)
    try:
        return torch.load(path, weights_only=True, map_location=map_location)
    except (RuntimeError, OSError, EOFError, KeyError, ValueError, IndexError, TypeError,
            AttributeError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        if isinstance(e, FileNotFoundError):
            raise
        reason = type(e).__name__
    raise DamagedFileError(path, f"{path} is damaged (truncated or corrupt: torch.load raised "
                                 f"{reason}): delete it and make it again")
