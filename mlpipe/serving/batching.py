"""Request batching: concurrent requests for one signature become one model call.

A model call has a fixed cost (dispatch, thread hand-offs) that dwarfs the per-row cost of small
inputs, so under concurrency merging requests along their first dimension multiplies throughput.
The knobs are TF Serving's ``BatchingParameters`` text proto (``--batching_parameters_file``), so
one file configures both the built-in server and ``tensorflow_model_server``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from mlpipe.errors import ServingError
from mlpipe.serving.metrics import BATCH_THREAD_POOL
from mlpipe.serving.status import ServingRequestError, invalid_argument

log = logging.getLogger(__name__)

Tensors = dict[str, np.ndarray]

# BatchingParameters fields of TF Serving's session_bundle_config.proto. The built-in server acts on
# the first four and ignores the rest (with a warning), so files written for the real server load.
_INT_FIELDS = ("max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads")
_IGNORED_FIELDS = (
    "thread_pool_name",
    "allowed_batch_sizes",
    "pad_variable_length_inputs",
    "enable_large_batch_splitting",
    "max_execution_batch_size",
)


@dataclass(frozen=True)
class BatchingParameters:
    """How requests are merged; defaults are TF Serving's.

    A batch runs when it holds ``max_batch_size`` rows or its oldest request has waited
    ``batch_timeout_micros``; at most ``max_enqueued_batches`` full batches wait before requests are
    refused with UNAVAILABLE; ``num_batch_threads`` batches run at once.
    """

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = field(default_factory=lambda: os.cpu_count() or 1)

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            value = getattr(self, name)
            minimum = 0 if name == "batch_timeout_micros" else 1
            if value < minimum:
                raise ServingError(f"batching parameter {name} must be >= {minimum}, got {value}")

    @classmethod
    def parse(cls, text: str, source: str = "<string>") -> BatchingParameters:
        """Parse a text-format ``BatchingParameters`` (``max_batch_size { value: 128 } ...``)."""
        from google.protobuf import text_format

        try:
            message = text_format.Parse(text, _batching_parameters_class()())
        except text_format.ParseError as error:
            raise ServingError(
                f"{source}: not a text-format tensorflow.serving.BatchingParameters: {error}"
            ) from None
        set_fields = {descriptor.name for descriptor, _ in message.ListFields()}
        ignored = [name for name in _IGNORED_FIELDS if name in set_fields]
        if ignored:
            log.warning("%s: the built-in server ignores batching parameters %s", source, ", ".join(ignored))
        values = {name: getattr(message, name).value for name in _INT_FIELDS if message.HasField(name)}
        return cls(**values)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> BatchingParameters:
        """Parse the file given to ``--batching_parameters_file``."""
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as error:
            raise ServingError(
                f"cannot read batching parameters file {os.fspath(path)!r}: {error.strerror}"
            ) from None
        return cls.parse(text, source=os.fspath(path))


@cache
def _batching_parameters_class() -> type:
    """The ``tensorflow.serving.BatchingParameters`` message class, built from a descriptor.

    The proto ships with the server, not with tensorflow-serving-api; declaring its fields here lets
    ``text_format`` parse and validate the file exactly as the server would.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    proto = descriptor_pb2.FileDescriptorProto(
        name="mlpipe/serving/batching_parameters.proto",
        package="tensorflow.serving",
        dependency=["google/protobuf/wrappers.proto"],
        syntax="proto3",
    )
    message = proto.message_type.add(name="BatchingParameters")
    field_type = descriptor_pb2.FieldDescriptorProto
    wrapped = {
        "max_batch_size": ".google.protobuf.Int64Value",
        "batch_timeout_micros": ".google.protobuf.Int64Value",
        "max_enqueued_batches": ".google.protobuf.Int64Value",
        "num_batch_threads": ".google.protobuf.Int64Value",
        "thread_pool_name": ".google.protobuf.StringValue",
        "enable_large_batch_splitting": ".google.protobuf.BoolValue",
        "max_execution_batch_size": ".google.protobuf.Int64Value",
    }
    for number, (name, type_name) in enumerate(wrapped.items(), start=1):
        message.field.add(
            name=name,
            number=number,
            type=field_type.TYPE_MESSAGE,
            type_name=type_name,
            label=field_type.LABEL_OPTIONAL,
        )
    message.field.add(
        name="allowed_batch_sizes", number=20, type=field_type.TYPE_INT64, label=field_type.LABEL_REPEATED
    )
    message.field.add(
        name="pad_variable_length_inputs",
        number=21,
        type=field_type.TYPE_BOOL,
        label=field_type.LABEL_OPTIONAL,
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(proto)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


class _Task:
    __slots__ = ("inputs", "rows", "future", "enqueued")

    def __init__(self, inputs: Tensors, rows: int, future: asyncio.Future[Tensors]):
        self.inputs = inputs
        self.rows = rows
        self.future = future
        self.enqueued = time.monotonic()


class _Queue:
    __slots__ = ("run", "name", "tasks", "rows")

    def __init__(self, run: Callable[[Tensors], Tensors], name: str):
        self.run = run
        self.name = name
        self.tasks: deque[_Task] = deque()
        self.rows = 0


class Batcher:
    """Queues requests per batching key on the serving event loop; runs merged batches on threads.

    Requests share a batch only if their key is equal: callers key on the loaded model version, the
    signature and each input's dtype and trailing shape, so merged inputs always concatenate.

    The queues live on the event loop, so queuing takes no lock and wakes no thread; a batch goes to
    one of ``num_batch_threads`` threads when it is full, when its oldest request has waited
    ``batch_timeout_micros``, or (timeout 0) as soon as a thread is free. While every thread is busy,
    requests gather into the next batch. A finished batch answers all its requests in one callback.

    ``on_batch(name, rows, waits)`` is told of every batch as it starts: the name given to :meth:`run`
    (the model), its rows, and each of its requests' seconds in the queue.
    """

    def __init__(
        self,
        params: BatchingParameters,
        on_batch: Callable[[str, int, list[float]], None] | None = None,
    ):
        self.params = params
        self._on_batch = on_batch
        self._queues: dict[Hashable, _Queue] = {}
        self._queued_rows = 0
        self._running = 0
        self._stopped = False
        self._timer: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None
        self._threads = ThreadPoolExecutor(params.num_batch_threads, thread_name_prefix=BATCH_THREAD_POOL)

    async def run(
        self, key: Hashable, run: Callable[[Tensors], Tensors], inputs: Tensors, name: str = ""
    ) -> Tensors:
        """``run(inputs)``, merged with concurrent calls of the same key; call it on the event loop.

        ``inputs`` must share a first dimension (see :func:`batch_rows`). ``name`` labels the key's
        batches for ``on_batch``.
        """
        rows = batch_rows(inputs)
        if rows is None:
            raise ServingError("inputs without a common first dimension cannot be batched; run them alone")
        if rows > self.params.max_batch_size:
            raise invalid_argument(
                f"Task size {rows} is larger than maximum batch size {self.params.max_batch_size}; "
                "split the request or raise max_batch_size in the batching parameters file"
            )
        if self._stopped:
            raise ServingRequestError("UNAVAILABLE", "the server is shutting down")
        if self._queued_rows + rows > self.params.max_batch_size * self.params.max_enqueued_batches:
            raise ServingRequestError(
                "UNAVAILABLE",
                f"The batch scheduling queue is full ({self._queued_rows} rows waiting); retry later",
            )
        task = _Task(inputs, rows, asyncio.get_running_loop().create_future())
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue(run, name)
        queue.tasks.append(task)
        queue.rows += rows
        self._queued_rows += rows
        self._schedule()
        return await task.future

    async def stop(self) -> None:
        """Run what is queued, wait for running batches, then end the batch threads."""
        self._stopped = True
        self._schedule()
        if self._running or self._queues:
            self._idle = asyncio.Event()
            await self._idle.wait()
        self._threads.shutdown(wait=True)

    def _schedule(self) -> None:
        """Start every batch that is due while a thread is free; otherwise wake up when one is due."""
        timeout = self.params.batch_timeout_micros / 1e6
        while self._queues and self._running < self.params.num_batch_threads:
            key, queue = min(self._queues.items(), key=lambda item: item[1].tasks[0].enqueued)
            due = queue.tasks[0].enqueued + timeout
            if queue.rows < self.params.max_batch_size and due > time.monotonic() and not self._stopped:
                full = [k for k, q in self._queues.items() if q.rows >= self.params.max_batch_size]
                if not full:
                    self._wake_at(due)
                    return
                key, queue = full[0], self._queues[full[0]]
            self._start(key, queue)
        self._wake_at(None)
        if self._idle is not None and not self._running and not self._queues:
            self._idle.set()

    def _wake_at(self, due: float | None) -> None:
        """Have :meth:`_schedule` run at ``due`` (loop time is ``time.monotonic``), or not at all.

        Most requests join a queue whose oldest request, and so the wake-up time, is unchanged: the
        armed timer then stays, instead of a cancel and a new timer per request.
        """
        if self._timer is not None:
            if self._timer.when() == due:
                return
            self._timer.cancel()
            self._timer = None
        if due is not None:
            self._timer = asyncio.get_running_loop().call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None  # fired: a wake-up for the same time must arm a new one
        self._schedule()

    def _start(self, key: Hashable, queue: _Queue) -> None:
        tasks: list[_Task] = []
        rows = 0
        while queue.tasks and rows + queue.tasks[0].rows <= self.params.max_batch_size:
            task = queue.tasks.popleft()
            tasks.append(task)
            rows += task.rows
        queue.rows -= rows
        self._queued_rows -= rows
        if not queue.tasks:
            del self._queues[key]
        if self._on_batch is not None:
            now = time.monotonic()
            self._on_batch(queue.name, rows, [now - task.enqueued for task in tasks])
        self._running += 1
        loop = asyncio.get_running_loop()
        future = self._threads.submit(_execute, queue.run, [(task.inputs, task.rows) for task in tasks])
        future.add_done_callback(lambda done: loop.call_soon_threadsafe(self._finished, tasks, done))

    def _finished(self, tasks: list[_Task], done: Future[list[Tensors]]) -> None:
        self._running -= 1
        error = done.exception()
        for index, task in enumerate(tasks):
            if task.future.done():  # the request was cancelled (its server stopped)
                continue
            if error is not None:
                task.future.set_exception(error)
            else:
                task.future.set_result(done.result()[index])
        self._schedule()


def batch_rows(inputs: Tensors) -> int | None:
    """The common first dimension of all inputs, or None if they have none (they cannot be batched)."""
    sizes = {array.shape[0] if array.ndim else None for array in inputs.values()}
    if len(sizes) != 1:
        return None
    return sizes.pop()


def _execute(run: Callable[[Tensors], Tensors], parts: list[tuple[Tensors, int]]) -> list[Tensors]:
    """On a batch thread: merge the parts' inputs, run once, split the outputs back by rows."""
    if len(parts) == 1:
        merged = parts[0][0]
    else:
        merged = {name: np.concatenate([inputs[name] for inputs, _ in parts]) for name in parts[0][0]}
    outputs = run(merged)
    total = sum(rows for _, rows in parts)
    for name, array in outputs.items():
        if array.ndim == 0 or array.shape[0] != total:
            raise ServingRequestError(
                "INTERNAL",
                f"output {name!r} has shape {list(array.shape)} for a batch of {total} rows; batching "
                "needs every output to have the batch as first dimension (disable batching for this model)",
            )
    results = []
    start = 0
    for _, rows in parts:
        results.append({name: array[start : start + rows] for name, array in outputs.items()})
        start += rows
    return results
