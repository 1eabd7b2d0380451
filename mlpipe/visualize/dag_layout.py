"""Layered layout of a pipeline DAG, computed here so drawing a pipeline needs no Graphviz.

Nodes go into columns by longest path from a source (so every edge points right); an edge that
skips columns gets a waypoint in each column it crosses, so it runs between boxes instead of
through them. Rows within a column are ordered by the barycenter of their neighbours, a few sweeps
each way, which untangles the short, wide DAGs pipelines are.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from mlpipe.ir import PipelineIR

NODE_HEIGHT = 44
WAYPOINT_HEIGHT = 12  # room an edge takes where it passes a column
ROW_GAP = 22
MARGIN = 16
MIN_COLUMN_GAP = 70
LABEL_FONT = 11  # edge labels sit in the gap before the target's column
_SWEEPS = 3


@dataclass(frozen=True)
class Edge:
    """A dependency: ``target`` consumes ``label`` (artifact type names) from ``source``."""

    source: str
    target: str
    label: str


@dataclass(frozen=True)
class Box:
    node_id: str
    component: str  # the component's class name
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Route:
    """Where an edge runs: from the source box's right side through waypoints to the target's left."""

    edge: Edge
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Layout:
    boxes: dict[str, Box]
    routes: tuple[Route, ...]
    width: float
    height: float


def short_name(ref: str) -> str:
    """``module:Qual.Name`` (or a standard type's name) as the name a user wrote: ``Name``."""
    return ref.rsplit(":", 1)[-1].rsplit(".", 1)[-1]


def text_width(text: str, font_size: float) -> float:
    """An upper estimate of a sans-serif text's width; SVG has no layout engine to ask."""
    return len(text) * font_size * 0.62


def edges(ir: PipelineIR) -> list[Edge]:
    """One edge per (producer, consumer) pair, labelled with every artifact type passed along it.

    Upstream nodes that pass no artifact (ordering-only dependencies) give an unlabelled edge.
    """
    known = {n.id for n in ir.nodes}
    found = []
    for node in ir.nodes:
        types: dict[str, set[str]] = {u: set() for u in node.upstream if u in known}
        for source in node.inputs.values():
            if source.producer in known:
                types.setdefault(source.producer, set()).add(short_name(source.type))
        found += [Edge(source, node.id, ", ".join(sorted(t))) for source, t in types.items()]
    return found


def layers(ir: PipelineIR, dag_edges: list[Edge]) -> dict[str, int]:
    """Longest path from a source; then each source moves next to its first consumer.

    The second step keeps a Resolver (a source) beside the Evaluator it feeds instead of in the
    first column with a long edge across the picture. One pass each: the IR is in topological order.
    """
    preds: dict[str, list[str]] = {n.id: [] for n in ir.nodes}
    succs: dict[str, list[str]] = {n.id: [] for n in ir.nodes}
    for e in dag_edges:
        preds[e.target].append(e.source)
        succs[e.source].append(e.target)
    layer: dict[str, int] = {}
    for n in ir.nodes:
        layer[n.id] = 1 + max((layer[p] for p in preds[n.id]), default=-1)
    for n in ir.nodes:
        if not preds[n.id] and succs[n.id]:
            layer[n.id] = min(layer[s] for s in succs[n.id]) - 1
    return layer


def layout(ir: PipelineIR, box_width: dict[str, float]) -> Layout:
    """Place every node (``box_width`` gives each box's width) and route every edge."""
    dag_edges = edges(ir)
    layer = layers(ir, dag_edges)
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for n in ir.nodes:
        columns[layer[n.id]].append(n.id)
    chains = []  # per edge: source, a waypoint per crossed column, target
    for i, e in enumerate(dag_edges):
        waypoints = [f"\0{i}:{c}" for c in range(layer[e.source] + 1, layer[e.target])]
        for c, w in zip(range(layer[e.source] + 1, layer[e.target]), waypoints, strict=True):
            columns[c].append(w)
        chains.append([e.source, *waypoints, e.target])
    _order(columns, chains)

    widths = [max((box_width.get(item, 0) for item in column), default=0) for column in columns]
    gaps: list[float] = [MIN_COLUMN_GAP] * len(columns)  # gaps[c]: room left of column c for the labels there
    for e in dag_edges:
        gaps[layer[e.target]] = max(gaps[layer[e.target]], text_width(e.label, LABEL_FONT) + 30)
    heights = [sum(_height(item) + ROW_GAP for item in column) - ROW_GAP for column in columns]
    total_height = max(heights, default=0)
    xs = [MARGIN + sum(widths[:c]) + sum(gaps[1 : c + 1]) for c in range(len(columns))]
    centre: dict[str, float] = {}
    for c, column in enumerate(columns):
        y = MARGIN + (total_height - heights[c]) / 2
        for item in column:
            centre[item] = y + _height(item) / 2
            y += _height(item) + ROW_GAP
    components = {n.id: short_name(n.component) for n in ir.nodes}
    boxes = {
        n.id: Box(
            n.id,
            components[n.id],
            xs[layer[n.id]],
            centre[n.id] - NODE_HEIGHT / 2,
            widths[layer[n.id]],
            NODE_HEIGHT,
        )
        for n in ir.nodes
    }
    routes = []
    for e, chain in zip(dag_edges, chains, strict=True):
        source, target = boxes[e.source], boxes[e.target]
        points = [(source.x + source.width, centre[e.source])]
        for c, w in zip(range(layer[e.source] + 1, layer[e.target]), chain[1:-1], strict=True):
            points += [(xs[c], centre[w]), (xs[c] + widths[c], centre[w])]
        points.append((target.x, centre[e.target]))
        routes.append(Route(e, tuple(points)))
    width = xs[-1] + widths[-1] + MARGIN if columns else 2 * MARGIN
    return Layout(boxes, tuple(routes), width, total_height + 2 * MARGIN)


def _height(item: str) -> float:
    return WAYPOINT_HEIGHT if item.startswith("\0") else NODE_HEIGHT


def _order(columns: list[list[str]], chains: list[list[str]]) -> None:
    """Reorder each column in place by the mean row of its neighbours, sweeping right then left."""
    preds: dict[str, list[str]] = {}
    succs: dict[str, list[str]] = {}
    for chain in chains:
        for a, b in zip(chain, chain[1:], strict=False):
            preds.setdefault(b, []).append(a)
            succs.setdefault(a, []).append(b)
    for _ in range(_SWEEPS):
        for neighbours, sweep in ((preds, range(1, len(columns))), (succs, range(len(columns) - 2, -1, -1))):
            for c in sweep:
                row = {item: i for column in columns for i, item in enumerate(column)}
                columns[c].sort(key=functools.partial(_barycenter, row=row, neighbours=neighbours))


def _barycenter(item: str, row: dict[str, int], neighbours: dict[str, list[str]]) -> float:
    linked = neighbours.get(item)
    return sum(row[n] for n in linked) / len(linked) if linked else row[item]
