"""One split of Examples as a stream of tfx_bsl-shaped Arrow record batches, in bounded memory.

Readers of a whole split (StatisticsGen, and any component that folds rows into a summary) take
batches of ``batch_rows`` rows from here, so their memory depends on the batch, not the split.
A batch is exactly what tfx_bsl's ``ExamplesToRecordBatchDecoder`` returns for those records:
one ``large_list`` column per feature, sorted by name, float32 floats, ``large_binary`` strings.

The rows come from the ExampleGen's typed columnar copy when there is one (no decoding: ~10x
faster), else from the gzipped TFRecord shards, decoded by tfx_bsl a batch at a time. Both
layouts of the columnar copy are read (see docs/contracts.md):

- sharded: ``<uri>/.columnar/Split-<split>/data-00000-of-000NN.arrow``, one Arrow IPC file per
  TFRecord shard, row ``i`` of shard ``k`` being record ``i`` of TFRecord shard ``k``;
- single file (older ExampleGens): ``<uri>/.columnar/Split-<split>.arrow``.

``part``/``parts`` cut a split into disjoint pieces that together hold every row once, so that
several processes can each stream one piece (the columnar copy is cut by rows, evenly; TFRecords
by shard).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from mlpipe.errors import DataError
from mlpipe.io import examples as io_examples
from mlpipe.io.example_stream import iter_serialized_examples

if TYPE_CHECKING:
    import pyarrow as pa

# Rows per batch: large enough that TFDV's vectorized work dominates its per-batch overhead
# (TFDV's generators on 666k taxi rows: 1.05-1.17 CPU s in 64k-row batches, 0.98 in one batch,
# 1.31 in 16k-row batches), small enough that a batch of taxi rows is ~10 MB.
DEFAULT_BATCH_ROWS = 65536


def columnar_files(examples_uri: str, split: str) -> list[str]:
    """The Arrow IPC files of one split's columnar copy, in shard order; [] when there is none."""
    shards = sorted(glob.glob(os.path.join(examples_uri, ".columnar", f"Split-{split}", "*.arrow")))
    if shards:
        return shards
    single = io_examples.columnar_path(examples_uri, split)
    return [single] if os.path.isfile(single) else []


def iter_record_batches(
    examples_uri: str,
    split: str,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    part: int = 0,
    parts: int = 1,
) -> Iterator[pa.RecordBatch]:
    """Part ``part`` of ``parts`` of one split, ``batch_rows`` rows at a time (the last fewer)."""
    if not 0 <= part < parts:
        raise ValueError(f"part {part} of {parts}: expected 0 <= part < parts")
    files = columnar_files(examples_uri, split)
    if files:
        yield from _columnar_batches(files, batch_rows, part, parts)
        return
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    decoder = ExamplesToRecordBatchDecoder()
    split_dir = os.path.join(examples_uri, f"Split-{split}")
    for records in iter_serialized_examples(split_dir, batch_rows, part, parts):
        yield decoder.DecodeBatch(records)


def _columnar_batches(
    files: Sequence[str], batch_rows: int, part: int, parts: int
) -> Iterator[pa.RecordBatch]:
    """Rows ``[part * n // parts, (part + 1) * n // parts)`` of the files' ``n`` rows.

    A file is memory-mapped only while its rows are read: a mapping's touched pages count in
    this process's RSS until it is unmapped, so keeping every shard mapped would grow RSS to the
    size of the split. (Arrow unmaps when the last batch sliced from it is released.)
    """
    sizes = [_rows(path) for path in files]
    total = sum(sizes)
    start, stop = part * total // parts, (part + 1) * total // parts
    offset = 0  # rows of the files before the current one
    for path, size in zip(files, sizes, strict=True):
        first, last = max(start - offset, 0), min(stop - offset, size)
        offset += size
        if first >= last:
            continue
        table, empty_lists = _open(path)
        for begin in range(first, last, batch_rows):
            rows = table.slice(begin, min(batch_rows, last - begin)).combine_chunks()
            yield tfx_record_batch(rows, empty_lists)
        del table


def _open(path: str) -> tuple[pa.Table, bool]:
    """A columnar file as a table over its memory map (nothing read yet), and whether its nulls
    are empty CSV cells."""
    import pyarrow as pa

    try:
        reader = pa.ipc.open_file(pa.memory_map(path))
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(f"{path}: not a readable Arrow IPC file ({e}); rerun the ExampleGen") from None
    batches = [reader.get_batch(i) for i in range(reader.num_record_batches)]
    return pa.Table.from_batches(batches, reader.schema), io_examples._empty_cells_as_lists(reader.schema)


def _rows(path: str) -> int:
    """Rows of a columnar file, from its batches' headers (their data pages are not touched)."""
    table, _ = _open(path)
    return table.num_rows


def tfx_record_batch(table: pa.Table, empty_lists: bool) -> pa.RecordBatch:
    """A typed columnar table (one chunk per column) as tfx_bsl's decoder returns its records:
    one large_list column per feature (sorted by name), float32 floats; where a row's feature has
    no kind (a null), a null, and a column of type null if no row has a value; an empty list for
    an empty CSV cell (``empty_lists``: the table's nulls are empty CSV cells).

    Applied to any slice of a split; tests/io/test_example_batches.py checks every batch against
    tfx_bsl's decoder of the same records.
    """
    import numpy as np
    import pyarrow as pa

    names, arrays = [], []
    for name in sorted(table.column_names):
        column = table.column(name)
        column = column.chunk(0) if column.num_chunks else pa.array([], column.type)
        names.append(name)
        if pa.types.is_null(column.type) or (column.null_count == len(column) and not empty_lists):
            arrays.append(pa.nulls(len(column)))
            continue
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        if pa.types.is_list(column.type):
            lengths = column.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
            values = column.flatten()
        else:
            lengths, values = valid.astype(np.int64), column.drop_null()
        offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        kind = {pa.float64(): pa.float32(), pa.binary(): pa.large_binary()}.get(values.type, values.type)
        mask = None if empty_lists else pa.array(~valid)
        arrays.append(pa.LargeListArray.from_arrays(offsets, values.cast(kind), mask=mask))
    return pa.RecordBatch.from_arrays(arrays, names)


def columnar_conforms(files: Sequence[str], target: pa.Schema) -> bool:
    """Whether batches of these columnar files can be given ``target``'s shape by :func:`conform`:
    each column the target names has the target's type in every file (or no values: null).
    Otherwise (a schema that types a feature differently from the data) the records must go
    through tfx_bsl's decoder, which is where that mismatch is reported."""
    import pyarrow as pa

    for path in files:
        table, empty_lists = _open(path)
        shaped = tfx_record_batch(table.slice(0, 0), empty_lists).schema
        for field in target:
            index = shaped.get_field_index(field.name)
            if index >= 0 and shaped.field(index).type not in (field.type, pa.null()):
                return False
    return True


def conform(batch: pa.RecordBatch, target: pa.Schema) -> pa.RecordBatch:
    """``batch`` (of :func:`iter_record_batches`) as tfx_bsl's decoder *given a schema* returns
    the same records: the schema's features in its order with its types, a feature no record has
    as nulls, features the schema does not name dropped. The columns must conform
    (:func:`columnar_conforms`); tests/io/test_example_batches.py checks this against the decoder."""
    import pyarrow as pa

    arrays = []
    for field in target:
        index = batch.schema.get_field_index(field.name)
        column = batch.column(index) if index >= 0 else None
        if column is None or pa.types.is_null(column.type):
            column = pa.nulls(batch.num_rows, field.type)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, schema=target)
