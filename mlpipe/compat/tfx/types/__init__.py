"""``tfx.types``: artifact classes and channels."""

from typing import Any

from mlpipe.compat.tfx.dsl.channel import Channel
from mlpipe.compat.tfx.types import standard_artifacts
from mlpipe.compat.tfx.unsupported import module_getattr
from mlpipe.dsl.component import Component as BaseComponent
from mlpipe.dsl.component import FunctionComponent as BaseFunctionalComponent
from mlpipe.types.artifact import Artifact
from mlpipe.types.channel import Channel as BaseChannel

BaseNode = BaseComponent

__all__ = [
    "Artifact", "BaseChannel", "BaseComponent", "BaseFunctionalComponent", "BaseNode", "Channel",
    "standard_artifacts",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.types", name)
