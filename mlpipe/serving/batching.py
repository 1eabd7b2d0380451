"""Request batching: concurrent requests for one signature become one model call.

A model call has a fixed cost (dispatch, thread hand-offs) that dwarfs the per-row cost of small
inputs, so under concurrency merging requests along their first dimension multiplies throughput.
The knobs are TF Serving's ``BatchingParameters`` text proto (``--batching_parameters_file``), so
one file configures both the built-in server and ``tensorflow_model_server``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from mlpipe.errors import ServingError
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

    def __init__(self, inputs: Tensors, rows: int):
        self.inputs = inputs
        self.rows = rows
        self.future: Future[Tensors] = Future()
        self.enqueued = time.monotonic()


class _Queue:
    __slots__ = ("run", "tasks", "rows")

    def __init__(self, run: Callable[[Tensors], Tensors]):
        self.run = run
        self.tasks: deque[_Task] = deque()
        self.rows = 0


class Batcher:
    """Queues requests per batching key and runs merged batches on ``num_batch_threads`` threads.

    Requests share a batch only if their key is equal: callers key on the loaded model version, the
    signature and each input's dtype and trailing shape, so merged inputs always concatenate.
    """

    def __init__(self, params: BatchingParameters):
        self.params = params
        self._cond = threading.Condition()
        self._queues: dict[Hashable, _Queue] = {}
        self._queued_rows = 0
        self._stopped = False
        self._threads = [
            threading.Thread(target=self._work, name=f"mlpipe-batch-{i}", daemon=True)
            for i in range(params.num_batch_threads)
        ]
        for thread in self._threads:
            thread.start()

    def run(self, key: Hashable, run: Callable[[Tensors], Tensors], inputs: Tensors) -> Tensors:
        """``run(inputs)``, possibly merged with concurrent calls of the same key; blocks for the result.

        Inputs without a common first dimension cannot be merged and run alone, unbatched.
        """
        rows = _batch_rows(inputs)
        if rows is None:
            return run(inputs)
        if rows > self.params.max_batch_size:
            raise invalid_argument(
                f"Task size {rows} is larger than maximum batch size {self.params.max_batch_size}; "
                "split the request or raise max_batch_size in the batching parameters file"
            )
        task = _Task(inputs, rows)
        limit = self.params.max_batch_size * self.params.max_enqueued_batches
        with self._cond:
            if self._stopped:
                raise ServingRequestError("UNAVAILABLE", "the server is shutting down")
            if self._queued_rows + rows > limit:
                raise ServingRequestError(
                    "UNAVAILABLE",
                    f"The batch scheduling queue is full ({self._queued_rows} rows waiting); retry later",
                )
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _Queue(run)
            queue.tasks.append(task)
            queue.rows += rows
            self._queued_rows += rows
            # Wake the batch threads only when there is something new for them to decide: a batch to
            # start timing, or a full one. Waking them for every request costs GIL hand-offs.
            if len(queue.tasks) == 1 or queue.rows >= self.params.max_batch_size:
                self._cond.notify_all()
        return task.future.result()

    def stop(self) -> None:
        """Run what is queued, then end the batch threads."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join()

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            _execute(*batch)

    def _next_batch(self) -> tuple[Callable[[Tensors], Tensors], list[_Task]] | None:
        """The next batch to run, waiting until one is full or timed out; None once stopped and empty."""
        timeout = self.params.batch_timeout_micros / 1e6
        while True:
            if not self._queues:
                if self._stopped:
                    return None
                self._cond.wait()
                continue
            key, queue = min(self._queues.items(), key=lambda item: item[1].tasks[0].enqueued)
            wait = queue.tasks[0].enqueued + timeout - time.monotonic()
            if queue.rows < self.params.max_batch_size and wait > 0 and not self._stopped:
                self._cond.wait(wait)
                continue
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
            return queue.run, tasks


def _batch_rows(inputs: Tensors) -> int | None:
    """The common first dimension of all inputs, or None if they have none."""
    sizes = {array.shape[0] if array.ndim else None for array in inputs.values()}
    if len(sizes) != 1:
        return None
    return sizes.pop()


def _execute(run: Callable[[Tensors], Tensors], tasks: list[_Task]) -> None:
    if len(tasks) == 1:
        merged = tasks[0].inputs
    else:
        merged = {name: np.concatenate([task.inputs[name] for task in tasks]) for name in tasks[0].inputs}
    try:
        outputs = run(merged)
        total = sum(task.rows for task in tasks)
        for name, array in outputs.items():
            if array.ndim == 0 or array.shape[0] != total:
                raise ServingRequestError(
                    "INTERNAL",
                    f"output {name!r} has shape {list(array.shape)} for a batch of {total} rows; batching "
                    "needs every output to have the batch as first dimension (disable batching for this model)",
                )
    except BaseException as error:  # every waiting request must learn of the failure
        for task in tasks:
            task.future.set_exception(error)
        return
    start = 0
    for task in tasks:
        end = start + task.rows
        task.future.set_result({name: array[start:end] for name, array in outputs.items()})
        start = end
