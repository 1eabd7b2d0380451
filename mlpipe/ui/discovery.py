"""How ``mlpipe run`` and notebooks find a running dashboard: a small file beside the store.

The dashboard writes ``<store>.ui.json`` (``{"url": ..., "pid": ...}``) next to a SQLite store, or
under ``~/.cache/mlpipe/`` for a MySQL store, and removes it when it stops. Reading it costs one
stat and one small read, with no network probe; a file left by a killed dashboard is ignored
because its process is gone. Importing this module imports nothing heavy.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote

from mlpipe.metadata.config import MetadataConfig


def discovery_path(config: MetadataConfig) -> str:
    if config.kind == "sqlite":
        return config.path + ".ui.json"
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{config.host}_{config.port}_{config.database}")
    return os.path.join(os.path.expanduser("~"), ".cache", "mlpipe", f"ui-{name}.json")


def announce(config: MetadataConfig, url: str) -> str:
    """Record that a dashboard for ``config`` serves at ``url``; returns the file to remove on exit."""
    path = discovery_path(config)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"url": url, "pid": os.getpid()}, f)
    os.replace(tmp, path)
    return path


def withdraw(path: str) -> None:
    """Remove the file, unless another dashboard has replaced it since."""
    try:
        with open(path, encoding="utf-8") as f:
            if json.load(f).get("pid") != os.getpid():
                return
        os.remove(path)
    except (OSError, ValueError):
        pass


def dashboard_url(config: MetadataConfig) -> str | None:
    """The base URL of a live dashboard over this store, or None."""
    try:
        with open(discovery_path(config), encoding="utf-8") as f:
            found = json.load(f)
        os.kill(int(found["pid"]), 0)  # raises if the process is gone
        return str(found["url"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def run_url(config: MetadataConfig, run_id: str) -> str | None:
    base = dashboard_url(config)
    return f"{base.rstrip('/')}/runs/{quote(run_id, safe='')}" if base else None
