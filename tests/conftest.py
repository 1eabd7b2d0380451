"""Shared fixtures: metadata stores on SQLite and on a real MariaDB server started here."""

from __future__ import annotations

import os
import uuid

import pytest

from mlpipe.metadata.config import MetadataConfig, mysql, sqlite

IN_CI = os.environ.get("CI") == "true"


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory):
    """A real MariaDB server for the whole session (skipped locally if absent; a failure in CI)."""
    from tests.support.mariadb import find_mariadbd, start_mariadb

    if find_mariadbd() is None:
        message = "mariadbd not installed: run .ci/install_system_packages.sh"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = start_mariadb(tmp_path_factory.mktemp("mariadb"))
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "mysql"])
def metadata_config(request, tmp_path) -> MetadataConfig:
    """The same tests run against an embedded SQLite file and a fresh MariaDB database."""
    if request.param == "sqlite":
        return sqlite(tmp_path / "metadata.sqlite")
    server = request.getfixturevalue("mariadb_server")
    database = server.create_database(f"mlmd_{uuid.uuid4().hex[:10]}")
    return mysql(server.host, database, server.user, server.password, server.port)
