"""Plain data between the grader and a student's kernel: JSON plus safetensors.

A value (numbers, strings, None, tensors, numpy arrays, lists, tuples, sets,
dicts, and objects the grader knows how to rebuild) becomes a JSON tree and a
dict of tensors saved with safetensors; reading it back never runs code (no
pickle), so whatever a student's kernel writes is only data. Objects:

- a Hugging Face model travels as its config (JSON) and weights (tensors) and is
  rebuilt with ``from_config`` (so it is the same model, not the kernel's own);
- an object made by ``checks._core.wired`` travels as its recipe: a name inside
  bigramlab and the arguments to call it with;
- anything else a student returns is read back as an ``Opaque`` object that
  names its type, which every check rejects.

Used on both sides (the grader's ``judge`` and ``kernel_step`` in the kernel).
For instructors: no chapter teaches it.
"""

from __future__ import annotations

import importlib
import json
import numbers
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as st_load, save as st_save

WIRE = "__bigramlab_wire__"   # the attribute ``checks._core.wired`` sets: (target, args)
MAX_DEPTH = 64
MAX_BYTES = 512 * 2**20


class WireError(ValueError):
    """Data that is not a value this format holds (too deep, malformed, too large)."""


class Opaque:
    """A value of a type the wire does not carry (``type_name`` says which)."""

    def __init__(self, type_name: str):
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<a {self.type_name}>"


def _is_hf_model(x) -> bool:
    return isinstance(x, torch.nn.Module) and hasattr(x, "config") and hasattr(x.config,
                                                                                "to_dict")


class Encoder:
    def __init__(self, strict: bool):
        self.tensors: dict[str, torch.Tensor] = {}
        self.strict = strict   # the grader's side: an unknown type is a bug, raise

    def tensor(self, t: torch.Tensor) -> str:
        key = f"t{len(self.tensors)}"
        self.tensors[key] = t.detach().cpu().contiguous().clone()
        return key

    def __call__(self, x, depth: int = 0):
        if depth > MAX_DEPTH:
            raise WireError("nested too deeply")
        enc = lambda v: self(v, depth + 1)  # noqa: E731
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, numbers.Integral) and not isinstance(x, (torch.Tensor, np.ndarray)):
            return int(x)
        if isinstance(x, numbers.Real) and not isinstance(x, (torch.Tensor, np.ndarray)):
            return {"t": "float", "v": repr(float(x))}
        if isinstance(x, torch.Tensor):
            return {"t": "tensor", "k": self.tensor(x)}
        if isinstance(x, np.ndarray) and x.dtype != object:
            return {"t": "ndarray", "k": self.tensor(torch.from_numpy(np.ascontiguousarray(x)))}
        if hasattr(x, WIRE):
            target, args = getattr(x, WIRE)
            return {"t": "recipe", "target": str(target), "args": enc(list(args))}
        if _is_hf_model(x):
            state = {k: self.tensor(v) for k, v in x.state_dict().items()}
            return {"t": "hf_model", "config": x.config.to_json_string(), "state": state,
                    "dtype": str(next(x.parameters()).dtype), "training": bool(x.training)}
        if isinstance(x, Mapping):
            return {"t": "dict", "v": [[enc(k), enc(v)] for k, v in x.items()]}
        if isinstance(x, (list, tuple, set, frozenset)):
            # subclasses (a namedtuple, scipy's result tuples, torch.Size) keep their order
            kind = ("set" if isinstance(x, (set, frozenset))
                    else "list" if isinstance(x, list) else "tuple")
            items = sorted(x, key=repr) if kind == "set" else x
            return {"t": kind, "v": [enc(v) for v in items]}
        if self.strict:
            raise WireError(f"cannot send a {type(x).__name__} to the kernel")
        if hasattr(x, "__iter__") and hasattr(x, "__next__"):  # a generator: its items
            return {"t": "list", "v": [enc(v) for v in x]}
        return {"t": "opaque", "v": type(x).__name__[:80]}


def encode(value, strict: bool = False) -> bytes:
    """``value`` as one blob: 8 bytes of JSON length, the JSON tree, the safetensors."""
    enc = Encoder(strict)
    tree = json.dumps(enc(value)).encode("utf8")
    return len(tree).to_bytes(8, "little") + tree + st_save(enc.tensors)


def _recipe(target: str):
    module, _, name = target.partition(":")
    if not (module == "bigramlab" or module.startswith("bigramlab.")) or not name:
        raise WireError(f"a recipe must name something in bigramlab, not {target!r}")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _hf_model(node: dict, tensors: dict):
    from transformers import AutoConfig, AutoModelForCausalLM  # heavy: only for models
    cfg = json.loads(node["config"])
    config = AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    model = AutoModelForCausalLM.from_config(config).to(getattr(torch, node["dtype"][6:]))
    model.load_state_dict({k: tensors[v] for k, v in node["state"].items()}, strict=False)
    return model.train(node["training"])


def _decode(node, tensors: dict, objects: bool, depth: int = 0):
    if depth > MAX_DEPTH:
        raise WireError("nested too deeply")
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if not isinstance(node, dict) or not isinstance(node.get("t"), str):
        raise WireError(f"malformed node {str(node)[:80]}")
    kind, v = node["t"], node.get("v")
    dec = lambda n: _decode(n, tensors, objects, depth + 1)  # noqa: E731
    if kind == "float":
        return float(v)
    if kind in ("tensor", "ndarray"):
        t = tensors[node["k"]]
        return t.numpy() if kind == "ndarray" else t
    if kind in ("list", "tuple", "set"):
        items = [dec(n) for n in v]
        return {"list": list, "tuple": tuple, "set": set}[kind](items)
    if kind == "dict":
        return {dec(k): dec(x) for k, x in v}
    if kind == "opaque":
        return Opaque(str(v))
    if kind in ("recipe", "hf_model"):
        if not objects:   # the grader never builds objects from a kernel's answer
            return Opaque("model" if kind == "hf_model" else "object")
        if kind == "hf_model":
            return _hf_model(node, tensors)
        return _recipe(node["target"])(*dec(node["args"]))
    raise WireError(f"unknown node kind {kind!r}")


def decode(blob: bytes, objects: bool = False):
    """The value in ``blob``; ``objects``: rebuild models and recipes (the kernel's side)."""
    if len(blob) > MAX_BYTES or len(blob) < 8:
        raise WireError(f"a blob of {len(blob)} bytes")
    n = int.from_bytes(blob[:8], "little")
    try:
        tree = json.loads(blob[8:8 + n].decode("utf8"))
        tensors = st_load(blob[8 + n:])
        return _decode(tree, tensors, objects)
    except WireError:
        raise
    except (ValueError, KeyError, TypeError, RecursionError, UnicodeDecodeError, OSError) as e:
        raise WireError(f"unreadable ({type(e).__name__}: {str(e)[:120]})") from e
    except Exception as e:  # safetensors' own errors
        raise WireError(f"unreadable ({type(e).__name__}: {str(e)[:120]})") from e


def write(path: Path, value, strict: bool = False) -> None:
    Path(path).write_bytes(encode(value, strict))


def read(path: Path, objects: bool = False):
    path = Path(path)
    if path.stat().st_size > MAX_BYTES:
        raise WireError(f"{path.name} is larger than {MAX_BYTES // 2**20} MB")
    return decode(path.read_bytes(), objects)
