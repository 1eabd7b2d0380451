"""``tfx.extensions``: TFX's cloud integrations, none of which mlpipe provides; importing any of
them fails with the closest mlpipe way (see :data:`mlpipe.compat.tfx.unsupported.HINTS`)."""

from typing import Any

from mlpipe.compat.tfx.unsupported import module_getattr


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.extensions", name)
