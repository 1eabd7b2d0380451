"""Artifacts as self-contained HTML for notebooks: inline CSS and SVG, no scripts, fonts or URLs.

Everything is scoped under one ``mlpipe-viz`` class so the styles do not leak into the notebook,
and the page renders offline and in sanitizing viewers that drop scripts.
"""

from __future__ import annotations

from html import escape

from mlpipe.types.artifact import Artifact
from mlpipe.visualize.document import Bars, Cell, Document, Preformatted, Table
from mlpipe.visualize.views import artifact_document

STYLE = """
.mlpipe-viz { font-family: system-ui, sans-serif; font-size: 13px; color: #222; }
.mlpipe-viz h3 { margin: 8px 0 2px; font-size: 15px; }
.mlpipe-viz h4 { margin: 12px 0 4px; font-size: 13px; }
.mlpipe-viz .uri { font-family: monospace; color: #555; }
.mlpipe-viz table { border-collapse: collapse; margin: 2px 0; }
.mlpipe-viz th, .mlpipe-viz td { border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left;
  vertical-align: middle; }
.mlpipe-viz th { background: #f3f3f3; }
.mlpipe-viz pre { background: #f7f7f7; padding: 6px; margin: 2px 0; }
.mlpipe-viz .empty { color: #777; font-style: italic; }
"""
BAR_WIDTH, BAR_HEIGHT, BAR_GAP = 8, 24, 1


def render_html(artifact: Artifact) -> str:
    """The same content as ``render_text``, as an HTML fragment with bar charts for distributions."""
    return document_html(artifact_document(artifact))


def document_html(document: Document) -> str:
    parts = [
        f'<div class="mlpipe-viz"><style>{STYLE}</style>',
        f"<h3>{escape(document.title)}</h3>",
        f'<div class="uri">{escape(document.uri)}</div>',
    ]
    if document.properties:
        parts.append(_table(Table("", ("property", "value"), tuple(document.properties.items()))))
    for section in document.sections:
        parts.append(f"<h4>{escape(section.title)}</h4>")
        if isinstance(section, Preformatted):
            parts.append(f"<pre>{escape(section.text)}</pre>")
        else:
            parts.append(_table(section))
    parts.append("</div>")
    return "\n".join(parts)


def _table(table: Table) -> str:
    if not table.rows:
        return f'<div class="empty">{escape(table.empty)}</div>'
    head = "".join(f"<th>{escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(cell: Cell) -> str:
    return bars_svg(cell) if isinstance(cell, Bars) else escape(cell)


def bars_svg(bars: Bars) -> str:
    """A small inline bar chart; each bar's tooltip gives its label and count."""
    top = max((count for _, count in bars.bars), default=0)
    if top <= 0:
        return ""
    width = len(bars.bars) * (BAR_WIDTH + BAR_GAP)
    rects = []
    for i, (label, count) in enumerate(bars.bars):
        height = max(1.0, count / top * BAR_HEIGHT)
        rects.append(
            f'<rect x="{i * (BAR_WIDTH + BAR_GAP)}" y="{BAR_HEIGHT - height:.1f}" width="{BAR_WIDTH}" '
            f'height="{height:.1f}" fill="#4a7fc1"><title>{escape(label)}: {count:.4g}</title></rect>'
        )
    return (
        f'<svg width="{width}" height="{BAR_HEIGHT}" viewBox="0 0 {width} {BAR_HEIGHT}" role="img">'
        + "".join(rects)
        + "</svg>"
    )
