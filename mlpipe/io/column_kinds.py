"""Types of text columns decided on a sample, then held to by every later block of rows.

Streaming ingestion cannot see a whole file before writing its first rows, so a column's kind
(tf.Example's INT, FLOAT or BYTES, or none while it has no value) is inferred from the first block
by TFX's rule (:func:`mlpipe.io.examples.infer_column_types`) and every later block is typed by
the same rule and checked against it:

- the same kind, or no value in the block: the block is converted to the column's kind;
- integers in a FLOAT column: converted to float (what TFX infers for the whole column);
- a wider kind where nothing contradicts the rows already written - values in a column that had
  none, or floats in an INT column: :class:`Widen`. The caller re-reads the input from the start
  with the wider kind, so the output is what whole-file inference gives (the same records as
  TFX's CsvExampleGen), at the cost of one more pass per widening (at most two per column);
- text (anything TFX does not read as a number, an integer beyond int64 included) in an INT or
  FLOAT column: :class:`KindError`, which names the first such row and the value. TFX would make
  the whole column BYTES; a silent change of a numeric feature to text after millions of rows is
  far more often a fault in the data than intended, and re-reading would hide it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpipe.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa

# Kinds in widening order; the Arrow types of the typed columns.
NONE, INT, FLOAT, BYTES = "none", "int", "float", "bytes"
_ORDER = {NONE: 0, INT: 1, FLOAT: 2, BYTES: 3}


def kind_of(arrow_type: pa.DataType) -> str:
    """The kind of a column typed by :func:`mlpipe.io.examples.infer_column_types`."""
    import pyarrow as pa

    return {pa.null(): NONE, pa.int64(): INT, pa.float64(): FLOAT, pa.binary(): BYTES}[arrow_type]


def arrow_type(kind: str) -> pa.DataType:
    import pyarrow as pa

    return {NONE: pa.null(), INT: pa.int64(), FLOAT: pa.float64(), BYTES: pa.binary()}[kind]


def wider(a: str, b: str) -> str:
    return a if _ORDER[a] >= _ORDER[b] else b


class Widen(Exception):
    """Rows seen later need wider kinds than those the rows already written were given."""

    def __init__(self, kinds: dict[str, str], row: int, column: str):
        super().__init__(f"column {column!r} needs kind {kinds[column]} at row {row + 1} of the block")
        self.kinds, self.row, self.column = kinds, row, column


class KindError(DataError):
    """Text in a numeric column; ``row`` is 0-based within the block, filled in by the caller."""

    def __init__(self, row: int, column: str, kind: str, value: str):
        super().__init__(f"column {column!r}: {value!r} is not a number")
        self.row, self.column, self.kind, self.value = row, column, kind, value

    def message(self, source: str, row: str) -> str:
        """The user's message; ``row`` names the row (e.g. "data row 7 (header not counted)")."""
        return (
            f"{source}: {row}, column {self.column!r}: {self.value!r} is "
            f"not a number, but the column is {self.kind.upper()} (inferred from the first block of rows); "
            f"fix the value, or if the column is text, let text appear in its first block (CsvExampleGen's "
            f"block_bytes)"
        )


def infer_kinds(table: pa.Table) -> dict[str, str]:
    """Each string column's kind by TFX's rule (the sample's)."""
    from mlpipe.io.examples import _typed

    return {
        name: kind_of(_typed(column).type)
        for name, column in zip(table.column_names, table.columns, strict=True)
    }


def apply_kinds(table: pa.Table, kinds: dict[str, str]) -> pa.Table:
    """The string table typed by ``kinds`` (see the module docstring); raises :class:`Widen` with
    every column that needs a wider kind, or :class:`KindError` for the first text in a number
    column."""
    import pyarrow as pa
    import pyarrow.compute  # noqa: F401 - pa.compute

    from mlpipe.io.examples import _cell_type, _typed

    columns = []
    widen: dict[str, str] = {}
    first: tuple[int, str] | None = None
    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = kinds[name]
        if kind == BYTES:
            columns.append(column.cast(pa.binary()))
            continue
        typed = _as_floats(column) if kind == FLOAT else _typed(column)
        found = kind_of(typed.type)
        if found == NONE:
            columns.append(pa.chunked_array([pa.nulls(len(column), arrow_type(kind))]))
        elif found == kind or (found == INT and kind == FLOAT):
            columns.append(typed.cast(arrow_type(kind)))
        elif found == BYTES and kind != NONE:
            values = column.to_pylist()
            row = next(i for i, v in enumerate(values) if v is not None and _cell_type(v) == 2)
            raise KindError(row, name, kind, values[row])
        else:
            widen[name] = found
            row = int(pa.compute.index(column.is_valid(), True).as_py())
            first = first if first is not None and first[0] <= row else (row, name)
    if widen and first is not None:
        raise Widen({**kinds, **widen}, *first)
    return pa.Table.from_arrays(columns, names=table.column_names)


def _as_floats(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """What :func:`mlpipe.io.examples._typed` gives a column then cast to float, without first
    trying integers: Arrow's float cast where it reads the texts as Python's ``float()`` does,
    else TFX's rule (``_typed``) for the texts it would decide value by value."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from mlpipe.io.examples import _LONG_INT, _holds, _typed

    if column.null_count == len(column):
        return _typed(column)
    try:
        floats = column.cast(pa.float64())
    except pa.ArrowInvalid:
        return _typed(column)
    values = floats.to_numpy()
    integral = pa.array(np.isfinite(values) & (values == np.round(values)))
    if (
        _holds(column, "(")
        or _holds(column, "x")
        or pc.any(pc.match_substring_regex(column.filter(integral), _LONG_INT)).as_py()
    ):
        return _typed(column)
    return floats
