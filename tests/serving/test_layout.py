"""TF Serving's directory layout and atomic publishing (no TensorFlow needed)."""

from __future__ import annotations

import os

import pytest

from mlpipe.errors import ServingError
from mlpipe.serving import layout
from mlpipe.serving.layout import list_versions, publish_version, version_dirs


@pytest.fixture
def export(tmp_path):
    """A directory that looks like a SavedModel export."""
    path = tmp_path / "export"
    (path / "variables").mkdir(parents=True)
    (path / "saved_model.pb").write_bytes(b"graph")
    (path / "variables" / "variables.index").write_bytes(b"index")
    return path


def test_only_integer_named_directories_are_versions(tmp_path):
    for name in ("1", "007", "12", ".tmp-3-99", "latest", "-4", " 5", "6a"):
        (tmp_path / name).mkdir()
    (tmp_path / "8").write_text("a file, not a directory")
    assert version_dirs(tmp_path) == {
        1: str(tmp_path / "1"),
        7: str(tmp_path / "007"),
        12: str(tmp_path / "12"),
    }
    assert list_versions(tmp_path) == [1, 7, 12]
    assert list_versions(tmp_path / "missing") == []


def test_publish_numbers_versions_and_copies_the_saved_model(tmp_path, export):
    base = tmp_path / "serving" / "taxi"
    assert publish_version(export, base) == 1
    assert publish_version(export, base) == 2
    assert publish_version(export, base, version=10) == 10
    assert publish_version(export, base) == 11
    assert sorted(os.listdir(base)) == ["1", "10", "11", "2"]  # no staging leftovers
    assert (base / "11" / "variables" / "variables.index").read_bytes() == b"index"


def test_publish_never_replaces_a_version(tmp_path, export):
    base = tmp_path / "taxi"
    publish_version(export, base, version=3)
    (base / "3" / "saved_model.pb").write_bytes(b"served")
    with pytest.raises(ServingError, match="version 3 already exists"):
        publish_version(export, base, version=3)
    assert (base / "3" / "saved_model.pb").read_bytes() == b"served"


def test_publish_refuses_what_is_not_a_saved_model(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"pickle")
    with pytest.raises(ServingError, match="not a SavedModel directory"):
        publish_version(tmp_path, tmp_path / "serving")
    assert not (tmp_path / "serving").exists()


def test_a_version_appears_only_complete(tmp_path, export, monkeypatch):
    """Until the final rename no integer-named directory exists, and the renamed copy is whole."""
    base = tmp_path / "taxi"
    at_rename = []
    real_rename = os.rename

    def rename(source, target):
        copied = sorted(
            os.path.relpath(os.path.join(d, f), source) for d, _, files in os.walk(source) for f in files
        )
        at_rename.append((os.path.basename(source), os.path.basename(target), list_versions(base), copied))
        real_rename(source, target)

    monkeypatch.setattr(layout.os, "rename", rename)
    publish_version(export, base)
    assert at_rename == [
        (f".tmp-1-{os.getpid()}", "1", [], ["saved_model.pb", os.path.join("variables", "variables.index")])
    ]
    assert list_versions(base) == [1]


def test_a_failed_copy_leaves_nothing_behind(tmp_path, export, monkeypatch):
    base = tmp_path / "taxi"

    def failing_copy(source, target, *args, **kwargs):
        os.makedirs(target)
        raise OSError("disk full")

    monkeypatch.setattr(layout.shutil, "copytree", failing_copy)
    with pytest.raises(OSError, match="disk full"):
        publish_version(export, base)
    assert os.listdir(base) == []
