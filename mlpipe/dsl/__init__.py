"""The definition layer: components, specs and pipelines. Knows nothing of how nodes run."""

from mlpipe.dsl.annotations import FunctionPath, InputArtifact, ModuleFile, OutputArtifact, Parameter
from mlpipe.dsl.component import Component, FunctionComponent, component
from mlpipe.dsl.condition import Cond
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.pipeline import Pipeline
from mlpipe.dsl.resolver import Resolver
from mlpipe.dsl.spec import ComponentSpec, InputSpec, ParameterSpec

__all__ = [
    "Component", "ComponentSpec", "Cond", "ExecutionContext",
    "FunctionPath", "FunctionComponent", "InputArtifact", "InputSpec",
    "ModuleFile", "OutputArtifact", "Parameter", "ParameterSpec", "Pipeline",
    "Resolver", "component",
]  # fmt: skip
