"""Components: nodes of a pipeline, written as a decorated function or as a class with a spec.

A component *instance* is a node: it holds its id, its input channels, its parameter values, and
exposes ``outputs['key']`` channels for downstream nodes. The class holds the spec and the executor.
Nothing here knows how a node will be run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from mlpipe.dsl.annotations import _Annotation
from mlpipe.dsl.condition import Predicate, active_predicates, condition_producers
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import REQUIRED, ComponentSpec, InputSpec, parameter_spec_from_annotation
from mlpipe.errors import DefinitionError
from mlpipe.types.channel import Channel

if TYPE_CHECKING:
    from mlpipe.types.artifact import Artifact


class Component:
    """Base class of every component.

    Subclass it for components that need more than a function allows (optional inputs with
    logic, Beam, several outputs filled by one library call)::

        class CountRows(Component):
            SPEC = ComponentSpec(inputs={"examples": Examples}, outputs={"count": Integer})

            @staticmethod
            def execute(ctx: ExecutionContext) -> None:
                ctx.outputs["count"].write(...)

    ``VERSION`` is part of the cache key; the class's source code is too, so editing the executor
    re-runs the node without a manual bump. Bump ``VERSION`` when a helper the executor calls in
    your own files changes; the standard components need none: their key covers every mlpipe module
    they import (docs/caching.md).
    """

    SPEC: ClassVar[ComponentSpec] = ComponentSpec()
    VERSION: ClassVar[str] = "1"
    conditions: list[Predicate]  # from the ``with Cond(...)`` blocks the node was made in

    def __new__(cls, *args: Any, **kwargs: Any) -> Component:
        # Here rather than in __init__, which subclasses (Resolver) replace without calling it.
        node = super().__new__(cls)
        node.conditions = active_predicates()
        return node

    def __init__(self, **kwargs: Any):
        self.id: str = type(self).__name__
        self._upstream_extra: list[Component] = []
        self.inputs: dict[str, Channel] = {}
        self.parameters: dict[str, Any] = {}
        spec = self.SPEC
        unknown = set(kwargs) - set(spec.inputs) - set(spec.parameters)
        if unknown:
            accepted = sorted(set(spec.inputs) | set(spec.parameters))
            raise DefinitionError(
                f"{self.id}: unknown argument(s) {sorted(unknown)}; it accepts {accepted or 'no arguments'}"
            )
        for name, in_spec in spec.inputs.items():
            value = kwargs.get(name)
            if value is None:
                if not in_spec.optional:
                    raise DefinitionError(
                        f"{self.id}: input '{name}' ({in_spec.type.TYPE_NAME}) is required; "
                        f"pass another component's outputs['...'] channel"
                    )
                continue
            self.inputs[name] = _check_channel(self.id, name, in_spec, value)
        for name, p_spec in spec.parameters.items():
            if name in kwargs:
                self.parameters[name] = p_spec.check(self.id, name, kwargs[name])
            elif p_spec.required:
                raise DefinitionError(f"{self.id}: parameter '{name}' ({p_spec.type.__name__}) is required")
            else:
                self.parameters[name] = p_spec.default
        self.outputs: dict[str, Channel] = {k: Channel(t, self, k) for k, t in spec.outputs.items()}

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        raise NotImplementedError("a Component subclass must define a static execute(ctx)")

    @classmethod
    def inputs_for_cache(cls, inputs: Mapping[str, list[Artifact]]) -> Mapping[str, list[Artifact]]:
        """The resolved inputs that key the cache: all of them, unless a component knows that some
        cannot change its result (the Evaluator's baseline when it is the candidate itself)."""
        return inputs

    @classmethod
    def external_inputs(cls, parameters: Mapping[str, Any]) -> Mapping[str, str]:
        """What the node reads from outside the pipeline, as short fingerprints by name (an
        ExampleGen: the span, version and files it would ingest now). They are part of the cache
        key, so a scheduled run ingests new data instead of reusing yesterday's from the cache."""
        return {}

    def with_id(self, node_id: str) -> Component:
        """Give this node an id (default: the class name); needed when a pipeline uses a component twice."""
        if not isinstance(node_id, str) or not node_id.replace("_", "a").replace("-", "a").isalnum():
            raise DefinitionError(f"node id {node_id!r} must be letters, digits, '_' or '-'")
        self.id = node_id
        return self

    def after(self, *nodes: Component) -> Component:
        """Run this node after ``nodes`` even though it consumes none of their outputs."""
        for node in nodes:
            if not isinstance(node, Component):
                raise DefinitionError(f"{self.id}.after() takes components, got {node!r}")
            self._upstream_extra.append(node)
        return self

    @property
    def upstream_nodes(self) -> list[Component]:
        seen: dict[int, Component] = {}
        wired = [ch.producer for ch in self.inputs.values()]
        for node in wired + condition_producers(self) + self._upstream_extra:
            seen.setdefault(id(node), node)
        return list(seen.values())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} id={self.id!r}>"


def _check_channel(node_id: str, name: str, spec: InputSpec, value: Any) -> Channel:
    if not isinstance(value, Channel):
        raise DefinitionError(
            f"{node_id}: input '{name}' must be a channel such as other_component.outputs['...'], "
            f"got {type(value).__name__}"
        )
    if not issubclass(value.type, spec.type):
        raise DefinitionError(
            f"{node_id}: input '{name}' expects {spec.type.TYPE_NAME}, but {value!r} carries "
            f"{value.type.TYPE_NAME}; wire an output of type {spec.type.TYPE_NAME}"
        )
    return value


class FunctionComponent(Component):
    """A component made by ``@component`` from a plain function; its executor calls the function."""

    FUNCTION: ClassVar[Callable[..., Any]]

    @classmethod
    def execute(cls, ctx: ExecutionContext) -> None:
        kwargs: dict[str, Any] = {}
        for name in cls.SPEC.inputs:
            kwargs[name] = ctx.input(name)
        for name in cls.SPEC.outputs:
            kwargs[name] = ctx.outputs[name]
        kwargs.update(ctx.parameters)
        cls.FUNCTION(**kwargs)


def component(fn: Callable[..., Any] | None = None, *, version: str = "1") -> Any:
    """Make a component class from a function annotated with InputArtifact/OutputArtifact/Parameter.

    ``@component`` or ``@component(version="2")``. Calling the result with channels and parameter
    values makes a pipeline node. An input with a default of ``None`` is optional.
    """

    def build(f: Callable[..., Any]) -> type[FunctionComponent]:
        inputs: dict[str, InputSpec] = {}
        outputs: dict[str, type] = {}
        params: dict[str, Any] = {}
        hints = _annotations(f)
        for pname, param in inspect.signature(f).parameters.items():
            ann = hints.get(pname)
            if not isinstance(ann, _Annotation):
                raise DefinitionError(
                    f"@component {f.__qualname__}: argument '{pname}' needs an annotation "
                    f"InputArtifact[T], OutputArtifact[T] or Parameter[T]"
                )
            has_default = param.default is not inspect.Parameter.empty
            if ann.role == "input":
                inputs[pname] = InputSpec(ann.type, optional=has_default and param.default is None)
            elif ann.role == "output":
                outputs[pname] = ann.type
            else:
                default = param.default if has_default else REQUIRED
                params[pname] = parameter_spec_from_annotation(pname, ann.type, default)
        spec = ComponentSpec(inputs=inputs, outputs=outputs, parameters=params)
        namespace = {
            "SPEC": spec,
            "VERSION": version,
            "FUNCTION": staticmethod(f),
            "__module__": f.__module__,
            "__qualname__": f.__qualname__,
            "__doc__": f.__doc__,
        }
        return type(f.__name__, (FunctionComponent,), namespace)

    return build(fn) if fn is not None else build


def _annotations(f: Callable[..., Any]) -> dict[str, Any]:
    """Resolve annotations, including string ones from ``from __future__ import annotations``."""
    import typing

    try:
        return typing.get_type_hints(f)
    except Exception:
        ann = dict(getattr(f, "__annotations__", {}))
        module = inspect.getmodule(f)
        env = dict(vars(module)) if module else {}
        return {k: eval(v, env) if isinstance(v, str) else v for k, v in ann.items()}  # noqa: S307
