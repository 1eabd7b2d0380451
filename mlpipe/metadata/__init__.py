"""The storage layer's ML Metadata side: connection configs, recording, queries.

``mlpipe.metadata.sqlite(path)`` and ``mlpipe.metadata.mysql(...)`` say where the store lives;
``MetadataStore`` (imported on use) opens it.
"""

from mlpipe.metadata.config import MetadataConfig, mysql, parse, sqlite

__all__ = ["MetadataConfig", "mysql", "parse", "sqlite"]
