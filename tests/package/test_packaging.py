"""The package as it is released: wheel and sdist, and the release workflow.

- (slow) ``python -m build`` makes the sdist from a copy of the working tree and the
  wheel from that sdist, as the release workflow does; the wheel holds every
  bigramlab module and nothing else of the repository; the sdist holds README.md and
  pyproject.toml; the wheel installed into a fresh virtual environment (its
  dependencies taken from this one through a ``.pth`` file, nothing downloaded) runs
  ``bigramlab info`` outside the repository and prints the version.
- ``.github/workflows/release.yml`` checks the tag, builds, publishes to PyPI and
  deploys the book; the appendix's "Releasing" checklist names each of its jobs; and
  ``.github/workflows/ci.yml`` runs ``.ci/run``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT

WORKFLOWS = ROOT / ".github" / "workflows"


def pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


VERSION = pyproject()["project"]["version"]


def run(args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed ({done.returncode}):\n" \
                                 f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def source_modules() -> set[str]:
    """Every module of the package in the working tree, as a path in the wheel."""
    return {p.relative_to(ROOT).as_posix() for p in (ROOT / "bigramlab").rglob("*.py")
            if "__pycache__" not in p.parts}


def working_tree_copy(dest: Path) -> Path:
    """The files a clean checkout holds (tracked, plus new files not ignored), copied."""
    listed = run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others",
                  "--exclude-standard"]).stdout.split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        if src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """(wheel, sdist) built from a copy of the working tree."""
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("`build` is not installed: pip install -r requirements.txt")
    tree = working_tree_copy(tmp_path_factory.mktemp("tree"))
    out = tmp_path_factory.mktemp("dist")
    # No isolation: setuptools comes from this environment instead of a download.
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, tree])
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"bigramlab-{VERSION}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"bigramlab-{VERSION}.tar.gz"]
    return wheels[0], sdists[0]


@pytest.mark.slow
def test_wheel_holds_every_module_and_nothing_else(dist):
    wheel, _ = dist
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = source_modules()
    assert {"bigramlab/worlds/tiny/__init__.py", "bigramlab/plumbing/environment.py",
            "bigramlab/checks/__init__.py", "bigramlab/grade/__init__.py"} <= modules
    missing = sorted(modules - names)
    assert not missing, f"the wheel lacks {missing}: is a folder missing its __init__.py?"
    info = f"bigramlab-{VERSION}.dist-info/"
    strays = sorted(n for n in names if not n.startswith(("bigramlab/", info)))
    assert not strays, f"the wheel holds more than the package: {strays[:10]}"
    # the released tiny world (tokenizer, checkpoints, manifest) ships with the package
    pkg = ROOT / "bigramlab"
    released = {f"bigramlab/{f.relative_to(pkg).as_posix()}"
                for f in (pkg / "worlds" / "tiny" / "released").rglob("*") if f.is_file()}
    assert released and released <= names, sorted(released - names)[:5]
    assert not [n for n in names if n.startswith("bigramlab/") and n not in modules | released]
    metadata = zipfile.ZipFile(wheel).read(info + "METADATA").decode()
    assert f"Version: {VERSION}" in metadata.splitlines()
    def canonical(requirement: str) -> tuple[str, str]:
        r = Requirement(requirement)
        return canonicalize_name(r.name), str(r.specifier)

    requires = sorted(canonical(line.split(": ", 1)[1]) for line in metadata.splitlines()
                      if line.startswith("Requires-Dist: ") and "extra ==" not in line)
    assert requires == sorted(canonical(d) for d in pyproject()["project"]["dependencies"])
    # `bigramlab sweep` on a cluster: pip install 'bigramlab[cluster]'
    assert "Provides-Extra: cluster" in metadata.splitlines()
    entry_points = zipfile.ZipFile(wheel).read(info + "entry_points.txt").decode()
    assert "bigramlab = bigramlab.cli:main" in entry_points


@pytest.mark.slow
def test_sdist_holds_readme_pyproject_and_the_package(dist):
    _, sdist = dist
    top = f"bigramlab-{VERSION}/"
    names = {n.removeprefix(top) for n in tarfile.open(sdist).getnames()}
    assert {"README.md", "pyproject.toml", "PKG-INFO"} <= names
    assert source_modules() <= names


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(dist, tmp_path):
    wheel, _ = dist
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
                .stdout.strip())
    # The dependencies (torch, transformers, ...) are this environment's: its package
    # folders as path lines in a .pth file (their own .pth files, such as an editable
    # bigramlab's, are not processed), after the new environment's own.
    ours = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    assert sysconfig.get_paths()["purelib"] in ours
    (site / "dependencies.pth").write_text("".join(f"{p}\n" for p in ours))
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
         "--no-index", "-q", wheel])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(HF_HUB_OFFLINE="1", BIGRAMLAB_PROFILE="tiny", BIGRAMLAB_CACHE=str(tmp_path / "cache"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    where = run([python, "-c", "import bigramlab, importlib.metadata as m; "
                 "print(bigramlab.__file__); print(m.version('bigramlab'))"],
                cwd=outside, env=env).stdout.split()
    assert Path(where[0]).is_relative_to(site), f"bigramlab was imported from {where[0]}"
    assert where[1] == VERSION
    info = run([venv / "bin" / "bigramlab", "info"], cwd=outside, env=env).stdout
    assert info.splitlines()[0] == f"bigramlab {VERSION}"
    assert "profile:  tiny" in info


# ---------------------------------------------------------------------------
# The release workflow and the appendix's checklist (book/engineering.md)


def workflow(name: str) -> dict:
    path = WORKFLOWS / name
    assert path.exists(), f"{path.relative_to(ROOT)} is missing"
    return yaml.safe_load(path.read_text(encoding="utf8"))


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def runs(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in steps(job))


def uses(job: dict) -> list[str]:
    return [s["uses"].split("@")[0] for s in steps(job) if "uses" in s]


def releasing_section() -> str:
    text = (ROOT / "book" / "engineering.md").read_text(encoding="utf8")
    found = re.search(r"^## Releasing\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert found, "book/engineering.md has no '## Releasing' section"
    return found.group(1)


def test_release_workflow_runs_on_version_tags():
    flow = workflow("release.yml")
    on = flow.get("on", flow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert on == {"push": {"tags": ["v*"]}}, on


def test_release_workflow_jobs_and_their_order():
    jobs = workflow("release.yml")["jobs"]
    assert set(jobs) == {"check-version", "build", "publish-pypi", "book", "deploy-pages"}
    assert "check-version" in str(jobs["build"]["needs"])
    assert jobs["publish-pypi"]["needs"] == "build"
    assert "check-version" in str(jobs["book"]["needs"])
    assert jobs["deploy-pages"]["needs"] == "book"
    # the tag must be the version of pyproject.toml
    check = runs(jobs["check-version"])
    assert "pyproject.toml" in check and "GITHUB_REF_NAME" in check and "exit 1" in check
    # wheel and sdist, handed to the publishing job as an artifact
    assert "python -m build" in runs(jobs["build"])
    assert "actions/upload-artifact" in uses(jobs["build"])
    publish = jobs["publish-pypi"]
    assert "actions/download-artifact" in uses(publish)
    assert "pypa/gh-action-pypi-publish" in uses(publish)
    assert publish["permissions"] == {"id-token": "write"}  # trusted publishing: no token
    assert publish["environment"]["name"] == "pypi"
    # the book from its stored outputs, then GitHub Pages
    assert "make book" in runs(jobs["book"])
    assert "actions/upload-pages-artifact" in uses(jobs["book"])
    deploy = jobs["deploy-pages"]
    assert "actions/deploy-pages" in uses(deploy)
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"


def test_release_workflow_checks_the_tag_like_pyproject(tmp_path):
    """The check-version step, run as the workflow runs it, on a right and a wrong tag."""
    script = runs(workflow("release.yml")["jobs"]["check-version"])
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "1.2.3"\n')
    for tag, ok in (("v1.2.3", True), ("v1.2.4", False), ("1.2.3", False)):
        done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True,
                              text=True, env={**os.environ, "GITHUB_REF_NAME": tag})
        assert (done.returncode == 0) == ok, (tag, done.stdout, done.stderr)


def test_appendix_checklist_names_each_job():
    section = releasing_section()
    jobs = workflow("release.yml")["jobs"]
    missing = [job for job in jobs if f"`{job}`" not in section]
    assert not missing, f"the appendix's Releasing checklist does not name the jobs {missing}"
    # the checklist's order is the workflow's
    order = [section.index(f"`{job}`") for job in jobs]
    assert order == sorted(order), "the checklist names the jobs in another order than release.yml"
    assert "pyproject.toml" in section and "git tag" in section


def test_ci_workflow_runs_the_ci_script():
    flow = workflow("ci.yml")
    all_runs = "\n".join(runs(job) for job in flow["jobs"].values())
    assert re.search(r"^bash \.ci/run$", all_runs, re.MULTILINE), all_runs
    assert (ROOT / ".ci" / "run").exists()


def test_the_published_book_opens_the_notebooks_of_its_tag(tmp_path):
    """The release's book job rewrites _config.yml's branch to the tag (so Colab opens the
    notebooks the install cells match); its sed pattern must match the real line."""
    import subprocess
    import yaml
    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())["jobs"]
    steps = [s.get("run", "") for s in jobs["book"]["steps"]]
    sed = next(r for r in steps if "branch:" in r)
    assert steps.index(sed) < next(i for i, r in enumerate(steps) if "make book" in r)
    copy = tmp_path / "_config.yml"
    copy.write_text((ROOT / "_config.yml").read_text())
    out = subprocess.run(["bash", "-c", sed.replace("_config.yml", str(copy))], capture_output=True,
                         text=True, env={"GITHUB_REF_NAME": "v9.9.9", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert yaml.safe_load(copy.read_text())["repository"]["branch"] == "v9.9.9"
