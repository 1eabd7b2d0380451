"""ParquetExampleGen: Parquet files -> Examples, with the split patterns of every file-based ExampleGen.

Parquet columns are already typed; they map onto tf.Example's kinds as
:func:`mlpipe.io.examples.normalize_column_types` says (integers -> INT, floats -> FLOAT, the rest
-> BYTES, list columns -> multi-valued features), and a null cell is an absent feature, as in CSV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlpipe.components.example_gen import FileBasedExampleGen, InputRecords, encode_tables
from mlpipe.errors import DataError

if TYPE_CHECKING:
    import pyarrow as pa


class ParquetExampleGen(FileBasedExampleGen):
    """Reads Parquet files (default: every ``*.parquet`` in ``input_base``); one input split is
    hash-split by each example's bytes."""

    DEFAULT_PATTERN = "*.parquet"
    BEAM_FORMAT = "parquet"

    @staticmethod
    def read_split_files(files: dict[str, list[str]]) -> InputRecords:
        from mlpipe.io import examples as io

        tables = {
            name: io.concat_same_columns([read_parquet(p) for p in paths], paths)
            for name, paths in files.items()
        }
        return encode_tables(tables, lambda table: table, None)


def read_parquet(path: str) -> pa.Table:
    """One Parquet file with its columns mapped to tf.Example kinds; a non-Parquet file is named."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlpipe.io.examples import normalize_column_types

    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise DataError(
            f"{path}: not a readable Parquet file ({e}); remove it from input_base or narrow the "
            f"input_config pattern to the Parquet files"
        ) from None
    if table.num_rows == 0:
        raise DataError(f"{path}: Parquet file has no rows; add data or remove the file")
    return normalize_column_types(table, path)
