"""Serving: TF Serving's model layout and config, a client, and a TF Serving-compatible server.

Models are published as ``<base>/<model_name>/<version>/`` SavedModel directories
(:func:`publish_version`) and listed in a ``models.config`` (:func:`write_model_config`).
``mlpipe serve`` runs ``tensorflow_model_server`` when installed and the built-in
:class:`ModelServer` otherwise; :class:`Client` talks to either over REST or gRPC.

Importing this package is cheap: names resolve on first use, and TensorFlow, gRPC and the servers
load only when a server starts or a gRPC client is made.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BatchingParameters": "mlpipe.serving.batching",
    "Client": "mlpipe.serving.client",
    "ModelServer": "mlpipe.serving.server",
    "ServerPorts": "mlpipe.serving.server",
    "RequestLogging": "mlpipe.serving.config",
    "ServedModel": "mlpipe.serving.config",
    "VersionPolicy": "mlpipe.serving.config",
    "ServingRequestError": "mlpipe.serving.status",
    "format_model_config": "mlpipe.serving.config",
    "list_versions": "mlpipe.serving.layout",
    "parse_model_config": "mlpipe.serving.config",
    "promote": "mlpipe.serving.rollout",
    "publish_version": "mlpipe.serving.layout",
    "read_model_config": "mlpipe.serving.config",
    "rollback": "mlpipe.serving.rollout",
    "serialize_example": "mlpipe.serving.examples",
    "write_model_config": "mlpipe.serving.config",
}

__all__ = [
    "BatchingParameters",
    "Client",
    "ModelServer",
    "RequestLogging",
    "ServedModel",
    "ServerPorts",
    "ServingRequestError",
    "VersionPolicy",
    "format_model_config",
    "list_versions",
    "parse_model_config",
    "promote",
    "publish_version",
    "read_model_config",
    "rollback",
    "serialize_example",
    "write_model_config",
]

if TYPE_CHECKING:
    from mlpipe.serving.batching import BatchingParameters
    from mlpipe.serving.client import Client
    from mlpipe.serving.config import (
        RequestLogging,
        ServedModel,
        VersionPolicy,
        format_model_config,
        parse_model_config,
        read_model_config,
        write_model_config,
    )
    from mlpipe.serving.examples import serialize_example
    from mlpipe.serving.layout import list_versions, publish_version
    from mlpipe.serving.rollout import promote, rollback
    from mlpipe.serving.server import ModelServer, ServerPorts
    from mlpipe.serving.status import ServingRequestError


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mlpipe.serving' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
