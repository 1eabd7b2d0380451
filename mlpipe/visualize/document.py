"""A format-neutral description of what an artifact shows: titled tables, bar charts and text.

The per-type readers in ``views`` build a ``Document`` once; ``text`` and ``html`` only lay it out,
so the terminal and the notebook always show the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bars:
    """A small distribution (a histogram or top values): one bar per (label, count)."""

    bars: tuple[tuple[str, float], ...]


Cell = str | Bars


@dataclass(frozen=True)
class Table:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    empty: str = "none"  # what to say instead of an empty table


@dataclass(frozen=True)
class Preformatted:
    """Text that is already laid out (e.g. the Evaluator's summary table); shown verbatim."""

    title: str
    text: str


Section = Table | Preformatted


@dataclass(frozen=True)
class Document:
    title: str  # e.g. "ExampleStatistics 12"
    uri: str
    properties: dict[str, str] = field(default_factory=dict)
    sections: tuple[Section, ...] = ()
