"""Plumbing: the one atomic write, and names resolved once (require_profile)."""

import os

import pytest

from bigramlab.plumbing.files import atomic_write
from bigramlab.plumbing.profiles import get_profile, require_profile


def test_atomic_write_replaces_whole_files_only(tmp_path):
    path = tmp_path / "sub" / "f.txt"
    assert atomic_write(path, lambda tmp: tmp.write_text("one")) == path
    assert path.read_text() == "one"

    def dies_halfway(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt  # a kill between the write and the rename

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, dies_halfway)
    assert path.read_text() == "one"  # the old file, whole
    assert os.listdir(path.parent) == ["f.txt"]  # no temporary left behind
    atomic_write(path, lambda tmp: tmp.write_text("two"))
    assert path.read_text() == "two"


def test_require_profile_names_the_fix():
    p = get_profile("tiny")
    assert require_profile(p) is p
    for bad in ("tiny", None):
        with pytest.raises(TypeError, match=r"get_profile\(" + repr(bad).replace("'", ".")):
            require_profile(bad)
