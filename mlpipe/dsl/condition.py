"""Conditional nodes: ``with Cond(predicate):`` runs the nodes made inside only if it holds.

    blessed = evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1
    with Cond(blessed):
        pusher = Pusher(model=trainer.outputs["model"], push_destination=...)

A predicate compares what an upstream node output in the same run — an artifact's ``.value``
(value artifacts such as Integer or Boolean), ``.property(name)`` or ``.custom_property(name)`` —
with a constant or another such value; ``&``, ``|`` and ``~`` combine predicates (Python's
``and``/``or``/``not`` cannot be overloaded, so using them is an error). The spelling is TFX's
(``channel.future()[0].custom_property(...)``), so TFX pipelines port unchanged.

The launcher evaluates the predicate just before the node would run, on every runner. A node whose
predicate is false is SKIPPED: it runs nothing, records a CANCELED execution saying which value made
it false, and nodes that need its outputs are skipped too. Nested ``Cond`` blocks all apply.

Predicates compile to plain JSON in the pipeline IR (see :func:`describe`), so remote runners
evaluate them without the pipeline's Python objects.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlpipe.errors import DefinitionError
from mlpipe.types.artifact import ValueArtifact
from mlpipe.types.channel import Channel

if TYPE_CHECKING:
    from mlpipe.dsl.component import Component

COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
LITERALS = (bool, int, float, str)  # what a predicate compares with


class Predicate:
    """A condition on upstream outputs, built by comparing :class:`ArtifactValue` placeholders.

    It keeps the placeholders, not node ids, until :meth:`to_ir`: a node renamed with ``.with_id()``
    after the predicate was written is still the one it names.
    """

    def __init__(self, op: str, args: list[Any]):
        self.op = op
        self.args = args  # Predicates for and/or/not; two operands (ArtifactValue or literal) otherwise

    @property
    def channels(self) -> list[Channel]:
        """The channels the predicate reads: their producers must run before the conditioned node."""
        found: list[Channel] = []
        for arg in self.args:
            if isinstance(arg, Predicate):
                found += arg.channels
            elif isinstance(arg, ArtifactValue):
                found.append(arg.channel)
        return found

    def to_ir(self) -> dict[str, Any]:
        """The JSON form stored in the pipeline IR."""
        if self.op in COMPARISONS:
            left, right = (_operand_ir(arg) for arg in self.args)
            return {"op": self.op, "left": left, "right": right}
        return {"op": self.op, "args": [arg.to_ir() for arg in self.args]}

    def __and__(self, other: Predicate) -> Predicate:
        return _logic("and", self, other)

    def __or__(self, other: Predicate) -> Predicate:
        return _logic("or", self, other)

    def __invert__(self) -> Predicate:
        return Predicate("not", [self])

    def __bool__(self) -> bool:
        raise DefinitionError(
            f"the predicate {describe(self.to_ir())} has no truth value while the pipeline is defined: "
            f"combine predicates with &, | and ~ (not and/or/not), and pass the result to Cond(...)"
        )

    def __repr__(self) -> str:
        return f"Predicate({describe(self.to_ir())})"


def _logic(op: str, left: Predicate, right: Any) -> Predicate:
    if not isinstance(right, Predicate):
        raise DefinitionError(f"'{op}' combines predicates, got {right!r}")
    return Predicate(op, [left, right])


def _operand_ir(operand: Any) -> dict[str, Any]:
    return operand.to_ir() if isinstance(operand, ArtifactValue) else {"literal": operand}


@dataclass(frozen=True, eq=False)
class ArtifactValue:
    """One value read from the ``index``-th artifact of a channel when the condition is evaluated."""

    channel: Channel
    index: int
    read: Literal["value", "property", "custom_property"]
    name: str | None = None  # the property's name

    def to_ir(self) -> dict[str, Any]:
        return {
            "artifact": {
                "producer": self.channel.producer_id,
                "key": self.channel.key,
                "index": self.index,
                "read": self.read,
                **({"name": self.name} if self.name is not None else {}),
            }
        }

    def _compare(self, op: str, other: Any) -> Predicate:
        if not isinstance(other, (ArtifactValue, *LITERALS)):
            raise DefinitionError(
                f"{describe_operand(self.to_ir())} {op} {other!r}: compare with a bool, int, float or str, or "
                f"another artifact's value"
            )
        return Predicate(op, [self, other])

    def __eq__(self, other: Any) -> Predicate:  # type: ignore[override]  # builds a predicate, as SQLAlchemy columns do
        return self._compare("==", other)

    def __ne__(self, other: Any) -> Predicate:  # type: ignore[override]  # builds a predicate, as __eq__
        return self._compare("!=", other)

    def __lt__(self, other: Any) -> Predicate:
        return self._compare("<", other)

    def __le__(self, other: Any) -> Predicate:
        return self._compare("<=", other)

    def __gt__(self, other: Any) -> Predicate:
        return self._compare(">", other)

    def __ge__(self, other: Any) -> Predicate:
        return self._compare(">=", other)

    def __bool__(self) -> bool:
        raise DefinitionError(
            f"{describe_operand(self.to_ir())} has no value while the pipeline is defined: compare it, "
            f"e.g. ... == 1, and pass the predicate to Cond(...)"
        )


class ArtifactPlaceholder:
    """``channel.future()[index]``: an artifact the channel will carry at run time."""

    def __init__(self, channel: Channel, index: int):
        self.channel, self.index = channel, index

    @property
    def value(self) -> ArtifactValue:
        """The value of a value artifact (Integer, Float, Boolean, String, ...)."""
        if not issubclass(self.channel.type, ValueArtifact):
            raise DefinitionError(
                f"{self.channel!r} carries {self.channel.type.TYPE_NAME}, which has no .value (value artifacts "
                f"such as Integer or Boolean do); read .property(name) or .custom_property(name) instead"
            )
        return ArtifactValue(self.channel, self.index, "value")

    def property(self, name: str) -> ArtifactValue:
        return ArtifactValue(self.channel, self.index, "property", _name(name))

    def custom_property(self, name: str) -> ArtifactValue:
        return ArtifactValue(self.channel, self.index, "custom_property", _name(name))


class ArtifactListPlaceholder(ArtifactPlaceholder):
    """``channel.future()``: the channel's artifacts at run time; ``[i]`` picks one (default the first)."""

    def __init__(self, channel: Channel):
        super().__init__(channel, 0)

    def __getitem__(self, index: int) -> ArtifactPlaceholder:
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise DefinitionError(f"{self.channel!r}.future()[{index!r}]: the index must be an int >= 0")
        return ArtifactPlaceholder(self.channel, index)


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise DefinitionError(f"a property name must be a non-empty str, got {name!r}")
    return name


# The Cond blocks open in this thread (or task), outermost first.
_active: contextvars.ContextVar[tuple[Cond, ...]] = contextvars.ContextVar("mlpipe_cond", default=())


class Cond:
    """``with Cond(predicate):`` — nodes made in the block run only when ``predicate`` holds.

    The block applies to nodes made in the same thread (or asyncio task), as a ``contextvars``
    value does; one Cond object may be entered again, nested or elsewhere.
    """

    def __init__(self, predicate: Predicate):
        if not isinstance(predicate, Predicate):
            raise DefinitionError(
                f"Cond() takes a predicate such as node.outputs['key'].future()[0].value == 1, got {predicate!r}"
            )
        self.predicate = predicate
        self._tokens: list[contextvars.Token] = []

    def __enter__(self) -> Cond:
        self._tokens.append(_active.set((*_active.get(), self)))
        return self

    def __exit__(self, *exc_info: object) -> None:
        _active.reset(self._tokens.pop())


def active_predicates() -> list[Predicate]:
    """The predicates of the Cond blocks open where a component is being made (outermost first)."""
    return [cond.predicate for cond in _active.get()]


def condition_producers(node: Component) -> list[Component]:
    """The nodes whose outputs ``node``'s conditions read: they must run before it."""
    return [channel.producer for predicate in node.conditions for channel in predicate.channels]


def describe(ir: dict[str, Any]) -> str:
    """A predicate's JSON form as the user wrote it, for logs and error messages."""
    op = ir["op"]
    if op in COMPARISONS:
        return f"{describe_operand(ir['left'])} {op} {describe_operand(ir['right'])}"
    if op == "not":
        return f"~({describe(ir['args'][0])})"
    joiner = " & " if op == "and" else " | "
    return joiner.join(f"({describe(arg)})" for arg in ir["args"])


def producers_read(conditions: Iterable[dict[str, Any]]) -> list[str]:
    """The ids of the nodes whose outputs these predicates (in their JSON form) read."""
    found: list[str] = []

    def visit(predicate: dict[str, Any]) -> None:
        for arg in predicate.get("args", []):
            visit(arg)
        for side in ("left", "right"):
            ref = predicate.get(side, {}).get("artifact")
            if ref and ref["producer"] not in found:
                found.append(ref["producer"])

    for predicate in conditions:
        visit(predicate)
    return found


def describe_operand(ir: dict[str, Any]) -> str:
    if "literal" in ir:
        return repr(ir["literal"])
    a = ir["artifact"]
    where = f"{a['producer']}.outputs[{a['key']!r}].future()[{a['index']}]"
    return f"{where}.value" if a["read"] == "value" else f"{where}.{a['read']}({a['name']!r})"
