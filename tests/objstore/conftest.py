"""An S3 server for the session, and a fresh bucket (with the client environment set) per test."""

from __future__ import annotations

import uuid

import pytest

from tests.support.s3_server import start_s3_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = start_s3_server(tmp_path_factory.mktemp("s3") / "moto.log")
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server, monkeypatch, tmp_path) -> str:
    """``s3://<new bucket>``; this process and its children reach it through the environment."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLPIPE_OBJSTORE_CACHE", str(tmp_path / "objstore-cache"))
    name = f"mlpipe-{uuid.uuid4().hex[:12]}"
    import s3fs

    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    _reset_clients()
    return f"s3://{name}"


def _reset_clients() -> None:
    """mlpipe keeps one client per scheme and process; tests change the endpoint between sessions."""
    from mlpipe.io import objstore

    objstore._STORES.clear()
