"""The released tiny LM: the tiny world's tokenizer and checkpoints, shipped with the course.

Pretraining is chaotic: the same seed on another CPU kernel set (AVX-512,
AVX2, the default kernels, another BLAS) ends with weights that differ in the
last digits, and every later number would differ with them. So the tiny world
is released as Pythia is: its tokenizer and its checkpoints (``model.safetensors``
in float32, as trained) live in the package, under ``released/<profile>/``,
with a ``MANIFEST.json`` of sizes and SHA-256 hashes, and the loaders read them
through the same ``from_pretrained`` as the real world. ``bigramlab build``
still pretrains from scratch (``build.build_lm``) and says how far its weights
are from the released ones.

A release is used only for the profile it was made for: ``RELEASE.json``
records the key of everything that determines it (:func:`release_key`), and a
profile with other settings (another seed, size or step count) builds its own.
Defined in Chapter 0.
"""

from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from ...methods.metrics import cross_entropy_nats, lm_surprisal
from ...plumbing.cache import key_of, verify, write_manifest
from ...plumbing.profiles import Profile

ROOT = Path(__file__).resolve().parent / "released"
#: The files of a checkpoint that are released (the trainer state, for resuming
#: a pretraining run, is not).
CHECKPOINT_FILES = ("config.json", "generation_config.json", "model.safetensors")


class DamagedReleaseError(RuntimeError):
    """A released file is missing or differs from the release's manifest."""


def release_key(p: Profile, tokenizer_key: str) -> str:
    """Everything that determines the released files, except the CPU they were made on."""
    return key_of("release", tokenizer_key, p.arch, p.world.__dict__, p.checkpoints, p.seq_len)


def folder(p: Profile) -> Path:
    return ROOT / p.name


@functools.lru_cache(maxsize=8)
def _verified(path: Path) -> None:
    problem = verify(path)
    if problem is not None:
        raise DamagedReleaseError(
            f"the released tiny world in {path} is damaged ({problem}); restore it with "
            "`git checkout -- bigramlab/worlds/tiny/released` (or reinstall bigramlab), "
            "or rebuild it with `python tools/release_tiny.py`")


def released(p: Profile, tokenizer_key: str, stage: str) -> Path | None:
    """The released folder of ``stage`` ("tokenizer" or "lm") for profile ``p``, verified
    against its manifest; None when nothing is released for these exact settings."""
    path = folder(p)
    try:
        info = json.loads((path / "RELEASE.json").read_text())
    except (OSError, ValueError):
        return None
    if info.get("key") != release_key(p, tokenizer_key):
        return None
    _verified(path)
    return path / stage


def released_tokenizer(tokenizer_key: str) -> Path | None:
    """A released tokenizer folder made with ``tokenizer_key``'s settings, whichever
    profile released it (the tiny family shares one corpus and tokenizer); None if none."""
    for info_file in sorted(ROOT.glob("*/RELEASE.json")):
        try:
            info = json.loads(info_file.read_text())
        except (OSError, ValueError):
            continue
        if info.get("tokenizer_key") == tokenizer_key:
            _verified(info_file.parent)
            return info_file.parent / "tokenizer"
    return None


def write_release(p: Profile, tokenizer_key: str, tokenizer: Path, lm: Path,
                  meta: dict) -> Path:
    """Copy a built tokenizer folder and LM folder into ``released/<profile>/``, with a
    manifest; ``meta`` (how and where it was built) goes into ``RELEASE.json``."""
    out = folder(p)
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(tokenizer, out / "tokenizer", ignore=shutil.ignore_patterns("MANIFEST.json"))
    for ckpt in p.checkpoints:
        (out / "lm" / "checkpoints" / ckpt).mkdir(parents=True)
        for name in CHECKPOINT_FILES:
            shutil.copy2(lm / "checkpoints" / ckpt / name, out / "lm" / "checkpoints" / ckpt)
    shutil.copy2(lm / "train_log.json", out / "lm" / "train_log.json")
    (out / "RELEASE.json").write_text(json.dumps(
        {"key": release_key(p, tokenizer_key), "tokenizer_key": tokenizer_key,
         "profile": p.name} | meta, indent=1) + "\n")
    write_manifest(out)
    _verified.cache_clear()
    return out


def compare(built: Path, released_lm: Path, checkpoint: str, eval_ids) -> dict:
    """How far an LM pretrained here (``built``, an LM folder) is from the released one
    at ``checkpoint``: the largest relative difference of any weight tensor (max |a - b| /
    max |b|), the mean training loss of the last 100 steps of each (nats), and each
    one's cross-entropy on ``eval_ids`` (nats/token, float64)."""
    out = {}
    models = {}
    for name, folder in (("built", built), ("released", released_lm)):
        losses = json.loads((folder / "train_log.json").read_text())["loss"]
        model = AutoModelForCausalLM.from_pretrained(str(folder / "checkpoints" / checkpoint))
        models[name] = model.double().eval()
        out[f"{name}_last100_loss"] = sum(losses[-100:]) / 100
        out[f"{name}_eval_ce"] = cross_entropy_nats(lm_surprisal(models[name], eval_ids))
    a, b = (m.state_dict() for m in (models["built"], models["released"]))
    out["max_rel_weight_diff"] = max(float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp(
        min=torch.finfo(torch.float64).tiny)) for k in b if b[k].is_floating_point())
    return out
