"""Progress lines while Keras trains inside a Trainer or Tuner: one per window of steps, one per epoch.

TFX's module contract gives ``run_fn(fn_args)`` no way to receive callbacks, and ``verbose=2``
prints one line per epoch — for the usual one-epoch ``train_steps`` training, nothing until the
end. So while a Trainer or Tuner runs user code, every ``Model.fit`` called *from that node's
thread* gets a :class:`StepWindowLogger` appended to its callbacks; other threads (another node
training in parallel) are untouched. The hook on tf-keras's ``Model.fit`` is the patch
``keras_fit_callbacks`` of :mod:`mlpipe.library_patches` (in effect during a run only).

Imports tf-keras (TensorFlow): import this module only from executors.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

import tf_keras

from mlpipe import library_patches

WINDOWS_PER_EPOCH = 10


@contextlib.contextmanager
def log_training_progress(log: logging.Logger) -> Iterator[None]:
    """Within the block, ``fit`` calls from this thread log progress to ``log``."""
    with library_patches.fit_callbacks(lambda: StepWindowLogger(log)):
        yield


class StepWindowLogger(tf_keras.callbacks.Callback):
    """Logs ``step 300/1000 (30%): loss 0.4123, binary_accuracy 0.8012 | 142 steps/s, ~5s left``
    every tenth of an epoch (every 100 steps when the epoch length is unknown), and each epoch's
    training and validation metrics when it ends."""

    def __init__(self, log: logging.Logger, unknown_epoch_window: int = 100):
        super().__init__()
        # Take the logs as tensors: a callback wanting numbers would make Keras copy every batch's
        # metrics out of the graph (a sync per step); they are read only when a line is logged.
        self._supports_tf_logs = True
        self.log = log
        self.unknown_epoch_window = unknown_epoch_window

    def on_train_begin(self, logs: dict[str, float] | None = None) -> None:
        self.total = self.params.get("steps")
        self.epochs = self.params.get("epochs", 1)
        self.window = max(1, self.total // WINDOWS_PER_EPOCH) if self.total else self.unknown_epoch_window

    def on_epoch_begin(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        self.epoch = epoch
        self.epoch_started = self.window_started = time.perf_counter()
        self.window_steps = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, float] | None = None) -> None:
        self.window_steps += 1
        step = batch + 1
        if step % self.window and step != self.total:
            return
        now = time.perf_counter()
        rate = self.window_steps / max(now - self.window_started, 1e-9)
        where = f"step {step}/{self.total} ({step / self.total:.0%})" if self.total else f"step {step}"
        left = f", ~{(self.total - step) / rate:.0f}s left" if self.total else ""
        self.log.info("%s%s: %s | %.0f steps/s%s", self._epoch_prefix(), where, _metrics(logs), rate, left)
        self.window_started, self.window_steps = now, 0

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        seconds = time.perf_counter() - self.epoch_started
        self.log.info("%sepoch done in %.1fs: %s", self._epoch_prefix(), seconds, _metrics(logs))

    def _epoch_prefix(self) -> str:
        return f"epoch {self.epoch + 1}/{self.epochs} " if self.epochs > 1 else ""


def _metrics(logs: dict[str, Any] | None) -> str:
    return ", ".join(f"{name} {float(value):.4f}" for name, value in sorted((logs or {}).items())) or "-"
