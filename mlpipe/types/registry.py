"""Artifact classes by reference, so a compiled pipeline (plain JSON) can name its types.

Standard types are referred to by their TFX name; user-defined types by ``module:QualName``.
"""

from __future__ import annotations

import importlib

from mlpipe.errors import DefinitionError
from mlpipe.types.artifact import Artifact
from mlpipe.types.standard import STANDARD_TYPES

_STANDARD = {t.TYPE_NAME: t for t in STANDARD_TYPES}


def type_ref(artifact_type: type[Artifact]) -> str:
    """The reference stored in the IR for an artifact class."""
    if _STANDARD.get(artifact_type.TYPE_NAME) is artifact_type:
        return artifact_type.TYPE_NAME
    return f"{artifact_type.__module__}:{artifact_type.__qualname__}"


def resolve_type(ref: str) -> type[Artifact]:
    """Inverse of :func:`type_ref`."""
    if ref in _STANDARD:
        return _STANDARD[ref]
    module_name, _, qualname = ref.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise DefinitionError(
            f"artifact type '{ref}' cannot be imported ({e}); is its module on sys.path?"
        ) from e
    if not (isinstance(obj, type) and issubclass(obj, Artifact)):
        raise DefinitionError(f"'{ref}' is not an Artifact subclass")
    return obj
