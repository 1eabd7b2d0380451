"""``tfx.orchestration.beam.beam_dag_runner``."""

from mlpipe.compat.tfx.orchestration.runners import BeamDagRunner

__all__ = ["BeamDagRunner"]
