"""Opening an ML Metadata store for reading only, after checking that it is there and sound.

The dashboard must never create, migrate or lock out a store that pipelines write to: a SQLite
store is opened in MLMD's READONLY mode, and every call is one short serialized read (the same
cross-process lock the writers use, held for one query). Before MLMD sees the store, a plain
sqlite3/pymysql probe tells a missing or corrupted store apart from an empty one, so the user gets
a sentence instead of an MLMD stack trace.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import Any

from mlpipe.errors import MetadataError
from mlpipe.metadata.config import MetadataConfig
from mlpipe.metadata.connection import LockedStore
from mlpipe.metadata.store import MetadataStore

MLMD_TABLE = "MLMDEnv"  # every MLMD schema version has it (it holds the schema version)


class _ReadOnlyLockedStore(LockedStore):
    """A LockedStore whose SQLite connection is READONLY (MLMD then never writes or migrates)."""

    def _open(self, factory: Callable[[Any], Any], conn: Any) -> Any:
        from ml_metadata.proto import metadata_store_pb2

        if conn.HasField("sqlite"):
            conn.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        return super()._open(factory, conn)


class ReadOnlyStore(MetadataStore):
    """A MetadataStore for the dashboard: the queries of ``mlpipe.metadata.queries`` work on it."""

    connection_class = _ReadOnlyLockedStore

    def __init__(self, config: MetadataConfig):
        check_store(config)  # a sentence for a missing or foreign store, before MLMD sees it
        super().__init__(config)


def check_store(config: MetadataConfig) -> None:
    """Raise a MetadataError saying what is wrong if ``config`` does not name a readable MLMD store."""
    if config.kind == "sqlite":
        if not os.path.isfile(config.path):
            raise MetadataError(
                f"no metadata store at {config.path}: run a pipeline first, or pass --metadata PATH"
            )
        try:
            with sqlite3.connect(f"file:{config.path}?mode=ro", uri=True) as db:
                tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as e:
            raise MetadataError(
                f"{config.path} is not a readable ML Metadata store ({e}); is it the right file?"
            ) from e
    elif config.kind == "mysql":
        import pymysql

        try:
            connection = pymysql.connect(
                host=config.host, port=config.port, user=config.user, password=config.password,
                database=config.database, connect_timeout=5,
            )  # fmt: skip
        except pymysql.MySQLError as e:
            raise MetadataError(f"cannot connect to the metadata store {config.describe()}: {e}") from e
        try:
            with connection.cursor() as cursor:
                cursor.execute("SHOW TABLES")
                tables = {row[0] for row in cursor.fetchall()}
        finally:
            connection.close()
    else:
        raise MetadataError(f"unknown metadata store kind {config.kind!r}")
    if MLMD_TABLE not in tables:
        raise MetadataError(
            f"{config.describe()} is not an ML Metadata store (no {MLMD_TABLE} table): "
            "point --metadata at the store a pipeline wrote"
        )
