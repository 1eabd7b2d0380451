"""Streaming a split's records in bounded batches, from the sharded and the single-file layouts."""

from __future__ import annotations

import gzip

import pytest

from mlpipe.errors import DataError
from mlpipe.io import examples as io
from mlpipe.io.example_stream import iter_serialized_examples


def records(n: int, start: int = 0) -> list[bytes]:
    return [f"record {i} ".encode() * (1 + i % 5) for i in range(start, start + n)]


def test_sharded_split_streams_in_shard_order_in_batches_of_the_given_size(tmp_path):
    split = tmp_path / "Split-train"
    for k in range(3):  # written out of order: shard k follows shard k-1 by name
        io.write_examples(str(split), records(1000, 1000 * (2 - k)), f"data_tfrecord-{2 - k:05d}-of-00003.gz")
    batches = list(iter_serialized_examples(str(split), 128))
    assert [len(b) for b in batches] == [128] * 23 + [3000 - 23 * 128]
    assert [r for b in batches for r in b] == records(3000)


def test_single_file_layout_and_a_record_larger_than_the_read_chunk(tmp_path, monkeypatch):
    from mlpipe.io import example_stream

    monkeypatch.setattr(example_stream, "_CHUNK_BYTES", 64)  # records straddle every chunk boundary
    written = [*records(50), b"x" * 1000, b""]
    io.write_examples(str(tmp_path), written)
    assert [r for b in iter_serialized_examples(str(tmp_path), 7) for r in b] == written


def test_corrupt_record_names_the_file_and_byte(tmp_path):
    path = io.write_examples(str(tmp_path), records(10))
    with gzip.open(path) as f:
        data = bytearray(f.read())
    data[-3] ^= 0xFF  # the last record's checksum
    with gzip.open(path, "wb") as f:
        f.write(bytes(data))
    offset = sum(16 + len(r) for r in records(9))
    with pytest.raises(DataError, match=rf"data_tfrecord-00000-of-00001.gz: record at byte {offset} fails"):
        list(iter_serialized_examples(str(tmp_path), 4))
    with gzip.open(path, "wb") as f:
        f.write(bytes(data[:-10]))
    with pytest.raises(DataError, match=r"truncated record"):
        list(iter_serialized_examples(str(tmp_path), 4))


@pytest.mark.parametrize("count, shards", [(2500, 3), (2000, 2), (0, 1)])
def test_transform_writes_shards_named_as_beams_sink(tmp_path, count, shards):
    from mlpipe.components.transform import write_shards

    assert (
        write_shards(str(tmp_path), iter(records(count)), "transformed_examples", shard_rows=1000) == shards
    )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"transformed_examples-{k:05d}-of-{shards:05d}.gz" for k in range(shards)]
    assert [r for b in iter_serialized_examples(str(tmp_path), 999) for r in b] == records(count)
