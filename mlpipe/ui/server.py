"""Serving the dashboard: checks before binding, a threaded HTTP server, the discovery file.

Werkzeug's threaded server is enough for a team's dashboard and needs no extra dependency. Every
request is a few short MLMD reads, and the store's lock serializes them with pipeline writers one
call at a time, so a running pipeline never waits for a page.
"""

from __future__ import annotations

import ipaddress
import logging
import signal
import threading
from dataclasses import dataclass, field
from typing import Any

from mlpipe.errors import MlpipeError
from mlpipe.ir import PipelineIR
from mlpipe.metadata.config import MetadataConfig
from mlpipe.ui import discovery
from mlpipe.ui.app import DashboardApp
from mlpipe.ui.store import ReadOnlyStore

log = logging.getLogger("mlpipe.ui")

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Dashboard:
    """A started dashboard; ``url`` is where it answers. ``stop()`` closes it and its discovery file."""

    url: str
    server: Any
    store: ReadOnlyStore
    discovery_file: str | None
    thread: threading.Thread | None = field(default=None)

    def serve_forever(self) -> None:
        """Serve until Ctrl-C or SIGTERM; either way the discovery file is removed."""
        signal.signal(signal.SIGTERM, _exit_on_signal)
        try:
            self.server.serve_forever()
        finally:
            self._close()

    def stop(self) -> None:
        self.server.shutdown()
        if self.thread is not None:
            self.thread.join()
        self._close()

    def _close(self) -> None:
        if self.discovery_file:
            discovery.withdraw(self.discovery_file)
            self.discovery_file = None
        self.server.server_close()
        self.store.close()


def _exit_on_signal(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def start(
    config: MetadataConfig,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    token: str | None = None,
    pipeline_ir: PipelineIR | None = None,
    pipeline_file: str | None = None,
    serving_url: str | None = None,
    background: bool = False,
) -> Dashboard:
    """Open the store (a clear error if it is missing or not an MLMD store) and bind the server.

    ``port=0`` picks a free port. With ``background`` the server runs in a daemon thread (tests,
    notebooks); otherwise call ``serve_forever()``.
    """
    if not is_loopback(host) and not token:
        raise MlpipeError(
            f"--host {host} makes the dashboard reachable from other machines: "
            "set a token with --token or MLPIPE_UI_TOKEN, or bind to 127.0.0.1"
        )
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietRequestHandler(WSGIRequestHandler):
        """No access log: a page polls every second, which would flood a notebook or a test log."""

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            pass

    store = ReadOnlyStore(config)
    app = DashboardApp(store, pipeline_ir, pipeline_file, token, serving_url)
    try:
        handler = QuietRequestHandler if background else None
        server = make_server(host, port, app, threaded=True, request_handler=handler)
    except OSError as e:
        store.close()
        raise MlpipeError(f"cannot listen on {host}:{port}: {e}; pick another --port") from e
    shown_host = f"[{host}]" if ":" in host else host
    url = f"http://{shown_host}:{server.server_port}"
    dashboard = Dashboard(url, server, store, discovery.announce(config, url))
    if background:
        dashboard.thread = threading.Thread(target=server.serve_forever, name="mlpipe-ui", daemon=True)
        dashboard.thread.start()
    log.info("mlpipe ui on %s over %s", url, config.describe())
    return dashboard
