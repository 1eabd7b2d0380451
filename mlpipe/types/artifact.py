"""The artifact base class: a typed handle on a directory plus its ML Metadata record.

An artifact is what flows between components. Its ``uri`` is a directory the producing executor
fills; its properties are recorded in MLMD under the TFX type name, so TFX tools can read them.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar, Literal

PropertyType = Literal["INT", "DOUBLE", "STRING"]

_PY_TYPES: dict[str, tuple[type[int] | type[float] | type[str], ...]] = {
    "INT": (int,),
    "DOUBLE": (float, int),
    "STRING": (str,),
}

# Artifact states as MLMD records them; only LIVE artifacts are ever returned to users.
PENDING, LIVE, ABANDONED = "PENDING", "LIVE", "ABANDONED"


class Artifact:
    """Base of every artifact type.

    Subclasses set ``TYPE_NAME`` (the MLMD type name; the TFX name for standard types) and
    ``PROPERTIES`` (name -> MLMD property type). Everything else a component wants to record goes
    into ``custom_properties``, which accept int, float and str values (dicts/lists as JSON).
    """

    TYPE_NAME: ClassVar[str] = "Artifact"
    PROPERTIES: ClassVar[dict[str, PropertyType]] = {}

    def __init__(
        self,
        uri: str = "",
        id: int | None = None,
        properties: dict[str, Any] | None = None,
        custom_properties: dict[str, Any] | None = None,
        state: str = LIVE,
    ):
        self.uri = uri
        self.id = id
        self.state = state
        self.properties: dict[str, Any] = {}
        self.custom_properties: dict[str, Any] = dict(custom_properties or {})
        for name, value in (properties or {}).items():
            self.set_property(name, value)

    @property
    def type_name(self) -> str:
        return self.TYPE_NAME

    def set_property(self, name: str, value: Any) -> None:
        """Set a declared property, checking its MLMD type so a bad value fails here, not at publish."""
        if name not in self.PROPERTIES:
            raise KeyError(
                f"{self.TYPE_NAME} has no property '{name}' (declared: {sorted(self.PROPERTIES) or 'none'}); "
                f"use set_custom_property('{name}', ...) for extra values"
            )
        expected = self.PROPERTIES[name]
        if not isinstance(value, _PY_TYPES[expected]) or isinstance(value, bool):
            raise TypeError(
                f"{self.TYPE_NAME}.{name} must be {expected}, got {type(value).__name__} {value!r}"
            )
        self.properties[name] = float(value) if expected == "DOUBLE" else value

    def get_property(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, default)

    def set_custom_property(self, name: str, value: Any) -> None:
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, (dict, list, tuple)):
            value = json.dumps(value, sort_keys=True)
        elif not isinstance(value, (int, float, str)):
            raise TypeError(f"custom property '{name}' must be int, float, str, dict or list, got {value!r}")
        self.custom_properties[name] = value

    def get_custom_property(self, name: str, default: Any = None) -> Any:
        return self.custom_properties.get(name, default)

    # --- splits (Examples, statistics, anomalies, ...) -------------------------------------------
    @property
    def split_names(self) -> list[str]:
        raw = self.properties.get("split_names")
        return json.loads(raw) if raw else []

    @split_names.setter
    def split_names(self, names: list[str]) -> None:
        self.set_property("split_names", json.dumps(list(names)))

    def split_uri(self, split: str) -> str:
        """Directory of one split, in TFX's layout (``Split-<name>``)."""
        return os.path.join(self.uri, f"Split-{split}")

    def __repr__(self) -> str:
        return f"{self.TYPE_NAME}(id={self.id}, uri={self.uri!r})"


class ValueArtifact(Artifact):
    """An artifact holding one small value, stored in ``<uri>/value`` as TFX does."""

    def _encode(self, value: Any) -> bytes:
        return str(value).encode()

    def _decode(self, data: bytes) -> Any:
        return data.decode()

    def read(self) -> Any:
        with open(os.path.join(self.uri, "value"), "rb") as f:
            return self._decode(f.read())

    def write(self, value: Any) -> None:
        os.makedirs(self.uri, exist_ok=True)
        with open(os.path.join(self.uri, "value"), "wb") as f:
            f.write(self._encode(value))
