"""``tfx.components``: TFX's standard components on mlpipe, plus what module files import
(``FnArgs``, ``DataAccessor``, ``TunerFnResult``)."""

from typing import Any

from mlpipe.compat.tfx.components._standard import (
    BulkInferrer,
    CsvExampleGen,
    Evaluator,
    ExampleValidator,
    ImportExampleGen,
    ImportSchemaGen,
    InfraValidator,
    Pusher,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
    Tuner,
)  # fmt: skip
from mlpipe.compat.tfx.unsupported import module_getattr
from mlpipe.components.fn_args import DataAccessor, FnArgs
from mlpipe.components.tuner import TunerFnResult

__all__ = [
    "BulkInferrer", "CsvExampleGen", "DataAccessor", "Evaluator", "ExampleValidator", "FnArgs",
    "ImportExampleGen", "ImportSchemaGen", "InfraValidator", "Pusher", "SchemaGen", "StatisticsGen",
    "Trainer", "Transform", "Tuner", "TunerFnResult",
]  # fmt: skip


def __getattr__(name: str) -> Any:
    return module_getattr("tfx.components", name)
