"""bigramlab.experiments.sweep: a grid of masks trained once, in process or as jobs.

The main test runs a 2 x 2 grid (the tiny profile at two checkpoints x two
lambdas, 20 steps each, a state saved every 5) twice, each into a cache of its
own that shares the tiny world: once in this process, once as submitit jobs
(its local executor: subprocesses, as a SLURM job array would run them) where
one job is killed after its first saved state and the sweep is submitted
again. Both must end with bit-identical masks, the second submission must run
only the killed point, and a third must run nothing.
"""

import json
import math
import time

import pytest
import torch

from bigramlab.cli import main
from bigramlab.experiments.bigram import bigram_model
from bigramlab.experiments.sweep import (COLUMNS, collect, make_grid, point_status, run_sweep,
                                         sweep_folder,
                                         write_table)
from bigramlab.experiments.subnetworks import mask_config, mask_key
from bigramlab.methods.sparsify import RESULT_FILE, STATE_FILE
from bigramlab.plumbing.cache import cache_dir, entry_path
from bigramlab.plumbing.devices import default_device
from bigramlab.plumbing.inputs import load_torch_file
from bigramlab.plumbing.profiles import UnknownProfileError, get_profile
from bigramlab.worlds.loading import load_corpus

GRID = dict(profiles=["tiny"], checkpoints=["step512", "step1500"], lambdas=[3, 10],
            max_steps=20, save_every=5)


@pytest.fixture(scope="module")
def world():
    """The tiny world (corpus, tokenizer, bigram model) in the session's cache."""
    p = get_profile("tiny")
    load_corpus(p, "eval")
    bigram_model(p, progress=False)
    return cache_dir()


def private_cache(world, path, monkeypatch):
    """A cache of its own that shares the world's entries (symlinks), no masks."""
    path.mkdir()
    for entry in world.iterdir():
        if entry.is_dir() and not entry.name.startswith((".", "mask-")) \
                and not entry.name.endswith(".partial"):
            (path / entry.name).symlink_to(entry)
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(path))
    return path


def same_rows(a, b, rel=1e-12):
    """Rows of the same masks, measured in two processes: every field equal, the measured
    floats to 1e-12 (the masks themselves are compared bit for bit; MKL may sum a
    reduction in another order in another process, e.g. for another memory alignment:
    r 0.6685327735802284 vs ...286 was seen)."""
    def same(x, y):
        if isinstance(x, float) and isinstance(y, float):
            return math.isclose(x, y, rel_tol=rel)
        return x == y
    return len(a) == len(b) and all(
        r.keys() == s.keys() and all(same(r[k], s[k]) for k in r) for r, s in zip(a, b))


def test_same_rows_catches_a_moved_number_or_word():
    row = {"profile": "tiny", "lambda": 3.0, "kept": 41925, "r_max": 0.6685327735802284}
    assert same_rows([row], [dict(row, r_max=0.6685327735802286)])
    assert not same_rows([row], [dict(row, r_max=0.6685327736)])
    assert not same_rows([row], [dict(row, kept=41926)])
    assert not same_rows([row], [dict(row, profile="tiny-d32")])
    assert not same_rows([row], [row, row])


def saved_logits(point):
    key = mask_key(point.profile, point.checkpoint, point.target,
                   mask_config(point.profile, point.lam, **dict(point.changes)), default_device())
    return load_torch_file(entry_path("mask", key) / RESULT_FILE)["mask_logits"]


@pytest.mark.slow
def test_killed_and_resubmitted_jobs_end_with_the_sequential_masks(world, tmp_path, monkeypatch,
                                                                     one_thread):
    submitit = pytest.importorskip("submitit")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the jobs' thread count: part of the mask key
    monkeypatch.setenv("TQDM_DISABLE", "1")
    points = make_grid(**GRID)
    assert len(points) == 4

    # 1. in this process
    private_cache(world, tmp_path / "seq", monkeypatch)
    t0 = time.perf_counter()
    rows = run_sweep(points, tmp_path / "seq-out")
    print(f"sequential: {time.perf_counter() - t0:.0f} s")
    assert len(rows) == 4 and all(point_status(p, tmp_path / "seq-out") == "done" for p in points)
    sequential = [saved_logits(p) for p in points]
    seq_rows = collect(points, tmp_path / "seq-out")

    # 2. as submitit jobs, one killed midway, then submitted again
    private_cache(world, tmp_path / "jobs", monkeypatch)
    executor = submitit.AutoExecutor(folder=tmp_path / "logs", cluster="local")
    executor.update_parameters(timeout_min=20)
    out = tmp_path / "jobs-out"
    t0 = time.perf_counter()
    jobs = run_sweep(points, out, executor, wait=False)
    assert len(jobs) == 4
    victim = points[3]
    key = mask_key(victim.profile, victim.checkpoint, victim.target,
                   mask_config(victim.profile, victim.lam, **dict(victim.changes)),
                   default_device())
    partial = entry_path("mask", key).with_name(f"mask-{key}.partial")
    deadline = time.time() + 600
    while not (partial / STATE_FILE).exists():  # its first saved state (after 5 steps)
        assert time.time() < deadline and not jobs[3].done(), "the job ended before a save"
        time.sleep(0.1)
    jobs[3].cancel()
    for job in jobs[:3]:
        job.result()
    while not jobs[3].done():
        time.sleep(0.1)
    print(f"first submission: {time.perf_counter() - t0:.0f} s")
    # killed midway: its state is saved, its mask and its row are not there
    assert (partial / STATE_FILE).exists() and not (partial / RESULT_FILE).exists()
    saved_steps = load_torch_file(partial / STATE_FILE)["run"]["step"]
    assert 0 < saved_steps < GRID["max_steps"]  # the next job resumes from here
    assert [point_status(p, out) for p in points] == ["done"] * 3 + ["missing"]
    with pytest.raises(ValueError, match="1 of 4 points are not done.*lambda 10"):
        collect(points, out)

    t0 = time.perf_counter()
    again = run_sweep(points, out, executor)
    print(f"resubmission: {time.perf_counter() - t0:.0f} s")
    assert len(again) == 1  # only the killed point
    assert run_sweep(points, out, executor) == []  # nothing left: no job at all

    for point, seq in zip(points, sequential):
        got = saved_logits(point)
        assert got.keys() == seq.keys()
        assert all(torch.equal(got[n], seq[n]) for n in seq), point.label()
    assert same_rows(collect(points, out), seq_rows)


@pytest.mark.slow
def test_a_row_lost_is_measured_again_from_the_cached_mask(world, tmp_path, monkeypatch,
                                                            one_thread):
    private_cache(world, tmp_path / "c", monkeypatch)
    points = make_grid(["tiny"], ["step1500"], [10], max_steps=10, save_every=5)
    (row,) = run_sweep(points, tmp_path / "out")
    manifest = entry_path("mask", row["mask_key"]) / "MANIFEST.json"
    built = manifest.stat().st_mtime_ns
    for f in (tmp_path / "out" / "points").iterdir():
        f.unlink()
    assert point_status(points[0], tmp_path / "out") == "missing"
    assert run_sweep(points, tmp_path / "out") == [row]
    assert manifest.stat().st_mtime_ns == built  # loaded, not trained again

    # the command line finds it done and writes the table
    argv = ["sweep", "--profiles", "tiny", "--checkpoints", "step1500", "--lambdas", "10",
            "--max-steps", "10", "--set", "save_every=5", "--folder", str(tmp_path / "out"),
            "--out", str(tmp_path / "cli.json")]
    assert main(argv) == 0
    assert json.loads((tmp_path / "cli.json").read_text()) == [row]
    assert manifest.stat().st_mtime_ns == built

    write_table([row], tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines()[0] == ",".join(COLUMNS)
    write_table([row], tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text()) == [row]


def test_grids_are_described_and_checked():
    p = get_profile("tiny")
    assert [(q.checkpoint, q.lam) for q in make_grid(["tiny"])] == [
        (p.final_checkpoint, lam) for lam in p.lambdas]
    assert len(make_grid("tiny", "all", "0,inf", ["bigram", "full"])) == \
        len(p.checkpoints) * 2 * 2
    ids = {q.id for q in make_grid(["tiny", "tiny-gpt2"], lambdas=[1, 3], max_steps=20)}
    assert len(ids) == 4  # every point has its own id
    assert make_grid(["tiny"], lambdas=[3], max_steps=20)[0].id != \
        make_grid(["tiny"], lambdas=[3], max_steps=30)[0].id


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(profiles=["tiny", "pythia-7b"]), UnknownProfileError, "valid profiles"),
    (dict(profiles=[]), ValueError, "no profiles"),
    (dict(profiles=["tiny"], lambdas=[]), ValueError, "grid is empty"),
    (dict(profiles=["tiny"], checkpoints=["step143000"]), ValueError, "no checkpoint.*'all'"),
    (dict(profiles=["tiny"], lambdas=[-2]), ValueError, "endpoints"),
    (dict(profiles=["tiny"], targets=["optimal"]), ValueError, "use one of bigram, full"),
    (dict(profiles=["tiny"], max_step=30), TypeError, "unknown mask-training setting"),
])
def test_bad_grids_name_the_fix(kwargs, error, match):
    with pytest.raises(error, match=match):
        make_grid(**kwargs)


def test_bad_points_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match="grid is empty"):
        run_sweep([], tmp_path)
    with pytest.raises(TypeError, match="make_grid"):
        collect(["tiny"], tmp_path)
    with pytest.raises(ValueError, match=".csv or .json"):
        write_table([], tmp_path / "t.txt")


def test_cli_lists_the_grid_and_refuses_bad_ones(tmp_path, capsys):
    argv = ["sweep", "--profiles", "tiny", "--lambdas", "3,inf", "--checkpoints", "step512",
            "--folder", str(tmp_path), "--status"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "grid: 2 masks; done 0, to run 2" in out and "missing  tiny step512 bigram lambda inf" in out
    for bad, match in ((["--profiles", "tiny,pythia-7b"], "unknown profile 'pythia-7b'"),
                       (["--profiles", "tiny", "--set", "max_step=3"], "'max_step'"),
                       (["--profiles", "tiny", "--set", "seed"], "name=value")):
        assert main(["sweep", *bad, "--folder", str(tmp_path), "--status"]) == 2
        assert match in capsys.readouterr().err


def test_a_chapter_grid_reuses_the_chapters_masks_and_keeps_rows_in_the_cache(monkeypatch,
                                                                              tmp_path):
    # Chapters 3 and 5 sweep with make_grid(..., max_steps=chapter_max_steps): each point
    # must be the mask train_subnetwork(profile, lam, checkpoint, max_steps=...) trains,
    # or the chapters would train every shared mask twice
    p = get_profile("tiny")
    for ckpt in ("step256", p.final_checkpoint):
        (pt,) = make_grid([p], checkpoints=[ckpt], lambdas=[3.0], max_steps=p.chapter_max_steps)
        chapter = mask_config(p, 3.0, max_steps=p.chapter_max_steps)
        grid = mask_config(p, pt.lam, **dict(pt.changes))
        assert mask_key(p, ckpt, "bigram", grid, torch.device("cpu")) == \
            mask_key(p, ckpt, "bigram", chapter, torch.device("cpu"))
    assert make_grid([p], lambdas=[3.0])[0].id != pt.id  # the profile's own max_steps differs
    monkeypatch.setenv("BIGRAMLAB_CACHE", str(tmp_path))
    assert sweep_folder("figure1") == tmp_path / "sweeps" / "figure1"
    with pytest.raises(TypeError, match="name the sweep"):
        sweep_folder(1)
