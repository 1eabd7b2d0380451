"""Object-store servers for the session, and a fresh bucket (with the client environment set) per test."""

from __future__ import annotations

import uuid

import pytest

from tests.support.object_stores import start_gcs_server, start_s3_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server = start_s3_server(tmp_path_factory.mktemp("s3") / "moto.log")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    server = start_gcs_server(tmp_path_factory.mktemp("gcs") / "gcs.log")
    yield server
    server.stop()


def _use(server, monkeypatch, tmp_path) -> str:
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MLPIPE_OBJSTORE_CACHE", str(tmp_path / "objstore-cache"))
    from mlpipe.io import objstore

    objstore._STORES.clear()  # one client per scheme and process: built anew from this environment
    return f"mlpipe-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def bucket(s3_server, monkeypatch, tmp_path) -> str:
    """``s3://<new bucket>``; this process and its children reach it through the environment."""
    import s3fs

    name = _use(s3_server, monkeypatch, tmp_path)
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir(name)
    return f"s3://{name}"


@pytest.fixture
def gcs_bucket(gcs_server, monkeypatch, tmp_path) -> str:
    """``gs://<new bucket>`` in the emulator."""
    from google.cloud import storage

    name = _use(gcs_server, monkeypatch, tmp_path)
    client = storage.Client.create_anonymous_client()
    client.project = "mlpipe-test"
    client.create_bucket(name)
    return f"gs://{name}"
