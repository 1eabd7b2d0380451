"""``tfx.orchestration.airflow.airflow_dag_runner``."""

from mlpipe.compat.tfx.orchestration.runners import AirflowDagRunner, AirflowPipelineConfig

__all__ = ["AirflowDagRunner", "AirflowPipelineConfig"]
