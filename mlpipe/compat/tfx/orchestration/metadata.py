"""``tfx.orchestration.metadata``: the metadata connection configs TFX pipelines build.

They return mlpipe's :class:`~mlpipe.metadata.config.MetadataConfig`; a ``ml_metadata``
``ConnectionConfig`` proto built by hand (sqlite or mysql) is accepted by ``tfx.dsl.Pipeline`` too.
"""

from __future__ import annotations

from typing import Any

from mlpipe.errors import DefinitionError
from mlpipe.metadata import config
from mlpipe.metadata.config import MetadataConfig

ConnectionConfigType = MetadataConfig


def sqlite_metadata_connection_config(metadata_db_uri: str) -> MetadataConfig:
    return config.sqlite(metadata_db_uri)


def mysql_metadata_connection_config(
    host: str, port: int, database: str, username: str, password: str
) -> MetadataConfig:
    return config.mysql(host=host, database=database, user=username, password=password, port=port)


def connection_config(value: Any) -> MetadataConfig | None:
    """``Pipeline(metadata_connection_config=...)`` as mlpipe's config (None: mlpipe's default)."""
    if value is None or isinstance(value, MetadataConfig):
        return value
    kind = value.WhichOneof("config") if hasattr(value, "WhichOneof") else None
    if kind == "sqlite":
        return config.sqlite(value.sqlite.filename_uri)
    if kind == "mysql":
        m = value.mysql
        return config.mysql(
            host=m.host, database=m.database, user=m.user, password=m.password, port=m.port or 3306
        )
    raise DefinitionError(
        f"metadata_connection_config must come from tfx.orchestration.metadata."
        f"sqlite_metadata_connection_config(...) or mysql_metadata_connection_config(...), got {value!r}"
    )
