"""Artifacts as plain-text tables for a terminal (``mlpipe show ARTIFACT_ID``).

Plain text rather than rich markup, so the output reads the same piped into a file or a pager.
Long cells are cut so a table stays one line per row.
"""

from __future__ import annotations

from mlpipe.types.artifact import Artifact
from mlpipe.visualize.document import Bars, Cell, Document, Preformatted, Table
from mlpipe.visualize.views import artifact_document

MAX_CELL = 60  # characters of a cell before it is cut with "…"
_SPARKS = "▁▂▃▄▅▆▇█"


def render_text(artifact: Artifact) -> str:
    """What the artifact holds (statistics, schema, anomalies, ...) as text tables."""
    return document_text(artifact_document(artifact))


def document_text(document: Document) -> str:
    lines = [document.title, f"  uri: {document.uri}"]
    lines += [f"  {k}: {v}" for k, v in document.properties.items()]
    for section in document.sections:
        lines += ["", section.title]
        if isinstance(section, Preformatted):
            lines += ["  " + line for line in section.text.splitlines()]
        else:
            lines += _table_lines(section)
    return "\n".join(lines) + "\n"


def _table_lines(table: Table) -> list[str]:
    if not table.rows:
        return [f"  {table.empty}"]
    cells = [list(table.header)] + [[_cell(c) for c in row] for row in table.rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.header))]
    rule = ["─" * w for w in widths]
    return [
        "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [cells[0], rule, *cells[1:]]
    ]


def _cell(cell: Cell) -> str:
    if isinstance(cell, Bars):
        return sparkline(cell)
    return cell if len(cell) <= MAX_CELL else cell[: MAX_CELL - 1] + "…"


def sparkline(bars: Bars) -> str:
    """One block character per bar, its height proportional to the bar's count."""
    top = max((count for _, count in bars.bars), default=0)
    if top <= 0:
        return ""
    return "".join(_SPARKS[round(count / top * (len(_SPARKS) - 1))] for _, count in bars.bars)
