"""``FnArgs``: what the Trainer and Tuner hand to user code, with TFX's field names.

Module code written for TFX (``run_fn(fn_args)``, ``tuner_fn(fn_args)``) reads these attributes;
keeping the names (and TFX's aliases) lets that code run unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class DataAccessor:
    """Builds the ``tf.data.Dataset`` user code trains on, as TFX's ``fn_args.data_accessor`` does."""

    telemetry_descriptors: tuple[str, ...] = ("mlpipe",)

    def tf_dataset_factory(
        self, file_pattern: list[str] | str, dataset_options: Any, schema: Any = None
    ) -> Any:
        """Batches of parsed gzipped tf.Examples (``(features, label)`` when options name a label_key).

        ``schema`` (a tensorflow_metadata Schema) decides each feature's tensor type; pass the
        Transform graph's ``transformed_metadata.schema`` for transformed examples.
        """
        from tfx_bsl.public import tfxio

        source = tfxio.TFExampleRecord(
            file_pattern, schema=schema, telemetry_descriptors=list(self.telemetry_descriptors)
        )
        return source.TensorFlowDataset(dataset_options)


@dataclass
class FnArgs:
    """Arguments of ``run_fn`` / ``tuner_fn``; unset inputs are None, as in TFX."""

    train_files: list[str] = field(default_factory=list)
    eval_files: list[str] = field(default_factory=list)
    train_steps: int | None = None
    eval_steps: int | None = None
    schema_path: str | None = None
    transform_output: str | None = None
    data_accessor: DataAccessor = field(default_factory=DataAccessor)
    serving_model_dir: str | None = None
    model_run_dir: str | None = None
    working_dir: str | None = None
    base_model: str | None = None
    hyperparameters: dict[str, Any] | None = None
    custom_config: dict[str, Any] = field(default_factory=dict)

    @property
    def schema_file(self) -> str | None:
        """TFX's older name for ``schema_path``."""
        return self.schema_path

    @property
    def transform_graph_path(self) -> str | None:
        """TFX's older name for ``transform_output``."""
        return self.transform_output

    @property
    def model_serve_dir(self) -> str | None:
        """TFX's older name for ``serving_model_dir``."""
        return self.serving_model_dir
