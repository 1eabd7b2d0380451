"""``tfx.dsl.component.experimental.annotations``: what marks each argument of a ``@component``.

``InputArtifact``, ``OutputArtifact`` and ``Parameter`` are mlpipe's; ``OutputDict`` is TFX's
return annotation, ``-> OutputDict(accuracy=float)``: each key becomes an output holding that
value (Integer, Float, String or Boolean artifact).
"""

from __future__ import annotations

from typing import Any

from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature
from mlpipe.dsl.annotations import InputArtifact, OutputArtifact, Parameter
from mlpipe.errors import DefinitionError
from mlpipe.types import Artifact, Boolean, Float, Integer, String

VALUE_TYPES: dict[type, type[Artifact]] = {int: Integer, float: Float, str: String, bool: Boolean}


class OutputDict:
    """``OutputDict(name=int, ...)``: the function returns a dict with these keys."""

    def __init__(self, **outputs: Any):
        for name, value_type in outputs.items():
            if value_type not in VALUE_TYPES:
                raise DefinitionError(
                    f"OutputDict({name}={value_type!r}): the value types are int, float, str and bool"
                )
        self.outputs = {name: VALUE_TYPES[t] for name, t in outputs.items()}

    def __repr__(self) -> str:
        return f"OutputDict({', '.join(self.outputs)})"


class BeamComponentParameter:
    def __class_getitem__(cls, item: Any) -> None:
        raise UnsupportedTfxFeature("tfx.dsl.components.BeamComponentParameter")


class AsyncOutputArtifact:
    def __class_getitem__(cls, item: Any) -> None:
        raise UnsupportedTfxFeature("tfx.dsl.components.AsyncOutputArtifact")


__all__ = [
    "AsyncOutputArtifact", "BeamComponentParameter", "InputArtifact", "OutputArtifact", "OutputDict",
    "Parameter",
]  # fmt: skip
