"""Pipeline DAG pictures: self-contained SVG (and HTML around it) or a text table for terminals.

Box colours show each node's state in a run (MLMD's execution state names), so a failed run
shows at a glance where it stopped and what was reused from the cache.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html import escape

from mlpipe.errors import MlpipeError
from mlpipe.ir import PipelineIR
from mlpipe.visualize.dag_layout import (
    LABEL_FONT,
    Layout,
    Route,
    edges,
    layers,
    layout,
    short_name,
    text_width,
)

# state -> (fill, stroke); any other state (NEW, CANCELED, none) is drawn as NOT_RUN
STATE_COLOURS = {
    "COMPLETE": ("#c8e6c9", "#2e7d32"),
    "CACHED": ("#b2ebf2", "#00838f"),
    "SKIPPED": ("#f5f5f5", "#616161"),  # a Cond did not hold: decided, unlike "not run"
    "FAILED": ("#ffcdd2", "#c62828"),
    "RUNNING": ("#fff59d", "#f9a825"),
}
NOT_RUN = ("#eeeeee", "#9e9e9e")
ID_FONT, COMPONENT_FONT = 13, 11
LEGEND_HEIGHT = 28
_ARROW = "mlpipe-dag-arrow"


def dag_svg(ir: PipelineIR, states: dict[str, str] | None = None) -> str:
    """The DAG as a standalone SVG document; ``states`` maps node id -> execution state.

    Without ``states`` every box is drawn neutral and there is no legend.
    """
    widths = {
        n.id: max(text_width(n.id, ID_FONT), text_width(short_name(n.component), COMPONENT_FONT)) + 24
        for n in ir.nodes
    }
    placed = layout(ir, widths)
    height = placed.height + (LEGEND_HEIGHT if states is not None else 0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{placed.width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {placed.width:.0f} {height:.0f}" font-family="system-ui, sans-serif" role="img">',
        f"<title>pipeline {escape(ir.name)}</title>",
        f'<defs><marker id="{_ARROW}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>',
        *(_edge(route) for route in placed.routes),
        *_nodes(placed, states),
    ]
    if states is not None:
        parts.append(_legend(placed.height))
    parts.append("</svg>")
    return "\n".join(parts)


def _edge(route: Route) -> str:
    (x, y), *rest = route.points
    d = [f"M{x:.1f},{y:.1f}"]
    for (x0, y0), (x1, y1) in zip(route.points, rest, strict=False):
        if y0 == y1:
            d.append(f"L{x1:.1f},{y1:.1f}")
        else:
            mid = (x0 + x1) / 2
            d.append(f"C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}")
    (x0, y0), (x1, y1) = route.points[-2:]
    edge = route.edge
    label = (
        f'<text x="{(x0 + x1) / 2:.1f}" y="{(y0 + y1) / 2 - 3:.1f}" font-size="{LABEL_FONT}" '
        f'text-anchor="middle" fill="#333" stroke="#fff" stroke-width="3" paint-order="stroke">'
        f"{escape(edge.label)}</text>"
        if edge.label
        else ""
    )
    return (
        f'<g class="edge" data-source="{escape(edge.source)}" data-target="{escape(edge.target)}">'
        f'<path d="{" ".join(d)}" fill="none" stroke="#555" stroke-width="1.3" '
        f'marker-end="url(#{_ARROW})"/>{label}</g>'
    )


def _nodes(placed: Layout, states: dict[str, str] | None) -> list[str]:
    parts = []
    for box in placed.boxes.values():
        state = (states or {}).get(box.node_id)
        fill, stroke = STATE_COLOURS.get(state or "", NOT_RUN)
        cx = box.x + box.width / 2
        tooltip = f"{box.node_id} ({box.component})" + (
            f": {state or 'not run'}" if states is not None else ""
        )
        parts.append(
            f'<g class="node" data-node="{escape(box.node_id)}"><title>{escape(tooltip)}</title>'
            f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}" '
            f'rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{cx:.1f}" y="{box.y + 18:.1f}" font-size="{ID_FONT}" font-weight="bold" '
            f'text-anchor="middle" fill="#111">{escape(box.node_id)}</text>'
            f'<text x="{cx:.1f}" y="{box.y + 34:.1f}" font-size="{COMPONENT_FONT}" text-anchor="middle" '
            f'fill="#555">{escape(box.component)}</text></g>'
        )
    return parts


def _legend(top: float) -> str:
    entries = [(s.lower(), colours) for s, colours in STATE_COLOURS.items()] + [("not run", NOT_RUN)]
    parts, x = [f'<g class="legend" transform="translate(16,{top + 4:.0f})">'], 0.0
    for name, (fill, stroke) in entries:
        parts.append(
            f'<rect x="{x:.0f}" y="0" width="14" height="14" rx="3" fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{x + 19:.0f}" y="11" font-size="11" fill="#333">{name}</text>'
        )
        x += 26 + text_width(name, 11)
    return "".join(parts) + "</g>"


def dag_html(ir: PipelineIR, states: dict[str, str] | None = None) -> str:
    """An HTML fragment for notebooks: the pipeline's name and its SVG, nothing external."""
    return (
        '<div class="mlpipe-viz" style="font-family: system-ui, sans-serif">'
        f'<div style="font-weight: bold; margin: 4px 0">pipeline {escape(ir.name)}</div>'
        f"{dag_svg(ir, states)}</div>"
    )


def dag_text(ir: PipelineIR, states: dict[str, str] | None = None) -> str:
    """The DAG as a table in layer order: what each node consumes from which node, and its state."""
    dag_edges = edges(ir)
    layer = layers(ir, dag_edges)
    header = ["LAYER", "NODE", "COMPONENT"] + (["STATE"] if states is not None else []) + ["INPUTS"]
    rows = [header]
    for n in sorted(ir.nodes, key=lambda n: layer[n.id]):
        inputs = [f"{e.source} ({e.label})" if e.label else e.source for e in dag_edges if e.target == n.id]
        state = [(states or {}).get(n.id, "not run")] if states is not None else []
        rows.append([str(layer[n.id]), n.id, short_name(n.component), *state, ", ".join(inputs) or "-"])
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return f"pipeline {ir.name}: {len(ir.nodes)} nodes\n" + "\n".join(lines) + "\n"


def render_dag_file(ir: PipelineIR, states: dict[str, str] | None, path: str | os.PathLike[str]) -> None:
    """Write the DAG to ``path``: ``.svg``, ``.html`` (a standalone page), or ``.png``.

    PNG needs librsvg's ``rsvg-convert`` on PATH (Debian/Ubuntu: ``apt-get install librsvg2-bin``);
    without it a ``.png`` path raises an error naming the alternatives, rather than writing nothing.
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    svg = dag_svg(ir, states)
    if extension == ".svg":
        content = svg
    elif extension == ".html":
        content = (
            f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>pipeline {escape(ir.name)}</title>'
            f"</head><body>\n{dag_html(ir, states)}\n</body></html>\n"
        )
    elif extension == ".png":
        converter = shutil.which("rsvg-convert")
        if converter is None:
            raise MlpipeError(
                f"cannot write {path}: PNG needs rsvg-convert (apt-get install librsvg2-bin); "
                "write .svg or .html instead"
            )
        subprocess.run([converter, "-f", "png", "-o", os.fspath(path)], input=svg.encode(), check=True)
        return
    else:
        raise MlpipeError(f"cannot write {path}: the DAG is written as .svg, .html or .png")
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)
