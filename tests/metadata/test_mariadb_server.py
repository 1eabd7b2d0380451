"""MLMD against a real, test-started MariaDB server.

Proves the test-support server is usable as an MLMD backend: schema creation on
an empty database, round-tripping artifacts, and several clients (connections)
sharing one store, which is how pipeline components see each other's outputs.
"""

from __future__ import annotations

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from tests.support.mariadb import MariaDBServer

pytestmark = [pytest.mark.mysql, pytest.mark.e2e]


@pytest.fixture
def mariadb(mariadb_server: MariaDBServer) -> MariaDBServer:
    """The session's server (tests/conftest.py): started once, a failure in CI when it is missing."""
    return mariadb_server


def _connection_config(server: MariaDBServer, database: str) -> metadata_store_pb2.ConnectionConfig:
    config = metadata_store_pb2.ConnectionConfig()
    config.mysql.host = server.host
    config.mysql.port = server.port
    config.mysql.database = database
    config.mysql.user = server.user
    config.mysql.password = server.password
    return config


def _put_model_type(store: metadata_store.MetadataStore) -> int:
    artifact_type = metadata_store_pb2.ArtifactType(name="Model")
    artifact_type.properties["num_layers"] = metadata_store_pb2.INT
    return store.put_artifact_type(artifact_type)


def test_mlmd_round_trips_an_artifact(mariadb: MariaDBServer) -> None:
    config = _connection_config(mariadb, mariadb.create_database("mlmd_roundtrip"))
    store = metadata_store.MetadataStore(config)  # creates the schema in the empty database

    type_id = _put_model_type(store)
    artifact = metadata_store_pb2.Artifact(type_id=type_id, uri="/models/1", name="model-1")
    artifact.properties["num_layers"].int_value = 3
    [artifact_id] = store.put_artifacts([artifact])

    [stored] = store.get_artifacts_by_id([artifact_id])
    assert stored.type_id == type_id
    assert stored.uri == "/models/1"
    assert stored.name == "model-1"
    assert stored.properties["num_layers"].int_value == 3
    assert store.get_artifact_type("Model").properties["num_layers"] == metadata_store_pb2.INT


def test_two_clients_see_each_others_writes(mariadb: MariaDBServer) -> None:
    config = _connection_config(mariadb, mariadb.create_database("mlmd_shared"))
    writer = metadata_store.MetadataStore(config)
    reader = metadata_store.MetadataStore(config)

    type_id = _put_model_type(writer)
    assert reader.get_artifact_type("Model").id == type_id
    assert _put_model_type(reader) == type_id  # same type registered twice is idempotent

    [from_writer] = writer.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri="/w")])
    [from_reader] = reader.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri="/r")])

    for store in (writer, reader):
        uris = {a.id: a.uri for a in store.get_artifacts_by_type("Model")}
        assert uris == {from_writer: "/w", from_reader: "/r"}
