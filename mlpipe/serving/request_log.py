"""Request logging, as TF Serving's ``logging_config``: sampled requests as ``PredictionLog`` files.

A model whose config has ``logging_config`` gets a share (``sampling_rate``) of its predict, classify
and regress requests written, with their responses, as ``tensorflow.serving.PredictionLog`` records
to TFRecord files named ``<filename_prefix>-<UTC time>-<pid>-<n>.tfrecord``. The request path only
draws the sample and puts a tuple of references on a queue; one writer thread builds the protos,
frames the records and writes them. The queue is unbounded, so a burst is never dropped (it costs
memory until the writer catches up) and every sampled request is written.

A file is written under a ``.writing`` suffix and renamed to ``.tfrecord`` when it is complete (it
reached ``max_records_per_file``, is ``max_file_seconds`` old, or the server stops), so a reader
globbing ``<prefix>-*.tfrecord`` never sees half a file. ``log_metadata.model_spec`` names the
version that answered: with canary and stable labels, that is how the log tells them apart.

``PredictionLog`` has no request id. The join key for labels that arrive later is a feature of the
request's own tf.Example (``request_id`` by convention): the model's ``parse_example`` ignores it,
and the log keeps it with the rest of the request (see ``docs/lifecycle.md``).
"""

from __future__ import annotations

import logging
import os
import queue
import random
import struct
import threading
import time
from collections.abc import Sequence
from typing import Any, BinaryIO

import numpy as np

from mlpipe.serving.config import RequestLogging, ServedModel

log = logging.getLogger(__name__)

LOG_SUFFIX = ".tfrecord"
WRITING_SUFFIX = ".writing"
_STOP = object()


class RequestLogger:
    """Samples requests on the request path and writes them on its own thread; ``close`` drains it."""

    def __init__(
        self,
        models: Sequence[ServedModel],
        max_records_per_file: int = 10_000,
        max_file_seconds: float = 60.0,
    ):
        if max_records_per_file < 1 or max_file_seconds <= 0:
            raise ValueError("max_records_per_file must be >= 1 and max_file_seconds > 0")
        self.max_records_per_file = max_records_per_file
        self.max_file_seconds = max_file_seconds
        self._configs: dict[str, RequestLogging] = {}
        self.update(models)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._files: dict[str, _LogFile] = {}
        self.written = 0  # records written (writer thread)
        self.failed = 0  # records that could not be written (the error is logged)
        self._thread = threading.Thread(target=self._write_forever, name="mlpipe-request-log", daemon=True)
        self._thread.start()

    def update(self, models: Sequence[ServedModel]) -> None:
        """Take the logging configs of a new model config (TF Serving updates its logger on reload)."""
        self._configs = {model.name: model.logging for model in models if model.logging is not None}

    def log(
        self, kind: str, model_name: str, version: int, signature_name: str, request: Any, response: Any
    ) -> None:
        """Queue one request if its model logs and the sample draws it; costs one queue put.

        ``kind`` is ``predict`` (request and response: name -> ndarray), ``classify`` (serialized
        examples; rows of (class, score)) or ``regress`` (serialized examples; values).
        """
        config = self._configs.get(model_name)
        if config is None or (config.sampling_rate < 1.0 and random.random() >= config.sampling_rate):
            return
        self._queue.put((config, kind, model_name, version, signature_name, request, response, time.time()))

    def close(self) -> None:
        """Write everything queued, complete the open files and stop the writer thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    def _write_forever(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=min(1.0, self.max_file_seconds))
            except queue.Empty:
                self._complete_old_files()
                continue
            batch = [item]
            while len(batch) < 1024:  # write what has piled up, then flush once
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(entry is _STOP for entry in batch)
            touched: set[_LogFile] = set()
            for entry in batch:
                if entry is not _STOP:
                    touched.add(self._write(entry))
                    time.sleep(0)  # hand the GIL to a waiting request between records, not after the batch
            for log_file in touched:
                if not log_file.handle.closed:  # a file completed mid-batch is flushed already
                    log_file.handle.flush()
            self._complete_old_files()
            if stop:
                for log_file in list(self._files.values()):
                    self._complete(log_file)
                return

    def _write(self, entry: tuple[Any, ...]) -> _LogFile:
        config, kind, name, version, signature_name, request, response, stamp = entry
        log_file = self._files.get(config.filename_prefix)
        if log_file is None:
            log_file = self._files[config.filename_prefix] = _LogFile(config.filename_prefix)
        try:
            record = prediction_log(kind, name, version, signature_name, request, response, stamp, config)
            log_file.handle.write(_frame(record.SerializeToString()))
            log_file.records += 1
            self.written += 1
        except Exception:  # a bad record must not stop the logger for every later request
            self.failed += 1
            log.exception("could not log a %s request of model %r", kind, name)
        if log_file.records >= self.max_records_per_file:
            self._complete(log_file)
        return log_file

    def _complete_old_files(self) -> None:
        now = time.monotonic()
        for log_file in list(self._files.values()):
            if now - log_file.opened >= self.max_file_seconds:
                self._complete(log_file)

    def _complete(self, log_file: _LogFile) -> None:
        del self._files[log_file.prefix]
        log_file.close()


class _LogFile:
    _sequence = 0

    def __init__(self, prefix: str):
        _LogFile._sequence += 1
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        self.prefix = prefix
        self.path = f"{prefix}-{stamp}-{os.getpid()}-{_LogFile._sequence:05d}{LOG_SUFFIX}"
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, exist_ok=True)
        self.handle: BinaryIO = open(self.path + WRITING_SUFFIX, "wb")  # noqa: SIM115 (closed in close())
        self.records = 0
        self.opened = time.monotonic()

    def close(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        if self.records:
            os.replace(self.path + WRITING_SUFFIX, self.path)
        else:
            os.unlink(self.path + WRITING_SUFFIX)


def prediction_log(
    kind: str,
    name: str,
    version: int,
    signature_name: str,
    request: Any,
    response: Any,
    stamp: float,
    config: RequestLogging,
) -> Any:
    """The ``PredictionLog`` of one request, as TF Serving's servers fill it."""
    from tensorflow_serving.apis import prediction_log_pb2

    from mlpipe.serving.tensor_proto import to_tensor_proto

    record = prediction_log_pb2.PredictionLog()
    metadata = record.log_metadata
    metadata.model_spec.name = name
    metadata.model_spec.version.value = version
    metadata.model_spec.signature_name = signature_name
    metadata.sampling_config.sampling_rate = config.sampling_rate
    metadata.saved_model_tags.append("serve")
    metadata.timestamp_secs = int(stamp)
    if kind == "predict":
        log_entry = record.predict_log
        log_entry.request.model_spec.CopyFrom(metadata.model_spec)
        for key, array in request.items():
            log_entry.request.inputs[key].CopyFrom(to_tensor_proto(np.asarray(array)))
        log_entry.response.model_spec.CopyFrom(metadata.model_spec)
        for key, array in response.items():
            log_entry.response.outputs[key].CopyFrom(to_tensor_proto(np.asarray(array)))
    elif kind in ("classify", "regress"):
        log_entry = record.classify_log if kind == "classify" else record.regress_log
        log_entry.request.model_spec.CopyFrom(metadata.model_spec)
        for serialized in request:
            log_entry.request.input.example_list.examples.add().ParseFromString(serialized)
        log_entry.response.model_spec.CopyFrom(metadata.model_spec)
        if kind == "classify":
            for row in response:
                classifications = log_entry.response.result.classifications.add()
                for label, score in row:
                    classifications.classes.add(label=label, score=score)
        else:
            for value in response:
                log_entry.response.result.regressions.add(value=value)
    else:
        raise ValueError(f"unknown request kind {kind!r}")
    return record


def _frame(data: bytes) -> bytes:
    """One TFRecord frame: length, its masked CRC32C, the data, the data's masked CRC32C."""
    import google_crc32c

    length = struct.pack("<Q", len(data))
    return length + _masked(google_crc32c.value(length)) + data + _masked(google_crc32c.value(data))


def _masked(crc: int) -> bytes:
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)
