"""PipelineIR: a compiled pipeline as plain JSON.

Every runner consumes the IR, so a pipeline behaves the same on all of them, and a remote task
needs only the IR file and mlpipe installed to run one node.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from mlpipe.errors import DefinitionError

log = logging.getLogger("mlpipe.ir")

# Version 2 adds node conditions. An IR is written as version 2 only when a node has conditions,
# which an older mlpipe would ignore (so it must refuse the file); others stay version 1 and run on
# Airflow workers or Kubeflow images that still have an older mlpipe.
IR_VERSION, CONDITIONS_VERSION = 1, 2
READABLE_VERSIONS = (IR_VERSION, CONDITIONS_VERSION)


@dataclass(frozen=True)
class InputIR:
    """Input wired to output ``key`` of node ``producer``."""

    producer: str
    key: str
    type: str


@dataclass(frozen=True)
class NodeIR:
    id: str
    component: str  # "module:QualName" of the Component class
    source_file: str | None  # file defining the component, for processes that cannot import it by name
    parameters: dict[str, Any]
    inputs: dict[str, InputIR]
    outputs: dict[str, str]  # key -> artifact type reference
    upstream: tuple[str, ...]
    # predicates (mlpipe.dsl.condition's JSON form) that must all hold for the node to run
    conditions: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class PipelineIR:
    name: str
    root: str
    metadata: dict[str, Any]
    enable_cache: bool
    nodes: tuple[NodeIR, ...]  # in a topological order
    beam_pipeline_args: tuple[str, ...] = ()
    sys_path: tuple[str, ...] = field(default=())  # directories user code was imported from

    @property
    def version(self) -> int:
        """The IR format version this pipeline needs (see CONDITIONS_VERSION)."""
        return CONDITIONS_VERSION if any(n.conditions for n in self.nodes) else IR_VERSION

    def node(self, node_id: str) -> NodeIR:
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise DefinitionError(
            f"pipeline '{self.name}' has no node '{node_id}'; nodes: {', '.join(n.id for n in self.nodes)}"
        )

    def downstream_closure(self, node_ids: set[str]) -> set[str]:
        """``node_ids`` and every node that depends on them, directly or not."""
        closure = set(node_ids)
        for n in self.nodes:  # topological order: one pass suffices
            if closure.intersection(n.upstream):
                closure.add(n.id)
        return closure

    def to_dict(self) -> dict[str, Any]:
        """Plain data (a deep copy) with the format version: what ``from_dict`` reads."""
        return {**asdict(self), "version": self.version}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def without_secrets(self) -> PipelineIR:
        """This IR without the MySQL password.

        A compiled IR is read by more people than run it — a versioned dags folder, the Kubeflow
        UI, a shared disk — so the password never goes into one. A process that runs a node from it
        takes the password from ``MLPIPE_MYSQL_PASSWORD`` (:func:`mlpipe.metadata.config.from_environment`).
        """
        if not self.metadata.get("password"):
            return self
        log.warning(
            "pipeline '%s': the MySQL password is left out of the compiled pipeline; give the processes "
            "that run its nodes MLPIPE_MYSQL_PASSWORD (docs/airflow.md, docs/kubeflow.md)",
            self.name,
        )
        return replace(self, metadata={k: v for k, v in self.metadata.items() if k != "password"})

    def save(self, path: str | os.PathLike[str]) -> None:
        """Writes the IR file, atomically and :meth:`without_secrets`."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(self.without_secrets().to_json())
        os.replace(tmp, path)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> PipelineIR:
        if data.get("version") not in READABLE_VERSIONS:
            raise DefinitionError(
                f"IR version {data.get('version')!r} is not one this mlpipe reads ({READABLE_VERSIONS}); "
                f"recompile the pipeline with this mlpipe"
            )
        nodes = tuple(
            NodeIR(
                id=n["id"],
                component=n["component"],
                source_file=n.get("source_file"),
                parameters=n["parameters"],
                inputs={k: InputIR(**v) for k, v in n["inputs"].items()},
                outputs=dict(n["outputs"]),
                upstream=tuple(n["upstream"]),
                conditions=tuple(n.get("conditions", ())),
            )
            for n in data["nodes"]
        )
        return PipelineIR(
            name=data["name"],
            root=data["root"],
            metadata=data["metadata"],
            enable_cache=data["enable_cache"],
            nodes=nodes,
            beam_pipeline_args=tuple(data.get("beam_pipeline_args", ())),
            sys_path=tuple(data.get("sys_path", ())),
        )

    @staticmethod
    def load(path: str | os.PathLike[str]) -> PipelineIR:
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError as e:
            raise DefinitionError(f"no pipeline IR at {path}; create one with 'mlpipe compile'") from e
        except json.JSONDecodeError as e:
            raise DefinitionError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
        return PipelineIR.from_dict(data)
