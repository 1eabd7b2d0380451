"""A CSV file read in blocks of whole records, each block parsed with the checks of
:func:`mlpipe.io.examples.parse_csv`, so a file of any size is read in bounded memory.

A block is cut just after the last line feed outside a quoted value (the quotes are checked on
the way, as Python's strict ``csv`` reader checks them), so no record is split between blocks and
a quoted value may span lines. A file whose lines end in a lone CR (no LF) has no such cut: it is
one block. Errors name the file and its line, counted over the whole file (only when there is an
error: a block knows its byte offset, and the lines before it are counted then).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlpipe.errors import DataError
from mlpipe.io.examples import _UTF8_BOM, _line_of, _locate_ragged_row, check_text, scan_quotes

if TYPE_CHECKING:
    import pyarrow as pa

# Default bytes read at a time: ~70k taxi rows, whose encoding takes ~0.6 CPU s and ~150 MB. On
# 1M taxi rows, 8 MiB blocks peaked at 0.6 GB, 16 MiB at 0.9 GB, for the same CPU time.
BLOCK_BYTES = 8 << 20


@dataclass(frozen=True)
class CsvBlock:
    """Whole records of one CSV file: ``data`` starts at byte ``offset`` of ``path`` (after a
    byte-order mark); the first block of a file (``offset == 0``) starts with the header line."""

    path: str
    data: bytes
    offset: int
    multiline: bool  # a quoted value in it holds a line break (Arrow then parses more slowly)

    @property
    def first(self) -> bool:
        return self.offset == 0

    def line_of(self, position: int) -> int:
        """The file's 1-based line at a position in ``data`` (reads the file up to the block)."""
        return _lines_before(self.path, self.offset) + _line_of(self.data, position)


def _lines_before(path: str, offset: int) -> int:
    """Line breaks in the file's first ``offset`` bytes (after a byte-order mark)."""
    if not offset:
        return 0
    with open(path, "rb") as f:
        head = f.read(len(_UTF8_BOM))
        start = len(_UTF8_BOM) if head == _UTF8_BOM else 0
        f.seek(start)
        return _line_of(f.read(offset), offset) - 1


def csv_blocks(path: str, block_bytes: int = BLOCK_BYTES) -> Iterator[CsvBlock]:
    """The file's blocks of whole records, about ``block_bytes`` each (more where one record is
    longer). A UTF-8 byte-order mark is dropped, as Arrow and Excel's readers do."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if f.read(len(_UTF8_BOM)) != _UTF8_BOM:
            f.seek(0)
        rest = b""
        offset = 0
        while True:
            data = rest + f.read(block_bytes)
            final = f.tell() >= size
            multiline, cut = scan_quotes(
                path, data, final=final, line_of=CsvBlock(path, data, offset, False).line_of
            )
            if not final and (cut == 0 or (not offset and not data[:cut].strip(b"\r\n"))):
                rest = data  # one record longer than a block, or blank lines before the header: read on
                continue
            block, rest = data[:cut], data[cut:]
            if block or not offset:
                yield CsvBlock(path, block, offset, multiline)
            offset += cut
            if final:
                return


def read_header(block: CsvBlock) -> list[str]:
    """The column names on a file's first line, checked (named, none twice)."""
    _check_text(block)
    if not block.data.strip():
        raise DataError(f"{block.path}: file is empty; expected a header line and at least one row")
    reader = csv.reader(io.StringIO(block.data.decode("utf-8"), newline=""), strict=True)
    header = next((row for row in reader if row), [])
    seen: set[str] = set()
    for name in header:
        if not name:
            raise DataError(
                f"{block.path}:{reader.line_num}: header has an empty column name; name every column"
            )
        if name in seen:
            raise DataError(
                f"{block.path}:{reader.line_num}: column name {name!r} appears twice in the header; rename one"
            )
        seen.add(name)
    return header


def parse_block(block: CsvBlock, header: list[str]) -> pa.Table:
    """The block's records as string columns (nulls for empty cells), as
    :func:`mlpipe.io.examples.parse_csv` reads them; a ragged record is named by its line."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    _check_text(block)
    first = block.first
    if not block.data.strip(b"\r\n"):
        return pa.table({name: pa.array([], pa.string()) for name in header})
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header}, null_values=[""], strings_can_be_null=True
    )
    try:
        return pacsv.read_csv(
            pa.BufferReader(block.data),
            read_options=pacsv.ReadOptions(
                use_threads=len(block.data) > (1 << 20), column_names=None if first else header
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=block.multiline),
            convert_options=convert,
        )
    except pa.ArrowInvalid as e:
        text = block.data.decode("utf-8")
        first_line = block.line_of(0)
        raise _locate_ragged_row(block.path, text, len(header), first_line) or DataError(
            f"{block.path}: cannot parse CSV from line {first_line}: {e}"
        ) from None


def _check_text(block: CsvBlock) -> None:
    """UTF-8 without NUL bytes, or an error naming the line (ASCII, the common case, costs one scan)."""
    data = block.data
    check_text(block.path, data, block.line_of)
