"""``tfx.dsl.components.base.executor_spec``: ``ExecutorClassSpec(GenericExecutor)``, the way
TFX < 1.0 pipelines asked for the Keras (run_fn) Trainer; mlpipe's Trainer and Pusher accept
exactly that and refuse any other executor."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExecutorClassSpec:
    executor_class: type


__all__ = ["ExecutorClassSpec"]
