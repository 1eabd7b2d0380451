"""``tfx.dsl.Channel`` / ``tfx.types.Channel``: in TFX pipelines a ``Channel(type=Model)`` written by
hand names an artifact type for a Resolver to look up; outputs of nodes are mlpipe channels."""

from __future__ import annotations

import builtins
from typing import Any

from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature
from mlpipe.errors import DefinitionError
from mlpipe.types.artifact import Artifact


class Channel:
    """``Channel(type=standard_artifacts.Model)``: artifacts of a type, not tied to a producer."""

    def __init__(
        self,
        type: builtins.type[Artifact],  # noqa: A002  (TFX's argument name)
        additional_properties: Any = None,
        additional_custom_properties: Any = None,
        artifacts: Any = None,
    ):
        if not (isinstance(type, builtins.type) and issubclass(type, Artifact)):
            raise DefinitionError(f"tfx.dsl.Channel(type=...) takes an artifact class, got {type!r}")
        if additional_properties or additional_custom_properties or artifacts:
            raise UnsupportedTfxFeature(
                "tfx.dsl.Channel(additional_properties=/additional_custom_properties=/artifacts=)",
                "a hand-made Channel only names a type for a Resolver",
            )
        self.type = type

    def __repr__(self) -> str:
        return f"tfx.dsl.Channel(type={self.type.TYPE_NAME})"
