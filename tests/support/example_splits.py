"""Write a split of Examples in either layout of docs/contracts.md, for tests of their readers."""

from __future__ import annotations

import os

from mlpipe.io import examples as io


def write_split(uri: str, split: str, table, shards: int | None) -> None:
    """One split of a typed table: TFRecords and columnar copy in ``shards`` shards (row ``i`` of
    columnar shard ``k`` is record ``i`` of TFRecord shard ``k``), or for None the single-file
    layout older ExampleGens wrote."""
    split_dir = os.path.join(uri, f"Split-{split}")
    if shards is None:
        io.write_examples(split_dir, io.encode_examples(table))
        io.write_columnar(io.columnar_path(uri, split), table)
        return
    bounds = [k * table.num_rows // shards for k in range(shards + 1)]
    for k in range(shards):
        piece = table.slice(bounds[k], bounds[k + 1] - bounds[k])
        io.write_examples(split_dir, io.encode_examples(piece), f"data_tfrecord-{k:05d}-of-{shards:05d}.gz")
        columnar = os.path.join(uri, ".columnar", f"Split-{split}", f"data-{k:05d}-of-{shards:05d}.arrow")
        io.write_columnar(columnar, piece)
