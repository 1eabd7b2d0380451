"""One split of Examples written as shards, block after block, in TFX's naming.

Layout (docs/contracts.md, "Sharded Examples")::

    <examples uri>/Split-<name>/data_tfrecord-00000-of-000NN.gz      gzipped TFRecords of tf.Example
    <examples uri>/.columnar/Split-<name>/data-00000-of-000NN.arrow  the typed rows, Arrow IPC file

Row i of columnar shard k is record i of TFRecord shard k. How many shards: ``num_shards`` when
the user gives it (blocks of rows go to the shards in turn), else a new shard is begun once the
current one holds :data:`SHARD_BYTES` of serialized records (before compression), so the count
follows the input's size: 256 MiB is ~900k taxi rows; any split has at least one shard. As the
count is known only at the end, shards are written under temporary names (``*.partial``, which no
reader globs) and renamed when the split is complete.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

SHARD_BYTES = 256 << 20


def tfrecord_shard_name(shard: int, num_shards: int) -> str:
    return f"data_tfrecord-{shard:05d}-of-{num_shards:05d}.gz"


def columnar_shard_path(examples_uri: str, split: str, shard: int, num_shards: int) -> str:
    return os.path.join(
        examples_uri, ".columnar", f"Split-{split}", f"data-{shard:05d}-of-{num_shards:05d}.arrow"
    )


class _Shard:
    def __init__(self, tfrecord_path: str, columnar_path: str | None):
        from isal import igzip

        self.tfrecord_path, self.columnar_path = tfrecord_path, columnar_path
        self.gzip: Any = igzip.open(tfrecord_path, "wb", compresslevel=1)
        self.columnar: Any = None
        self.sink: Any = None
        self.bytes = 0
        self.rows = 0

    def write_table(self, table: pa.Table) -> None:
        import pyarrow as pa

        if self.columnar is None:
            assert self.columnar_path is not None
            os.makedirs(os.path.dirname(self.columnar_path), exist_ok=True)
            self.sink = pa.OSFile(self.columnar_path, "wb")
            self.columnar = pa.ipc.new_file(self.sink, table.schema)
        self.columnar.write_table(table, max_chunksize=1 << 20)

    def close(self) -> None:
        """Close the files (again: no-op), so a finished shard holds no buffers."""
        self.gzip.close()
        if self.columnar is not None and not self.sink.closed:
            self.columnar.close()
            self.sink.close()


class ShardedSplitWriter:
    """Writes one split's blocks (framed TFRecords, and the typed rows when there are any) in
    order. Compression (ISA-L gzip level 1, which releases the GIL) runs in one thread of its own,
    one block behind, so framing the next block overlaps it."""

    def __init__(self, examples_uri: str, split: str, *, columnar: bool, num_shards: int | None = None):
        self.examples_uri, self.split, self.columnar = examples_uri, split, columnar
        self.split_dir = os.path.join(examples_uri, f"Split-{split}")
        self.num_shards = num_shards
        self.shards: list[_Shard] = []
        self.blocks = 0
        self.rows = 0
        self.schema: pa.Schema | None = None
        self._compressor = ThreadPoolExecutor(1, thread_name_prefix=f"gzip-{split}")
        self._pending: Future[Any] | None = None
        os.makedirs(self.split_dir, exist_ok=True)

    def _shard(self, size: int) -> _Shard:
        if self.num_shards is not None:
            index = self.blocks % self.num_shards
            while len(self.shards) <= index:
                self._new_shard()
            return self.shards[index]
        if not self.shards or (self.shards[-1].bytes and self.shards[-1].bytes + size > SHARD_BYTES):
            if self.shards:
                self._wait()  # its last block is compressed before it is closed
                self.shards[-1].close()
            self._new_shard()
        return self.shards[-1]

    def _new_shard(self) -> None:
        k = len(self.shards)
        columnar = os.path.join(
            self.examples_uri, ".columnar", f"Split-{self.split}", f"data-{k:05d}.partial"
        )
        self.shards.append(
            _Shard(
                os.path.join(self.split_dir, f"data_tfrecord-{k:05d}.partial"),
                columnar if self.columnar else None,
            )
        )

    def write(self, framed: bytes | memoryview, rows: int, table: pa.Table | None) -> None:
        """One block: ``rows`` TFRecord frames, and (``columnar``) the typed rows they encode."""
        if not rows:
            return
        shard = self._shard(len(framed))
        self._wait()
        self._pending = self._compressor.submit(shard.gzip.write, framed)
        if table is not None:
            shard.write_table(table)
            self.schema = table.schema
        shard.bytes += len(framed)
        shard.rows += rows
        self.rows += rows
        self.blocks += 1

    def _wait(self) -> None:
        if self._pending is not None:
            self._pending.result()
            self._pending = None

    def finish(self, schema: pa.Schema | None = None) -> list[str]:
        """Close the shards and give them their final names; returns the TFRecord paths. A shard
        without rows (an empty split, or fewer blocks than ``num_shards``) gets an empty columnar
        table of ``schema`` (the schema of the other shards if there are any)."""
        self._wait()
        self._compressor.shutdown()
        while not self.shards or len(self.shards) < (self.num_shards or 0):
            self._new_shard()  # an empty split still has its (empty) file, as TFX writes it
        schema = self.schema or schema
        paths = []
        n = len(self.shards)
        for k, shard in enumerate(self.shards):
            shard.close()
            path = os.path.join(self.split_dir, tfrecord_shard_name(k, n))
            os.replace(shard.tfrecord_path, path)
            paths.append(path)
            if self.columnar:
                target = columnar_shard_path(self.examples_uri, self.split, k, n)
                if shard.columnar is None:  # no rows in it: an empty table
                    if schema is None:
                        continue
                    shard.write_table(schema.empty_table())
                    shard.close()
                assert shard.columnar_path is not None  # set by write_table
                os.replace(shard.columnar_path, target)
        return paths

    def abort(self) -> None:
        """Drop what was written (the input is read again, or the run failed)."""
        import shutil

        try:
            self._wait()
        except Exception:  # noqa: BLE001 - the write being dropped failed: nothing to keep
            pass
        self._compressor.shutdown()
        for shard in self.shards:
            try:
                shard.close()
            except Exception:  # noqa: BLE001
                pass
        shutil.rmtree(self.split_dir, ignore_errors=True)
        shutil.rmtree(os.path.join(self.examples_uri, ".columnar", f"Split-{self.split}"), ignore_errors=True)
