"""Annotations that turn a plain Python function into a component.

``InputArtifact[Examples]``, ``OutputArtifact[Model]`` and ``Parameter[int]`` say what each argument
of a ``@component`` function is; ``ModuleFile`` marks a path whose *file content* is part of the
cache key, so editing user module code re-runs the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class ModuleFile(str):
    """A parameter holding the path of a user module (``preprocessing_fn``, ``run_fn``, ...)."""


class FunctionPath(str):
    """A parameter naming a user function by import path (``"pkg.module.run_fn"``); the content of
    its module is part of the cache key, as a ModuleFile's is."""


@dataclass(frozen=True)
class _Annotation:
    role: str  # "input" | "output" | "parameter"
    type: Any


class InputArtifact(Generic[T]):
    def __class_getitem__(cls, item: Any) -> _Annotation:
        return _Annotation("input", item)


class OutputArtifact(Generic[T]):
    def __class_getitem__(cls, item: Any) -> _Annotation:
        return _Annotation("output", item)


class Parameter(Generic[T]):
    def __class_getitem__(cls, item: Any) -> _Annotation:
        return _Annotation("parameter", item)
