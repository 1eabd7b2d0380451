"""Component specs: what a component consumes, produces and is configured with.

A spec is all the definition layer needs to validate wiring and parameters before anything runs.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlpipe.dsl.annotations import FunctionPath, ModuleFile
from mlpipe.errors import DefinitionError
from mlpipe.types.artifact import Artifact

PARAMETER_TYPES = (int, float, str, bool, dict, list, ModuleFile, FunctionPath)


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


@dataclass(frozen=True)
class InputSpec:
    type: type[Artifact]
    optional: bool = False


@dataclass(frozen=True)
class ParameterSpec:
    """A typed parameter; ``type`` is one of int, float, str, bool, dict, list, ModuleFile, FunctionPath."""

    type: type
    default: Any = REQUIRED
    optional: bool = False  # None is accepted

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def check(self, owner: str, name: str, value: Any) -> Any:
        """Return ``value`` if it fits this parameter, else raise a DefinitionError saying what fits."""
        if value is None and (self.optional or self.default is None):
            return None
        expected = self.type
        ok = isinstance(value, expected)
        if expected is int and isinstance(value, bool):
            ok = False
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if expected in (ModuleFile, FunctionPath) and isinstance(value, str):
            ok, value = True, expected(value)
        if expected is list and isinstance(value, tuple):
            ok, value = True, list(value)
        if not ok:
            raise DefinitionError(
                f"{owner}: parameter '{name}' must be {expected.__name__}, got {type(value).__name__} {value!r}"
            )
        return value


@dataclass(frozen=True, init=False)
class ComponentSpec:
    """Inputs (name -> InputSpec), outputs (name -> artifact class), parameters (name -> ParameterSpec).

    Shorthands are accepted: an input may be given as an artifact class, a parameter as a type.
    """

    inputs: Mapping[str, InputSpec]
    outputs: Mapping[str, type[Artifact]]
    parameters: Mapping[str, ParameterSpec]

    def __init__(
        self,
        inputs: Mapping[str, InputSpec | type[Artifact]] | None = None,
        outputs: Mapping[str, type[Artifact]] | None = None,
        parameters: Mapping[str, ParameterSpec | type] | None = None,
    ) -> None:
        specs = {k: v if isinstance(v, InputSpec) else InputSpec(v) for k, v in (inputs or {}).items()}
        params = {
            k: v if isinstance(v, ParameterSpec) else ParameterSpec(v) for k, v in (parameters or {}).items()
        }
        object.__setattr__(self, "inputs", specs)
        object.__setattr__(self, "outputs", outputs if outputs is not None else {})
        object.__setattr__(self, "parameters", params)
        for name, spec in specs.items():
            _check_artifact_class(f"input '{name}'", spec.type)
        for name, out_type in self.outputs.items():
            _check_artifact_class(f"output '{name}'", out_type)
        for name, p in params.items():
            if p.type not in PARAMETER_TYPES:
                allowed = ", ".join(t.__name__ for t in PARAMETER_TYPES)
                raise DefinitionError(f"parameter '{name}' has type {p.type!r}; allowed: {allowed}")
        clash = (
            (set(specs) & set(self.outputs)) | (set(specs) & set(params)) | (set(self.outputs) & set(params))
        )
        if clash:
            raise DefinitionError(f"names used twice among inputs/outputs/parameters: {sorted(clash)}")


def _check_artifact_class(what: str, t: Any) -> None:
    if not (isinstance(t, type) and issubclass(t, Artifact)):
        raise DefinitionError(f"{what} must be an Artifact subclass (e.g. Examples), got {t!r}")


def parameter_spec_from_annotation(name: str, annotated: Any, default: Any) -> ParameterSpec:
    """Build a ParameterSpec from ``Parameter[int]`` / ``Parameter[Optional[dict]]`` and a default."""
    optional = False
    origin = typing.get_origin(annotated)
    if origin is typing.Union or origin is types.UnionType:  # Optional[X] or X | None
        args = [a for a in typing.get_args(annotated) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotated))
        if len(args) != 1:
            raise DefinitionError(
                f"parameter '{name}': only Optional[X] unions are supported, got {annotated!r}"
            )
        annotated = args[0]
    annotated = typing.get_origin(annotated) or annotated  # dict[str, int] -> dict
    return ParameterSpec(annotated, default, optional)
