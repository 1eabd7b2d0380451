"""``tfx.dsl.component.experimental.decorators.component``: TFX's ``@component`` on mlpipe.

On top of mlpipe's ``@component`` it accepts TFX's spellings: a plain ``int``/``float``/``str``/
``bool``/``dict``/``list`` argument (TFX's simple value argument) is a parameter, and the return
annotation ``-> OutputDict(name=int)`` makes value outputs the function's returned dict fills.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, ClassVar

from mlpipe.compat.tfx.dsl.component.experimental.annotations import VALUE_TYPES, OutputDict
from mlpipe.compat.tfx.types.artifact_view import TfxArtifactView
from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature
from mlpipe.dsl.annotations import _Annotation
from mlpipe.dsl.component import FunctionComponent
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import REQUIRED, ComponentSpec, InputSpec, parameter_spec_from_annotation
from mlpipe.errors import DefinitionError
from mlpipe.types.artifact import ValueArtifact

_PLAIN = (*VALUE_TYPES, dict, list)


class TfxFunctionComponent(FunctionComponent):
    """Calls the function with artifacts and parameter values; writes an ``OutputDict`` result."""

    RETURNED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def execute(cls, ctx: ExecutionContext) -> None:
        kwargs: dict[str, Any] = {name: _view(ctx.input(name)) for name in cls.SPEC.inputs}
        kwargs.update({k: TfxArtifactView(v) for k, v in ctx.outputs.items() if k not in cls.RETURNED})
        kwargs.update(ctx.parameters)
        result = cls.FUNCTION(**kwargs)
        if not cls.RETURNED:
            return
        missing = [k for k in cls.RETURNED if not isinstance(result, dict) or k not in result]
        if missing:
            raise DefinitionError(
                f"{ctx.node_id}: the function's returned dict lacks {missing} (its OutputDict)"
            )
        for key in cls.RETURNED:
            output = ctx.outputs[key]
            assert isinstance(output, ValueArtifact)  # OutputDict keys are value types (VALUE_TYPES)
            output.write(result[key])


def _view(artifact: Any) -> TfxArtifactView | None:
    return None if artifact is None else TfxArtifactView(artifact)


def component(
    func: Callable[..., Any] | None = None,
    *,
    component_annotation: Any = None,
    use_beam: bool = False,
) -> Any:
    """``@component`` / ``@component(component_annotation=..., use_beam=False)``."""
    if use_beam:
        raise UnsupportedTfxFeature(
            "tfx.dsl.components.component(use_beam=True)", "create a beam.Pipeline inside the function"
        )
    if func is None:
        return lambda f: _build(f)
    return _build(func)


def _build(f: Callable[..., Any]) -> type[TfxFunctionComponent]:
    hints = _hints(f)
    inputs: dict[str, InputSpec] = {}
    outputs: dict[str, type] = {}
    params: dict[str, Any] = {}
    for name, param in inspect.signature(f).parameters.items():
        ann = hints.get(name)
        default = REQUIRED if param.default is inspect.Parameter.empty else param.default
        if isinstance(ann, _Annotation) and ann.role == "input":
            inputs[name] = InputSpec(ann.type, optional=default is None)
        elif isinstance(ann, _Annotation) and ann.role == "output":
            outputs[name] = ann.type
        elif (
            isinstance(ann, _Annotation) or (typing.get_origin(ann) or ann) in _PLAIN or _optional_plain(ann)
        ):
            params[name] = parameter_spec_from_annotation(name, ann.type if isinstance(ann, _Annotation) else ann,
                                                          default)  # fmt: skip
        else:
            raise DefinitionError(
                f"@component {f.__qualname__}: argument '{name}' needs InputArtifact[T], OutputArtifact[T], "
                f"Parameter[T] or a simple type (int, float, str, bool, dict, list), got {ann!r}"
            )
    returned = hints.get("return")
    if isinstance(returned, OutputDict):
        outputs.update(returned.outputs)
    elif returned not in (None, type(None)):
        raise DefinitionError(
            f"@component {f.__qualname__}: the return annotation must be OutputDict(...) or None"
        )
    namespace = {
        "SPEC": ComponentSpec(inputs=inputs, outputs=outputs, parameters=params),
        "FUNCTION": staticmethod(f),
        "RETURNED": tuple(returned.outputs) if isinstance(returned, OutputDict) else (),
        "__module__": f.__module__,
        "__qualname__": f.__qualname__,
        "__doc__": f.__doc__,
    }
    return type(f.__name__, (TfxFunctionComponent,), namespace)


def _optional_plain(ann: Any) -> bool:
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    return typing.get_origin(ann) is typing.Union and len(args) == 1 and args[0] in _PLAIN


def _hints(f: Callable[..., Any]) -> dict[str, Any]:
    """Annotations with string ones (``from __future__ import annotations``) evaluated in the
    function's module; ``OutputDict(...)`` is a value, which ``typing.get_type_hints`` refuses."""
    return {k: eval(v, f.__globals__) if isinstance(v, str) else v for k, v in f.__annotations__.items()}  # noqa: S307
