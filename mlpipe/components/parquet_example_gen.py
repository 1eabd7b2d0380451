"""ParquetExampleGen: Parquet files -> Examples, with the split patterns of every file-based ExampleGen.

Parquet columns are already typed; they map onto tf.Example's kinds as
:func:`mlpipe.io.examples.normalize_column_types` says (integers -> INT, floats -> FLOAT, the rest
-> BYTES, list columns -> multi-valued features), and a null cell is an absent feature, as in CSV.
Files are read a record batch at a time (:attr:`ParquetReader.BATCH_ROWS` rows); the kinds of all
files are decided from their schemas before any row is read, so every block has the same types.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mlpipe.components.example_gen import FileBasedExampleGen
from mlpipe.components.example_gen_streaming import Block, Encoded, Reader, SplitPlan, encode_rows
from mlpipe.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa


class ParquetExampleGen(FileBasedExampleGen):
    """Reads Parquet files (default: every ``*.parquet`` in ``input_base``); one input split is
    hash-split by each example's bytes."""

    DEFAULT_PATTERN = "*.parquet"
    BEAM_FORMAT = "parquet"

    @staticmethod
    def reader(files: dict[str, list[str]], parameters: dict[str, Any]) -> Reader:
        return ParquetReader(files)


class ParquetReader(Reader):
    BATCH_ROWS = 131072

    def __init__(self, files: dict[str, list[str]]):
        self.files = files
        self._schema: pa.Schema | None = None

    def schema(self) -> pa.Schema:
        """The tf.Example kinds of every file's columns: a column without values (type null) in
        one file takes the others' kind; files must otherwise agree."""
        import pyarrow as pa

        from mlpipe.io import examples as io

        if self._schema is not None:
            return self._schema
        first: tuple[str, pa.Schema] | None = None
        fields: dict[str, pa.DataType] = {}
        for path in (p for paths in self.files.values() for p in paths):
            schema = io.normalize_column_types(_open(path).schema_arrow.empty_table(), path).schema
            if first is None:
                first = (path, schema)
                fields = dict(zip(schema.names, schema.types, strict=True))
                continue
            if schema.names != first[1].names:
                raise DataError(
                    f"{path}: columns {schema.names} differ from {first[0]}'s columns {first[1].names}; "
                    f"all input files of one ExampleGen must have the same columns in the same order"
                )
            for name, kind in zip(schema.names, schema.types, strict=True):
                if kind != fields[name] and pa.null() not in (kind, fields[name]):
                    raise DataError(
                        f"{path}: column {name!r} holds {kind} values, but {first[0]} holds {fields[name]}; "
                        f"give the column one type in every input file"
                    )
                if pa.types.is_null(fields[name]):
                    fields[name] = kind
        self._schema = pa.schema(list(fields.items()))
        return self._schema

    def blocks(self) -> Iterator[Block]:
        self.schema()
        for split, paths in self.files.items():
            for path in paths:
                parquet = _open(path)
                if parquet.metadata.num_rows == 0:
                    raise DataError(f"{path}: Parquet file has no rows; add data or remove the file")
                for batch in parquet.iter_batches(batch_size=self.BATCH_ROWS):
                    yield Block(path, split, batch)

    def encode(self, block: Block, plan: SplitPlan) -> Encoded:
        import pyarrow as pa

        from mlpipe.io import examples as io

        table = io.normalize_column_types(pa.Table.from_batches([block.payload]), block.source)
        typed = table.cast(self.schema())
        records = io.encode_examples(typed)
        return encode_rows(block, plan, typed, records, lambda: io.record_fingerprints(records))


def read_parquet(path: str) -> pa.Table:
    """One whole Parquet file with its columns mapped to tf.Example kinds (small files, tests)."""
    from mlpipe.io.examples import normalize_column_types

    table = _open(path).read()
    if table.num_rows == 0:
        raise DataError(f"{path}: Parquet file has no rows; add data or remove the file")
    return normalize_column_types(table, path)


def _open(path: str):  # noqa: ANN202 - pyarrow.parquet.ParquetFile, imported lazily
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(
            f"{path}: not a readable Parquet file ({e}); remove it from input_base or narrow the "
            f"input_config pattern to the Parquet files"
        ) from None
