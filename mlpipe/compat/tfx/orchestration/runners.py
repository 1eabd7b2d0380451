"""TFX's runner classes on mlpipe's runners.

Inside ``mlpipe run``/``mlpipe compile`` (the loader runs a TFX file's ``__main__`` block), every
runner hands its pipeline to the loader instead of running it; ``mlpipe`` then runs or compiles it.
In a plain script (``python pipeline.py`` with the opt-in import) they run as named.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from typing import Any

from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature
from mlpipe.dsl.loader import hand_over
from mlpipe.dsl.pipeline import Pipeline


class LocalDagRunner:
    """``tfx.orchestration.LocalDagRunner().run(pipeline)``: mlpipe's LocalDagRunner."""

    def run(self, pipeline: Pipeline, run_options: Any = None) -> Any:
        if run_options is not None:
            raise UnsupportedTfxFeature(
                "tfx.orchestration.LocalDagRunner().run(run_options=...)",
                "use `mlpipe run FILE --from NODE` / `--only NODE`",
            )
        if hand_over(pipeline):
            return None
        from mlpipe.orchestration.local import LocalDagRunner as Runner

        return Runner().run(pipeline)


class BeamDagRunner:
    """``tfx.orchestration.beam.beam_dag_runner.BeamDagRunner``: mlpipe's BeamDagRunner."""

    def __init__(self, beam_orchestrator_args: Sequence[str] | None = None, config: Any = None):
        if config is not None:
            raise UnsupportedTfxFeature("BeamDagRunner(config=...)", "pass beam_orchestrator_args only")
        self.beam_orchestrator_args = list(beam_orchestrator_args or [])

    def run(self, pipeline: Pipeline) -> Any:
        if hand_over(pipeline):
            return None
        from mlpipe.orchestration.beam import BeamDagRunner as Runner

        return Runner(self.beam_orchestrator_args).run(pipeline)


class AirflowPipelineConfig:
    """``airflow_dag_config``: ``schedule_interval``/``schedule``, ``start_date``, ``catchup``, ``retries``."""

    def __init__(self, airflow_dag_config: dict[str, Any] | None = None, **kwargs: Any):
        self.airflow_dag_config = dict(airflow_dag_config or {}, **kwargs)


class AirflowDagRunner:
    """TFX's Airflow runner returns a DAG object from the pipeline file itself, which needs TFX in
    Airflow's interpreter. mlpipe writes a DAG file instead: ``mlpipe compile --target airflow
    FILE -o DAGS/x.py`` (this class hands the pipeline over to it), or :meth:`compile` here."""

    def __init__(self, config: AirflowPipelineConfig | dict[str, Any] | None = None):
        if isinstance(config, AirflowPipelineConfig):
            config = config.airflow_dag_config
        self.dag_config = dict(config or {})

    def run(self, pipeline: Pipeline) -> Any:
        if hand_over(pipeline):
            return None
        raise UnsupportedTfxFeature(
            "tfx.orchestration.airflow.airflow_dag_runner.AirflowDagRunner().run(...) as a DAG object",
            "write a DAG file with `mlpipe compile --target airflow FILE -o DAGS_FOLDER/NAME.py`",
        )

    def compile(self, pipeline: Pipeline, dag_file: str) -> str:
        from mlpipe.orchestration.airflow import AirflowDagRunner as Runner

        c = self.dag_config
        return Runner(
            schedule=c.get("schedule", c.get("schedule_interval")),
            start_date=c.get("start_date"),
            catchup=bool(c.get("catchup", False)),
            retries=int(c.get("retries", 0)),
        ).compile(pipeline, dag_file)


class KubeflowV2DagRunnerConfig:
    def __init__(self, default_image: str | None = None, display_name: str | None = None, **kwargs: Any):
        if kwargs:
            raise UnsupportedTfxFeature(
                f"KubeflowV2DagRunnerConfig({', '.join(sorted(kwargs))}=...)", "drop it"
            )
        self.default_image = default_image or "mlpipe:latest"
        self.display_name = display_name


class KubeflowV2DagRunner:
    """Writes a KFP v2 pipeline spec whose tasks run mlpipe nodes in ``config.default_image``.

    TFX writes ``<output_dir>/<output_filename>`` (default ``pipeline.json``); so does this, as JSON
    for a ``.json`` name and YAML otherwise.
    """

    def __init__(self, config: KubeflowV2DagRunnerConfig | None = None, output_dir: str | None = None,
                 output_filename: str | None = None):  # fmt: skip
        self.config = config or KubeflowV2DagRunnerConfig()
        self.output_dir = output_dir or os.getcwd()
        self.output_filename = output_filename or "pipeline.json"

    def run(self, pipeline: Pipeline, parameter_values: Any = None, write_out: bool = True) -> Any:
        if parameter_values:
            raise UnsupportedTfxFeature("KubeflowV2DagRunner.run(parameter_values=...)", "runtime parameters")
        if hand_over(pipeline):
            return None
        import yaml

        from mlpipe.orchestration.kubeflow import KubeflowDagRunner

        runner = KubeflowDagRunner(image=self.config.default_image)
        with tempfile.TemporaryDirectory() as tmp:
            spec_yaml = runner.compile(pipeline, os.path.join(tmp, "pipeline.yaml"))
            with open(spec_yaml) as f:
                text = f.read()
        spec = yaml.safe_load(text)
        if write_out:
            path = os.path.join(self.output_dir, self.output_filename)
            os.makedirs(self.output_dir, exist_ok=True)
            with open(path, "w") as f:
                f.write(json.dumps(spec, indent=2) if path.endswith(".json") else text)
        return spec
