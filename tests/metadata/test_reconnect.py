"""A team's MySQL store drops connections (a restart, ``wait_timeout``, a proxy): mlpipe reconnects.

The drop is real: the server kills the store's connection (``KILL``) between calls, which is what
a client sees after a server restart or an idle timeout.
"""

from __future__ import annotations

import uuid

import pytest

from mlpipe.metadata.config import mysql
from mlpipe.metadata.queries import list_runs
from mlpipe.metadata.store import MetadataStore
from mlpipe.orchestration.local import LocalDagRunner
from tests.orchestration import four_nodes

pytestmark = pytest.mark.mysql


def _kill_connections(server, database: str) -> list[int]:
    admin = server.connect()
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT id FROM information_schema.processlist WHERE db = %s", (database,))
            ids = [row[0] for row in cursor.fetchall()]
            for connection_id in ids:
                cursor.execute(f"KILL {connection_id}")
    finally:
        admin.close()
    return ids


def test_reads_and_the_writes_after_them_survive_a_killed_connection(mariadb_server, tmp_path, caplog):
    database = mariadb_server.create_database(f"mlmd_{uuid.uuid4().hex[:10]}")
    config = mysql(
        mariadb_server.host, database, mariadb_server.user, mariadb_server.password, mariadb_server.port
    )
    module = tmp_path / "user_module.py"
    module.write_text("def transform(v):\n    return v + 1\n")
    pipeline = four_nodes.create_pipeline(str(tmp_path / "root"), str(module), metadata=config)
    first = LocalDagRunner(progress=False).run(pipeline)

    store = MetadataStore(config)
    try:
        assert [r.run_id for r in list_runs(store)] == [first.run_id]
        assert _kill_connections(mariadb_server, database)  # the store's connection is gone
        assert [r.run_id for r in list_runs(store)] == [first.run_id]  # a read reconnects
        assert "connection lost, reconnected" in caplog.text
        context = store.context("pipeline_run", f"after-reconnect-{uuid.uuid4().hex[:6]}")  # and writes go on
        assert context.id > 0
    finally:
        store.close()


def test_a_run_on_a_store_whose_connection_was_killed_completes_from_the_cache(mariadb_server, tmp_path):
    database = mariadb_server.create_database(f"mlmd_{uuid.uuid4().hex[:10]}")
    config = mysql(
        mariadb_server.host, database, mariadb_server.user, mariadb_server.password, mariadb_server.port
    )
    module = tmp_path / "user_module.py"
    module.write_text("def transform(v):\n    return v + 1\n")
    pipeline = four_nodes.create_pipeline(str(tmp_path / "root"), str(module), metadata=config)
    store = MetadataStore(config)  # one long-lived store, as a scheduler's worker keeps one
    try:
        runner = LocalDagRunner(max_workers=1, progress=False)
        first = runner.run(pipeline, store=store)
        assert _kill_connections(mariadb_server, database)
        second = runner.run(pipeline, store=store)
    finally:
        store.close()
    assert [r.state for r in first.results.values()] == ["COMPLETE"] * 4
    assert [r.state for r in second.results.values()] == ["CACHED"] * 4
