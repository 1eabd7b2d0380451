"""A split's serialized tf.Examples as a stream of bounded batches, in either Examples layout.

Transform and BulkInferrer read splits of any size through this, so a process holds one batch of
records at a time rather than the split (``examples.read_examples`` returns them all). The files
are those of :func:`mlpipe.io.examples.example_files`: every ``*.gz`` of the split directory in
name order, which covers the sharded layout (``data_tfrecord-00000-of-000NN.gz``...) and the
single-file one alike, the records of shard k following those of shard k-1.

Nothing here imports TensorFlow. Decompression is ISA-L's gzip (``isal.igzip``, as the writer),
which releases the GIL, in a second thread, so a reader of a large split keeps both cores busy.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from contextlib import closing
from functools import partial

from mlpipe.errors import DataError
from mlpipe.io.examples import _masked_crc, example_files
from mlpipe.io.read_ahead import read_ahead

_CHUNK_BYTES = 4 << 20  # decompressed bytes read at a time


def iter_serialized_examples(
    split_dir: str, batch_records: int, part: int = 0, parts: int = 1
) -> Iterator[list[bytes]]:
    """The split's records in file order, ``batch_records`` at a time (the last batch may be
    shorter; no batch is empty), checksums verified; a corrupt file is a ``DataError`` naming it
    and the byte offset. Part ``part`` of ``parts`` reads every ``parts``-th shard from the
    ``part``-th (StatisticsGen's processes each take one part)."""
    if batch_records < 1:
        raise ValueError(f"batch_records must be positive, got {batch_records}")
    batch: list[bytes] = []
    for path in example_files(split_dir)[part::parts]:
        for record in iter_tfrecords(path):
            batch.append(record)
            if len(batch) == batch_records:
                yield batch
                batch = []
    if batch:
        yield batch


def iter_tfrecords(path: str) -> Iterator[bytes]:
    """The records of one TFRecord file (gzipped, detected by its magic bytes, or not), streamed,
    each checked against its length and CRC32C; the next chunk inflates in a second thread."""
    import gzip

    from isal import igzip

    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    try:
        with igzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            # the next chunk inflates in a second thread; closed (its read finished) before the file
            with closing(read_ahead(iter(partial(f.read, _CHUNK_BYTES), b""), "inflate")) as chunks:
                yield from _records(path, chunks)
    except (EOFError, gzip.BadGzipFile, igzip.BadGzipFile) as e:
        raise DataError(f"{path}: truncated or not gzip ({e}); rerun the step that wrote it") from None


def _records(path: str, chunks: Iterable[bytes]) -> Iterator[bytes]:
    buffer, position, offset = b"", 0, 0  # offset: of buffer[position] in the file's records
    for chunk in chunks:
        buffer = buffer[position:] + chunk
        position = 0
        end = len(buffer)
        while end - position >= 12:
            header = buffer[position : position + 8]
            if buffer[position + 8 : position + 12] != _masked_crc(header):
                raise DataError(f"{path}: not a TFRecord file, or corrupt at byte {offset} of its records")
            (length,) = struct.unpack("<Q", header)
            if end - position < 16 + length:
                break
            record = buffer[position + 12 : position + 12 + length]
            if buffer[position + 12 + length : position + 16 + length] != _masked_crc(record):
                raise DataError(f"{path}: record at byte {offset} fails its CRC32C check")
            yield record
            position += 16 + length
            offset += 16 + length
    if position != len(buffer):
        raise DataError(
            f"{path}: record at byte {offset} fails: truncated record ({len(buffer) - position} bytes of "
            f"it); rerun the step that wrote it"
        )
