"""TFX's ``Artifact`` methods on mlpipe artifacts, for ``@component`` functions written for TFX.

TFX component code calls ``artifact.set_int_custom_property('blessed', 1)`` and reads properties as
attributes (``examples.span``); mlpipe's artifacts spell these ``set_custom_property`` and
``get_property``. The view adds TFX's names and passes everything else to the artifact.
"""

from __future__ import annotations

from typing import Any

from mlpipe.types.artifact import Artifact


class TfxArtifactView:
    def __init__(self, artifact: Artifact):
        object.__setattr__(self, "_artifact", artifact)

    @property
    def mlpipe_artifact(self) -> Artifact:
        return self._artifact

    def __getattr__(self, name: str) -> Any:
        artifact = self._artifact
        if hasattr(artifact, name):
            return getattr(artifact, name)
        value = artifact.get_property(name)
        if value is None:
            raise AttributeError(f"{artifact.type_name} artifact has no attribute or property {name!r}")
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._artifact, name, value)

    def set_int_custom_property(self, key: str, value: int) -> None:
        self._artifact.set_custom_property(key, int(value))

    def set_float_custom_property(self, key: str, value: float) -> None:
        self._artifact.set_custom_property(key, float(value))

    def set_string_custom_property(self, key: str, value: str) -> None:
        self._artifact.set_custom_property(key, str(value))

    def get_int_custom_property(self, key: str) -> int:
        return int(self._artifact.get_custom_property(key, 0))

    def get_float_custom_property(self, key: str) -> float:
        return float(self._artifact.get_custom_property(key, 0.0))

    def get_string_custom_property(self, key: str) -> str:
        return str(self._artifact.get_custom_property(key, ""))

    def has_custom_property(self, key: str) -> bool:
        return self._artifact.get_custom_property(key) is not None

    def __repr__(self) -> str:
        return repr(self._artifact)
