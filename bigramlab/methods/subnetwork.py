"""Subnetworks: which entries of a model's maskable weight matrices are kept.

A ``Subnetwork`` maps parameter names (as ``model.named_parameters()`` gives
them) to bool masks of the parameter's shape, True = kept. Only the four
weight matrices of every block are masked (see ``anatomy``); embeddings,
unembedding, layer norms and all biases are always kept (Chang & Bergen 2025,
section 3.1).

Two file formats, told by the suffix:

- ``.pickle`` / ``.pkl``: the authors' released format, a pickled dict of
  parameter name -> numpy bool array, plus ``'orig_model_name'`` -> str.
  Read with a restricted unpickler: only numpy arrays, dtypes and a string.
- ``.safetensors``: ours, bool tensors with ``orig_model_name`` in the metadata.

Every method returns a new Subnetwork; masks are shared between subnetworks,
never edited in place, so treat the tensors you read as read-only. Applying
one to a model goes through ``masks.masked``, the package's one way to mask
weights. Defined in Chapter 3 (made and applied), used in Chapters 4-5.
"""

from __future__ import annotations

import collections
import codecs
import pickle
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .anatomy import KINDS, maskable_matrices
from .masks import masked

try:  # numpy >= 2 moved numpy.core to numpy._core; old pickles name either one
    from numpy._core import multiarray as _np_multiarray, numeric as _np_numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray, numeric as _np_numeric

# (module, name) -> object: everything a pickled dict of numpy arrays needs, nothing else
_PICKLE_ALLOWED = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                   ("_codecs", "encode"): codecs.encode,  # bytes under protocols 0-2
                   ("collections", "OrderedDict"): collections.OrderedDict}
for _core in ("numpy.core", "numpy._core"):
    _PICKLE_ALLOWED[(_core + ".multiarray", "_reconstruct")] = _np_multiarray._reconstruct
    _PICKLE_ALLOWED[(_core + ".numeric", "_frombuffer")] = _np_numeric._frombuffer


class SubnetworkFileError(ValueError):
    """A subnetwork file that is damaged or does not hold a subnetwork."""


class UnsafePickleError(SubnetworkFileError, pickle.UnpicklingError):
    """A pickle that asks to load something other than numpy arrays (it could run code)."""


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _PICKLE_ALLOWED:
            raise UnsafePickleError(
                f"refusing to load {module}.{name} from a subnetwork pickle: the released "
                "format holds only numpy arrays and a string, and loading anything else could "
                "run code. This file is not a subnetwork, or it was tampered with.")
        return _PICKLE_ALLOWED[(module, name)]


def _as_bool(name: str, x) -> torch.Tensor:
    """A mask as a CPU bool tensor; 0/1 numbers are accepted, anything else rejected."""
    try:
        t = torch.as_tensor(x)
    except (TypeError, RuntimeError) as e:
        raise SubnetworkFileError(f"mask {name!r} is not a numeric array ({e})") from e
    if t.dtype != torch.bool:
        if t.is_complex() or not bool(((t == 0) | (t == 1)).all()):
            raise SubnetworkFileError(f"mask {name!r} is not binary (dtype {t.dtype})")
        t = t != 0
    return t.to("cpu")


class Subnetwork(Mapping):
    """Parameter name -> bool mask (CPU, True = kept), plus ``orig_model_name``."""

    def __init__(self, masks: Mapping, orig_model_name: str | None = None):
        self._masks = {name: _as_bool(name, m) for name, m in masks.items()}
        self.orig_model_name = orig_model_name

    # -- mapping, equality, display ------------------------------------------
    def __getitem__(self, name):
        return self._masks[name]

    def __iter__(self):
        return iter(self._masks)

    def __len__(self):
        return len(self._masks)

    def __eq__(self, other):
        return (isinstance(other, Subnetwork) and self.orig_model_name == other.orig_model_name
                and self._masks.keys() == other._masks.keys()
                and all(torch.equal(m, other[n]) for n, m in self.items()))

    __hash__ = None

    def __repr__(self):
        total = sum(m.numel() for m in self.values())
        return (f"Subnetwork({self.orig_model_name!r}: {len(self)} matrices, kept {self.count():,}"
                f" of {total:,} entries = {self.count() / max(total, 1):.2%})")

    # -- construction ----------------------------------------------------------
    @classmethod
    def full(cls, model) -> Subnetwork:
        """Keep every maskable entry of ``model`` (= the full model)."""
        masks = {m.name: torch.ones(m.shape, dtype=torch.bool) for m in maskable_matrices(model)}
        return cls(masks, model.config.name_or_path or None)

    @classmethod
    def empty(cls, model) -> Subnetwork:
        """Keep nothing: every block weight matrix is zero when applied."""
        return ~cls.full(model)

    @classmethod
    def from_mask_logits(cls, logits_by_name: Mapping, orig_model_name: str | None = None):
        """The final binary mask of continuous sparsification: keep where the logit s > 0."""
        return cls({n: torch.as_tensor(s).detach().cpu() > 0 for n, s in logits_by_name.items()},
                   orig_model_name)

    @classmethod
    def random_like(cls, subnetwork: Subnetwork, model, seed: int) -> Subnetwork:
        """A random subnetwork with the same kept count in every matrix as
        ``subnetwork``, positions uniform within each matrix (seeded, deterministic)."""
        subnetwork.check(model)
        g = torch.Generator().manual_seed(seed)
        masks = {}
        for m in maskable_matrices(model):  # a fixed order, so a seed fixes the result
            keep = torch.zeros(m.numel, dtype=torch.bool)
            keep[torch.randperm(m.numel, generator=g)[:int(subnetwork[m.name].sum())]] = True
            masks[m.name] = keep.view(m.shape)
        return cls(masks, subnetwork.orig_model_name)

    # -- files -------------------------------------------------------------------
    @classmethod
    def load(cls, path) -> Subnetwork:
        """Read a ``.pickle``/``.pkl`` (the authors' release) or ``.safetensors`` file."""
        path = Path(path)
        damaged = (f"{path} is damaged (truncated or corrupt): delete it and download it "
                   "again (or save it again, if you made it)")
        if _format(path) == "safetensors":
            try:
                with safe_open(str(path), framework="pt") as f:
                    name = (f.metadata() or {}).get("orig_model_name")
                    return cls({k: f.get_tensor(k) for k in f.keys()}, name)
            except SafetensorError as e:
                raise SubnetworkFileError(f"{damaged} ({e})") from e
        try:
            with open(path, "rb") as f:
                data = _NumpyOnlyUnpickler(f).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
                AttributeError, MemoryError) as e:
            raise SubnetworkFileError(f"{damaged} ({type(e).__name__}: {e})") from e
        if not isinstance(data, dict):
            raise SubnetworkFileError(f"{path} holds a {type(data).__name__}, not a dict of "
                                      "masks: not a subnetwork pickle")
        data = dict(data)
        name = data.pop("orig_model_name", None)
        bad = [k for k, v in data.items() if not (isinstance(k, str) and isinstance(v, np.ndarray))]
        if bad or not isinstance(name, (str, type(None))):
            raise SubnetworkFileError(f"{path} is not a subnetwork pickle: entry "
                                      f"{(bad or ['orig_model_name'])[0]!r} is unexpected")
        return cls(data, name)

    def save(self, path) -> None:
        """Write in the format of the suffix (``.pickle``/``.pkl`` or ``.safetensors``)."""
        path = Path(path)
        if _format(path) == "pickle":
            data = {n: m.numpy() for n, m in self.items()}  # numpy bool arrays, as released
            if self.orig_model_name is not None:
                data["orig_model_name"] = self.orig_model_name
            with open(path, "wb") as f:  # protocol 4: readable by any Python 3.4+
                pickle.dump(data, f, protocol=4)
        else:
            meta = {"orig_model_name": self.orig_model_name} if self.orig_model_name else {}
            save_file({n: m.contiguous() for n, m in self.items()}, str(path), metadata=meta)

    # -- checking and applying ---------------------------------------------------
    def check(self, model) -> None:
        """Raise ValueError naming the first name or shape that does not fit ``model``
        (``UnsupportedArchitectureError`` for a model bigramlab cannot mask)."""
        fix = (f"This subnetwork was made for {self.orig_model_name or 'another model'}: apply it "
               "to that model, or build one for this model, e.g. Subnetwork.full(model).")
        expected = {m.name: m.shape for m in maskable_matrices(model)}
        for name, shape in expected.items():
            if name not in self._masks:
                raise ValueError(f"the subnetwork has no mask for {name}. {fix}")
            if tuple(self._masks[name].shape) != shape:
                raise ValueError(f"mask {name} has shape {tuple(self._masks[name].shape)}, the "
                                 f"model's parameter has shape {shape}. {fix}")
        for name in self._masks:
            if name not in expected:
                raise ValueError(f"the subnetwork has a mask for {name}, which is not a maskable "
                                 f"matrix of this {type(model).__name__}. {fix}")

    def apply(self, model):
        """A context manager: within the ``with`` block, ``model`` runs with only the
        kept weight entries (the dropped ones exactly 0).

        Built on ``masks.masked``: each masked parameter's ``.data`` is swapped for
        a masked copy (on the weight's device) and swapped back on exit, also when
        the block raises. The original tensors are never written to, so they come
        back bit for bit; edits made to the weights inside the block are
        discarded. Memory: one masked copy of the matrices that drop something
        (fully kept matrices are not copied).
        """
        self.check(model)
        return masked(model, self._masks)

    # -- set operations ------------------------------------------------------------
    def _combine(self, other: Subnetwork, op) -> Subnetwork:
        if self.keys() != other.keys() or any(self[n].shape != other[n].shape for n in self):
            raise ValueError("the two subnetworks cover different matrices (different models?)")
        return Subnetwork({n: op(m, other[n]) for n, m in self.items()}, self.orig_model_name)

    def __and__(self, other):
        return self._combine(other, torch.logical_and)

    def __or__(self, other):
        return self._combine(other, torch.logical_or)

    def complement(self) -> Subnetwork:
        """The full model minus this subnetwork: keeps exactly what this drops."""
        return Subnetwork({n: ~m for n, m in self.items()}, self.orig_model_name)

    __invert__ = complement

    def overlap(self, other: Subnetwork) -> int:
        """Number of entries kept by both subnetworks."""
        return (self & other).count()

    # -- counts ----------------------------------------------------------------------
    def count(self) -> int:
        """Number of kept entries."""
        return sum(int(m.sum()) for m in self.values())

    def share(self, model=None) -> float:
        """Kept entries / maskable entries (of ``model``, checked, when given)."""
        if model is not None:
            self.check(model)
        total = sum(m.numel() for m in self.values())
        if total == 0:
            raise ValueError("Subnetwork.share: this subnetwork has no mask entries, so it has "
                             "no share: build it for a model, e.g. Subnetwork.full(model)")
        return self.count() / total

    def counts_by_layer(self, model) -> dict[int, int]:
        """{layer: kept entries in that layer's four matrices}."""
        self.check(model)
        out = {}
        for m in maskable_matrices(model):
            out[m.layer] = out.get(m.layer, 0) + int(self[m.name].sum())
        return out

    def counts_by_layer_kind(self, model) -> dict[tuple[int, str], int]:
        """{(layer, kind): kept entries}, kinds q, k, v, o, mlp_in, mlp_out (the fused
        q/k/v matrix split by kind). ``Subnetwork.full(model)`` gives the sizes."""
        self.check(model)
        out = {}
        for m in maskable_matrices(model):
            for kind in m.kinds:
                mask = self[m.name] & m.part(kind) if m.role == "qkv" else self[m.name]
                out[m.layer, kind] = int(mask.sum())
        return out

    def counts_by_kind(self, model) -> dict[str, int]:
        """{kind: kept entries} for q, k, v, o, mlp_in, mlp_out (fused q/k/v split)."""
        out = dict.fromkeys(KINDS, 0)
        for (_, kind), n in self.counts_by_layer_kind(model).items():
            out[kind] += n
        return out

    def counts_by_head(self, model, kinds=("q", "k", "v", "o")) -> torch.Tensor:
        """Kept entries per attention head, an int64 tensor (layers, heads).

        A head's entries are its head_size output rows (GPT-NeoX) / columns
        (GPT-2) of each of q, k, v in the fused matrix, and its head_size input
        columns (GPT-NeoX) / rows (GPT-2) of o: 4 * head_size * d_model entries
        in all. ``kinds`` restricts the count, e.g. ``("o",)``."""
        self.check(model)
        mats = [m for m in maskable_matrices(model) if m.role in ("qkv", "o")]
        out = torch.zeros(max(m.layer for m in mats) + 1, mats[0].n_heads, dtype=torch.int64)
        for m in mats:
            for kind in set(kinds) & set(m.kinds):
                for h in range(m.n_heads):
                    out[m.layer, h] += int((self[m.name] & m.part(kind, h)).sum())
        return out

    def table(self, model) -> list[dict]:
        """One row per maskable matrix: name, layer, role, kept, total, share."""
        self.check(model)
        return [dict(name=m.name, layer=m.layer, role=m.role, kept=int(self[m.name].sum()),
                     total=m.numel, share=int(self[m.name].sum()) / m.numel)
                for m in maskable_matrices(model)]

    # -- editing (each returns a new Subnetwork) ------------------------------------------
    def _set(self, model, layer: int, region, keep: bool) -> Subnetwork:
        """A copy where ``region(m)`` (an index, or None = untouched) of each matrix ``m``
        of ``layer`` is set to ``keep``; only the edited masks are copied."""
        self.check(model)
        mats = [m for m in maskable_matrices(model) if m.layer == layer]
        if not mats:
            raise ValueError(f"layer {layer} is not a layer of this model "
                             f"(layers 0..{maskable_matrices(model)[-1].layer})")
        masks = dict(self._masks)
        for m in mats:
            index = region(m)
            if index is not None:
                masks[m.name] = masks[m.name].clone()
                masks[m.name][index] = keep
        return Subnetwork(masks, self.orig_model_name)

    def _head(self, model, layer, head, kinds, keep):
        def region(m):
            ks = [k for k in kinds if k in m.kinds]
            return torch.stack([m.part(k, head) for k in ks]).any(0) if ks else None
        return self._set(model, layer, region, keep)

    def drop_head(self, model, layer: int, head: int, kinds=("q", "k", "v", "o")):
        """Drop attention ``head`` of ``layer``: its q/k/v/o entries (or only ``kinds``)."""
        return self._head(model, layer, head, kinds, False)

    def keep_head(self, model, layer: int, head: int, kinds=("q", "k", "v", "o")):
        """Keep attention ``head`` of ``layer``: its q/k/v/o entries (or only ``kinds``)."""
        return self._head(model, layer, head, kinds, True)

    def _mlp(self, model, layer, dims, keep):
        dims = torch.as_tensor(dims, dtype=torch.long).reshape(-1)  # an int or a list

        def region(m):
            if m.role not in ("mlp_in", "mlp_out"):
                return None
            # the MLP hidden axis: mlp_in's outputs, mlp_out's inputs (which axis of the
            # stored weight that is depends on the architecture: Linear or Conv1D)
            axis = m.out_axis if m.role == "mlp_in" else m.in_axis
            if len(dims) and not (0 <= int(dims.min()) and int(dims.max()) < m.shape[axis]):
                raise ValueError(f"MLP dimensions must lie in 0..{m.shape[axis] - 1}")
            return (slice(None), dims) if axis else (dims,)
        return self._set(model, layer, region, keep)

    def drop_mlp_dims(self, model, layer: int, dims):
        """Drop MLP hidden dimensions ``dims`` of ``layer`` (their in and out weights)."""
        return self._mlp(model, layer, dims, False)

    def keep_mlp_dims(self, model, layer: int, dims):
        """Keep MLP hidden dimensions ``dims`` of ``layer`` (their in and out weights)."""
        return self._mlp(model, layer, dims, True)

    def drop_layer(self, model, layer: int):
        """Drop all four weight matrices of ``layer``."""
        return self._set(model, layer, lambda m: slice(None), False)

    def keep_layer(self, model, layer: int):
        """Keep all four weight matrices of ``layer``."""
        return self._set(model, layer, lambda m: slice(None), True)


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".pickle", ".pkl"):
        return "pickle"
    if suffix == ".safetensors":
        return "safetensors"
    raise ValueError(f"cannot tell the format of {path}: use .pickle/.pkl (the authors' "
                     "released format) or .safetensors (bigramlab's format)")
