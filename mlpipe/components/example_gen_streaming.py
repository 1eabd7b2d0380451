"""How every ExampleGen runs: its input read in blocks, each block encoded and split on both cores,
the splits written as shards in input order, so memory stays bounded whatever the input's size.

A reader (one per input kind: CSV, Parquet, SQL, TFRecord) yields :class:`Block` s in input order
from this process (the I/O) and turns one block into typed rows and tf.Example records in a
worker thread (the CPU work, mostly in Arrow and numpy, which release the GIL). Up to
:data:`IN_FLIGHT` blocks are in work at a time; results are written in order, so record order
and shard contents do not depend on timing. Rows are hash-split block by block with the same
per-row fingerprints as the whole-input code, so a row lands in the same split however the input
is cut into blocks.

When a later block needs a wider column kind than the sample gave (:class:`~mlpipe.io.column_kinds.Widen`),
what was written is dropped and the input is read again with the wider kind; a DataError drops it
too, and the launcher discards the staged artifact, so nothing is published.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DataError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

# Blocks in work at once: one per core, and one read ahead. Threads, not processes: with the
# records kept in Arrow (no Python object per record) most of the work releases the GIL, and on
# 1M taxi rows two threads encode in 2.2 s wall (3.9 CPU s; one thread 3.8 s), where two forked
# processes that need no transfer at all took 2.1 s; a real process pool (commit e9ffabb) adds the
# pickling of every block and result and the workers' start, and measured slower.
IN_FLIGHT = 3
WORKERS = 2


@dataclass(frozen=True)
class Block:
    """Rows of one input source (a file, a query) in one input split."""

    source: str
    split: str
    payload: Any


@dataclass
class Encoded:
    """One block's output: its rows, and per output split the framed TFRecords, their count and
    the typed rows they encode (None for readers without a typed table)."""

    rows: int
    parts: dict[str, tuple[Any, int, pa.Table | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class SplitPlan:
    """Hash buckets (name, buckets) dividing one input split, or None: input splits as they are."""

    buckets: list[tuple[str, int]] | None
    partition_feature: str | None = None


class RowError(DataError):
    """A fault in one row of a block; ``row`` is 0-based in the block, named in the message by
    ``text(source, row label)`` once the rows before the block are counted."""

    def __init__(self, row: int, text: Callable[[str, str], str]):
        super().__init__(text("?", f"row {row + 1} of a block"))
        self.row, self.text = row, text


class Reader:
    """One kind of input. ``columnar``: whether blocks have typed rows to keep beside the records."""

    columnar = True

    def blocks(self) -> Iterator[Block]:
        raise NotImplementedError

    def encode(self, block: Block, plan: SplitPlan) -> Encoded:
        raise NotImplementedError

    def widen(self, kinds: dict[str, str]) -> None:
        """Read again with these column kinds (only readers that infer kinds get a Widen)."""
        raise NotImplementedError

    def finished(self, rows_by_source: dict[str, int], rows_by_split: dict[str, int]) -> None:
        """Checks once every block was read (e.g. a file without rows)."""

    def schema(self) -> pa.Schema | None:
        """The typed rows' schema, for a shard that gets none (an empty split)."""
        return None

    def row_label(self, row: int) -> str:
        """How errors name the 1-based ``row`` of a source."""
        return f"row {row}"


def assign_splits(fingerprints: np.ndarray, splits: list[tuple[str, int]]) -> dict[str, np.ndarray]:
    """Row indices per split: a row goes to the split owning ``fingerprint % total buckets``
    (splits own consecutive bucket ranges in their order), TFX's hash split."""
    import numpy as np

    bucket = fingerprints % np.uint64(sum(b for _, b in splits))
    chosen = {}
    upper = 0
    for name, buckets in splits:
        lower, upper = upper, upper + buckets
        chosen[name] = np.flatnonzero((bucket >= lower) & (bucket < upper))
    return chosen


def encode_rows(
    block: Block,
    plan: SplitPlan,
    typed: pa.Table | None,
    records: list[bytes] | None,
    fingerprints: Callable[[], np.ndarray],
) -> Encoded:
    """Split one block's rows and frame each split's records as TFRecords. ``records``: the
    block's records as they are (read or encoded already), or None: each split's rows of
    ``typed`` are encoded here, after the split, so records never become Python objects."""
    import numpy as np

    from mlpipe.io import examples as io

    count = len(records) if records is not None else typed.num_rows if typed is not None else 0
    if plan.buckets is None:
        chosen = {block.split: np.arange(count)}
    elif plan.partition_feature is not None:
        chosen = assign_splits(
            _partition_fingerprints(block, typed, records, plan.partition_feature), plan.buckets
        )
    else:
        chosen = assign_splits(fingerprints(), plan.buckets)
    encoded = Encoded(count)
    for name, rows in chosen.items():
        if not len(rows):
            continue
        every = len(rows) == count
        table = None if typed is None else typed if every else typed.take(rows)
        if records is None:
            assert table is not None
            part: list[bytes] | pa.Array = io.encode_example_array(table)
        else:
            part = records if every else [records[i] for i in rows]
        encoded.parts[name] = (io._framed(part), len(rows), table)
    return encoded


def _partition_fingerprints(
    block: Block, typed: pa.Table | None, records: list[bytes] | None, feature: str
) -> np.ndarray:
    import pyarrow as pa

    from mlpipe.io import examples as io

    if typed is None:  # records read as they are (ImportExampleGen): decode them
        assert records is not None
        from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

        typed = pa.Table.from_batches([ExamplesToRecordBatchDecoder().DecodeBatch(records)])
    if feature in typed.column_names:
        keys = [io._partition_key(v) for v in typed.column(feature).to_pylist()]
        missing = next((i for i, k in enumerate(keys) if k is None), None)
        if missing is not None:
            raise RowError(
                missing,
                lambda source, row: (
                    f"{source}: {row}: partition_feature_name {feature!r} has no "
                    f"value; every row needs one for its split: fill it in or partition on another column"
                ),
            )
    return io.column_fingerprints(typed, feature)


def write_streamed_splits(ctx: ExecutionContext, reader: Reader, input_splits: list[str]) -> None:
    """Run ``reader`` over its input and write the Examples artifact's splits as shards; sets
    ``split_names`` and the ``num_rows_<split>`` custom properties."""
    from mlpipe.components.example_gen import output_shards, partition_feature, split_config
    from mlpipe.io.column_kinds import Widen
    from mlpipe.io.example_shards import ShardedSplitWriter

    out = ctx.outputs["examples"]
    config = ctx.parameters.get("output_config")
    if len(input_splits) == 1:
        plan = SplitPlan(split_config(config), partition_feature(config))
        names = [name for name, _ in plan.buckets or []]
    else:
        plan, names = SplitPlan(None), list(input_splits)
    while True:
        writers = {
            n: ShardedSplitWriter(out.uri, n, columnar=reader.columnar, num_shards=output_shards(config))
            for n in names
        }
        try:
            rows_by_source, rows_by_split = _run(reader, plan, writers)
            reader.finished(rows_by_source, rows_by_split)
            break
        except Widen as widen:
            for writer in writers.values():
                writer.abort()
            ctx.log.info(
                "column %r needs kind %s: reading the input again", widen.column, widen.kinds[widen.column]
            )
            reader.widen(widen.kinds)
        except BaseException:
            for writer in writers.values():
                writer.abort()
            raise
    for name, writer in writers.items():
        paths = writer.finish(reader.schema())
        out.set_custom_property(f"num_rows_{name}", writer.rows)
        ctx.log.info("split %s: %d rows in %d shard(s)", name, writer.rows, len(paths))
    out.split_names = names


def _run(reader: Reader, plan: SplitPlan, writers: dict[str, Any]) -> tuple[dict[str, int], dict[str, int]]:
    from mlpipe.io.column_kinds import KindError

    rows_by_source: dict[str, int] = collections.defaultdict(int)
    rows_by_split: dict[str, int] = collections.defaultdict(int)
    pending: collections.deque[tuple[Block, Future[Encoded]]] = collections.deque()

    def write_oldest() -> None:
        block, future = pending.popleft()
        try:
            encoded = future.result()
        except KindError as e:
            raise DataError(
                e.message(block.source, reader.row_label(rows_by_source[block.source] + e.row + 1))
            ) from None
        except RowError as e:
            raise DataError(
                e.text(block.source, reader.row_label(rows_by_source[block.source] + e.row + 1))
            ) from None
        rows_by_source[block.source] += encoded.rows
        rows_by_split[block.split] += encoded.rows
        for name, (framed, rows, table) in encoded.parts.items():
            writers[name].write(framed, rows, table)

    with ThreadPoolExecutor(WORKERS, thread_name_prefix="encode") as pool:
        try:
            for block in reader.blocks():
                pending.append((block, pool.submit(reader.encode, block, plan)))
                if len(pending) >= IN_FLIGHT:
                    write_oldest()
            while pending:
                write_oldest()
        finally:
            for _, future in pending:
                future.cancel()
    return dict(rows_by_source), dict(rows_by_split)
