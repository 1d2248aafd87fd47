"""Every chapter's real-profile branch, executed end to end on the stand-in.

``tools/standin.py`` lays out, offline, what the real world downloads (Pythia
70M and 160M as random-weight models of the real layer and head counts at a
reduced width, one snapshot per revision, in a Hugging Face cache of the Hub's
own layout; stand-in released masks in the authors' pickle format; a local
text corpus streamed with ``datasets``) and runs a notebook in a fresh kernel
with the real profiles on it. A chapter passes when it runs to the end; the
numbers are not compared (random weights). A bug in a branch the tiny world
never takes (``else:`` after ``if profile.is_tiny``) fails here.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from bigramlab import cache_dir
from tools import standin

pytestmark = pytest.mark.slow  # a kernel per chapter, and the tiny world's corpus

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("ch*.ipynb"))


@pytest.fixture(scope="module")
def env():
    return standin.build(cache_dir() / "standin")


def outputs(nb) -> str:
    return "".join(o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
                   for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_the_stand_in_is_the_real_world(env):
    """The hub layout answers as the Hub would: revisions, the tokenizer, released masks."""
    code = ("import tools.standin as s, os; s.activate(os.environ['BIGRAMLAB_STANDIN_CORPUS']);"
            "from bigramlab import get_profile, load_model;"
            "from bigramlab.worlds.hub import load_released_subnetwork;"
            "p = get_profile(); m0, _ = load_model(p, 'step0', device='cpu');"
            "m1, _ = load_model(p, device='cpu'); sub = load_released_subnetwork(p.model_id);"
            "sub.check(m1); import torch;"
            "print(p.name, p.is_tiny, m1.config.num_hidden_layers,"
            " torch.equal(m0.gpt_neox.embed_in.weight, m1.gpt_neox.embed_in.weight))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ) | env,
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["pythia-70m", "False", "6", "False"]


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_runs_on_the_real_branch(path, env, tmp_path):
    out = standin.run(path, tmp_path, env)
    text = outputs(nbformat.read(out, as_version=4))
    assert "pythia-" in text  # the chapter says which (real) profile it ran


def test_session_budget_takes_the_released_mask_and_trains_the_rest(env):
    """Under the session budget (the default) a released mask stands in for training;
    released=False, a checkpoint or a lambda with none released, or the paper's budget train."""
    code = ("import tools.standin as s, os; s.activate(os.environ['BIGRAMLAB_STANDIN_CORPUS']);"
            "from bigramlab import get_profile; from bigramlab.experiments import train_subnetwork;"
            "from bigramlab.worlds.hub import load_released_subnetwork;"
            "p = get_profile(); assert p.budget == os.environ.get('BIGRAMLAB_BUDGET', 'session');"
            "r = train_subnetwork(p, 10.0, progress=False);"
            "own = train_subnetwork(p, 10.0, progress=False, released=False);"
            "mid = train_subnetwork(p, 10.0, checkpoint='step512', progress=False);"
            "rel = load_released_subnetwork(p.model_id, 10.0);"
            "print(p.budget, r.source.startswith(\"the authors' released\"), r.mask == rel,"
            " r.steps, r.kept_count == rel.count(), own.source, own.steps > 0, mid.source)")
    for budget, expect in (("session", ["session", "True", "True", "0", "True"]),
                           ("paper", ["paper", "False", "False"])):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=dict(os.environ) | env | {"BIGRAMLAB_BUDGET": budget},
                             cwd=ROOT, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        words = out.stdout.split()
        assert words[:len(expect)] == expect
        assert words[-3:] == ["trained", "True", "trained"]
