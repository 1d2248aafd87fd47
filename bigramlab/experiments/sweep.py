"""Sweeps that outgrow one session: a grid of masks, trained once, on one machine or a cluster.

Figure 1 in the real world is about 8 models x 8 lambdas, and Figure 2 (left)
adds 16 checkpoints: days of GPU time. :func:`make_grid` describes such a grid
(profiles x checkpoints x lambdas x targets, plus any mask-training setting
such as ``max_steps``); :func:`run_sweep` trains every point that is not done
yet and measures it; :func:`collect` gathers the table the figures need (one
row per point: kept entries, r, CE).

One job per point (:func:`run_point`) trains through
:func:`~bigramlab.experiments.subnetworks.train_subnetwork` into the shared
cache (``$BIGRAMLAB_CACHE``), so a mask already there is loaded, never trained
again, and a job killed midway leaves its saved state that the next job for
that point resumes from, bit for bit. The job then evaluates the mask
(``evaluate_subnetwork``) and writes its row as ``<folder>/points/<id>.json``:
the mask's cache key depends on the worker's device and kernels, which the
submitting machine (a login node) cannot know, so "done" means "a row is
there and its mask is in the cache".

Jobs run in this process one after another (``executor=None``), or through
any ``submitit`` executor: ``submitit.AutoExecutor(folder)`` submits a SLURM
job array on a cluster (one array task per point, results on the shared
filesystem) and runs local subprocesses elsewhere. ``bigramlab sweep`` is the
command-line form (``book/setup.md``, "Sweeps on a cluster"). Defined in Chapter 3, which runs
a grid across the tiny family's sizes (Figure 1), Chapter 5 one across
checkpoints (Figure 2 left), each keeping its rows in :func:`sweep_folder`.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..plumbing.cache import cache_dir, entry_path, key_of
from ..plumbing.devices import default_device
from ..plumbing.files import atomic_write
from ..plumbing.inputs import check_real, check_type
from ..plumbing.profiles import Profile, get_profile
from .subnetworks import (TARGETS, evaluate_subnetwork, mask_config, mask_key,
                          train_subnetwork)

__all__ = ["GridPoint", "make_grid", "point_status", "run_point", "run_sweep", "collect",
           "sweep_folder", "write_table", "COLUMNS"]

#: The columns of a sweep's table, in order.
COLUMNS = ("profile", "checkpoint", "target", "lambda", "steps", "early_stop", "kept",
           "n_entries", "share", "r_max", "r_drop", "ce_bigram", "ce_lm", "mask_key")


@dataclass(frozen=True)
class GridPoint:
    """One mask of a sweep: a profile's model at a checkpoint, a target, a lambda,
    and the mask-training settings that differ from the profile's (``changes``)."""

    profile: Profile
    checkpoint: str
    target: str
    lam: float
    changes: tuple = ()

    @property
    def id(self) -> str:
        """A name for this point that does not depend on the machine that trains it."""
        return key_of(self.profile.key(), self.checkpoint, self.target, self.lam,
                      dict(self.changes))

    def label(self) -> str:
        return f"{self.profile.name} {self.checkpoint} {self.target} lambda {self.lam:g}"


def _names(value, what: str) -> list | None:
    """A comma-separated string or a sequence as a list (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    check_type(what, value, Sequence, f"pass a list of {what}, or a comma-separated string",
               where="make_grid: ")
    return list(value)


def make_grid(profiles, checkpoints=None, lambdas=None, targets=("bigram",),
              **changes) -> list[GridPoint]:
    """Every point of profiles x checkpoints x lambdas x targets.

    profiles     names (or Profiles), e.g. ``["pythia-70m", "pythia-160m"]``
    checkpoints  None: each profile's final one; ``"all"``: every one it has; else
                 revision names (each must exist in every profile)
    lambdas      None: each profile's own sweep (``profile.lambdas``); else numbers
                 (-inf / inf: the full and empty endpoints, which need no training)
    targets      ``"bigram"``, ``"full"`` (optimal subnetworks), ``"trigram"``
    changes      any other mask-training setting, e.g. ``max_steps=600``
    """
    where = "make_grid: "
    names = _names(profiles, "profiles")
    if not names:
        raise ValueError(f"{where}no profiles: name at least one, e.g. ['tiny'] or "
                         "['pythia-70m', 'pythia-160m']")
    profs = [get_profile(n) for n in names]  # UnknownProfileError lists the valid names
    wanted = None if checkpoints in (None, "all") else _names(checkpoints, "checkpoints")
    lams = _names(lambdas, "lambdas")
    tgts = _names(targets, "targets")
    for t in tgts or ():
        if t not in TARGETS:
            raise ValueError(f"{where}unknown target {t!r}; use one of {', '.join(TARGETS)}")
    for lam in lams or ():
        lam = float(lam) if isinstance(lam, str) else lam
        check_real("lambda", lam, 0, math.inf, also=(-math.inf,), where=where,
                   why="-inf and inf are the endpoints")
    points = []
    for p in profs:
        mask_config(p, **changes)  # an unknown or out-of-range setting fails here, named
        if checkpoints == "all":
            ckpts = list(p.checkpoints)
        elif wanted is None:
            ckpts = [p.final_checkpoint]
        else:
            bad = [c for c in wanted if c not in p.checkpoints]
            if bad:
                raise ValueError(f"{where}{p.name} has no checkpoint {bad[0]!r}; its "
                                 f"checkpoints: {', '.join(p.checkpoints)} (or 'all')")
            ckpts = wanted
        for c in ckpts:
            for t in tgts:
                for lam in (lams if lams is not None else p.lambdas):
                    points.append(GridPoint(p, c, t, float(lam), tuple(sorted(changes.items()))))
    if not points:
        raise ValueError(f"{where}the grid is empty: give at least one checkpoint, lambda "
                         "and target")
    return points


def _record(folder, point: GridPoint) -> Path:
    return Path(folder) / "points" / f"{point.id}.json"


def point_status(point: GridPoint, folder) -> str:
    """``"done"`` when the point's row is in ``folder`` and its mask in the cache
    (``mask_key`` None: an endpoint, nothing cached); else ``"missing"`` (a job
    killed midway left its state in the cache: the next job resumes it)."""
    rec = _record(folder, point)
    if not rec.exists():
        return "missing"
    key = json.loads(rec.read_text())["mask_key"]
    return "done" if key is None or entry_path("mask", key).is_dir() else "missing"


def run_point(point: GridPoint, folder) -> dict:
    """One job: train (or load from the cache, or resume) the point's mask, evaluate
    it on the profile's eval split and write its row into ``folder``; returns the row."""
    p, changes = point.profile, dict(point.changes)
    result = train_subnetwork(p, point.lam, point.checkpoint, point.target, progress=False,
                              released=False, **changes)
    key = None
    if math.isfinite(point.lam):  # the key train_subnetwork stored it under (its device)
        key = mask_key(p, point.checkpoint, point.target,
                       mask_config(p, point.lam, **changes), default_device())
    ev = evaluate_subnetwork(p, result.mask, point.checkpoint, progress=False)
    row = {"profile": p.name, "checkpoint": point.checkpoint, "target": point.target,
           "lambda": point.lam, "steps": result.steps, "early_stop": result.early_stopped,
           "kept": ev["kept"], "n_entries": result.n_entries, "share": ev["share"],
           "r_max": ev["r_max"], "r_drop": ev["r_drop"], "ce_bigram": ev["ce_bigram"],
           "ce_lm": ev["ce_lm"], "mask_key": key}
    atomic_write(_record(folder, point), lambda tmp: tmp.write_text(json.dumps(row, indent=1)))
    return row


def run_sweep(points: Sequence[GridPoint], folder, executor=None, wait: bool = True):
    """Run a job for every point not done yet (:func:`point_status`).

    executor  None: one after another in this process; else a ``submitit``
              executor: the missing points go out as one job array
              (``executor.map_array``), e.g. ``submitit.AutoExecutor(folder)`` with
              ``update_parameters(slurm_partition=..., gpus_per_node=1, timeout_min=...,
              slurm_array_parallelism=...)``.
    wait      with an executor: wait for the jobs (a failed one raises its error).
    Returns the jobs (submitit) or the rows (in process) of the points it ran."""
    points = _checked(points, "run_sweep: ")
    missing = [pt for pt in points if point_status(pt, folder) != "done"]
    if executor is None:
        return [run_point(pt, folder) for pt in missing]
    if not missing:
        return []
    jobs = executor.map_array(run_point, missing, [str(folder)] * len(missing))
    if wait:
        for job in jobs:
            job.result()
    return jobs


def _checked(points, where: str) -> list[GridPoint]:
    check_type("points", points, Sequence, "pass make_grid(...)'s list", where=where)
    if not points:
        raise ValueError(f"{where}the grid is empty: make one with make_grid(profiles, ...)")
    for pt in points:
        check_type("a point", pt, GridPoint, "pass make_grid(...)'s list", where=where)
    return list(points)


def collect(points: Sequence[GridPoint], folder) -> list[dict]:
    """The sweep's table: one row per point (:data:`COLUMNS`), in the grid's order.
    Every point must be done: a missing one raises, naming it and the fix."""
    points = _checked(points, "collect: ")
    missing = [pt for pt in points if point_status(pt, folder) != "done"]
    if missing:
        raise ValueError(f"collect: {len(missing)} of {len(points)} points are not done (first: "
                         f"{missing[0].label()}); run them first: run_sweep(points, folder) "
                         "or `bigramlab sweep` with the same grid")
    return [json.loads(_record(folder, pt).read_text()) for pt in points]


def sweep_folder(name: str) -> Path:
    """Where a chapter keeps the rows of its sweep ``name``: ``sweeps/<name>`` in the
    cache, beside the masks the rows were measured on (Chapters 3 and 5)."""
    check_type("name", name, str, "name the sweep, e.g. 'figure1'", where="sweep_folder: ")
    return cache_dir() / "sweeps" / name


def write_table(rows: Iterable[dict], path) -> Path:
    """``rows`` as CSV (``.csv``) or JSON (``.json``: a list of objects; the
    endpoints' lambdas are written as -Infinity / Infinity, which Python reads)."""
    path, rows = Path(path), list(rows)
    if path.suffix not in (".csv", ".json"):
        raise ValueError(f"write_table: {path.name}: use a .csv or .json file name")

    def write(tmp: Path):
        if path.suffix == ".json":
            tmp.write_text(json.dumps(rows, indent=1))
            return
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(COLUMNS), extrasaction="ignore")
            w.writeheader()
            w.writerows(rows)
    return atomic_write(path, write)
