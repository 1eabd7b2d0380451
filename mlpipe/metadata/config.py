"""Where the ML Metadata store lives: plain, serializable connection settings (no MLMD import).

The same config travels inside a compiled pipeline, so a remote task connects to the same store.
Environment variables override it there (``MLPIPE_METADATA`` = a SQLite path or
``mysql://user[:password]@host[:port]/database``; ``MLPIPE_MYSQL_PASSWORD``), so a cluster can
point every task at a shared MySQL without recompiling.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote, urlparse

from mlpipe.errors import MetadataError


@dataclass(frozen=True)
class MetadataConfig:
    kind: str  # "sqlite" | "mysql"
    path: str = ""
    host: str = ""
    port: int = 3306
    database: str = ""
    user: str = ""
    password: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in ("", None)}

    @staticmethod
    def from_dict(data: dict[str, Any]) -> MetadataConfig:
        return MetadataConfig(**data)

    def describe(self) -> str:
        if self.kind == "sqlite":
            return f"sqlite:{self.path}"
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.database}"


def sqlite(path: str | os.PathLike[str]) -> MetadataConfig:
    """An embedded SQLite store in one file (created on first use)."""
    return MetadataConfig(kind="sqlite", path=os.path.abspath(os.fspath(path)))


def mysql(host: str, database: str, user: str, password: str = "", port: int = 3306) -> MetadataConfig:
    """A MySQL (or MariaDB) store; the password may come from ``MLPIPE_MYSQL_PASSWORD`` instead."""
    return MetadataConfig(
        kind="mysql", host=host, port=int(port), database=database, user=user, password=password
    )


def parse(uri: str) -> MetadataConfig:
    """A config from ``mysql://user:pw@host:port/db`` or a SQLite file path."""
    if uri.startswith("mysql://"):
        u = urlparse(uri)
        if not (u.hostname and u.path.strip("/") and u.username):
            raise MetadataError(
                f"metadata URI {uri!r} must look like mysql://user[:password]@host[:port]/database"
            )
        return mysql(
            u.hostname, u.path.strip("/"), unquote(u.username), unquote(u.password or ""), u.port or 3306
        )
    if "://" in uri:
        raise MetadataError(f"metadata URI {uri!r}: expected a SQLite file path or mysql://user@host/db")
    return sqlite(uri)


def from_environment(default: MetadataConfig | None) -> MetadataConfig | None:
    """``MLPIPE_METADATA`` if set, else ``default``; fills a MySQL password from the environment."""
    env = os.environ.get("MLPIPE_METADATA")
    config = parse(env) if env else default
    if config is not None and config.kind == "mysql" and not config.password:
        password = os.environ.get("MLPIPE_MYSQL_PASSWORD", "")
        config = MetadataConfig(**{**asdict(config), "password": password})
    return config


def default_for_root(pipeline_root: str) -> MetadataConfig:
    """The embedded default: ``metadata.sqlite`` beside the pipeline root."""
    root = os.path.abspath(pipeline_root)
    return sqlite(os.path.join(os.path.dirname(root), "metadata.sqlite"))
