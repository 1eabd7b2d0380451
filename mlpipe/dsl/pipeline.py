"""The Pipeline: a validated set of nodes that compiles to a PipelineIR.

Validation is eager: a Pipeline that constructs is one every runner can execute.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Sequence

from mlpipe.dsl.component import Component, FunctionComponent
from mlpipe.dsl.condition import condition_producers
from mlpipe.errors import DefinitionError
from mlpipe.io.uris import is_remote, location
from mlpipe.ir import InputIR, NodeIR, PipelineIR
from mlpipe.metadata.config import MetadataConfig, default_for_root
from mlpipe.types.registry import type_ref

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")


class Pipeline:
    """``Pipeline(name, root, components, metadata=..., enable_cache=True, beam_pipeline_args=[...])``.

    ``root`` is the directory artifacts are written under; ``metadata`` defaults to a SQLite file
    ``metadata.sqlite`` beside it. The node order is a topological order of the DAG.
    """

    def __init__(
        self,
        name: str,
        root: str | os.PathLike[str],
        components: Sequence[Component],
        metadata: MetadataConfig | None = None,
        enable_cache: bool = True,
        beam_pipeline_args: Sequence[str] | None = None,
    ):
        if not isinstance(name, str) or not _NAME.match(name):
            raise DefinitionError(
                f"pipeline name {name!r} is invalid: use 1-63 letters, digits, '_', '-' or '.', "
                f"starting with a letter or digit (e.g. 'taxi_pipeline')"
            )
        self.name = name
        self.root = location(root, f"pipeline '{name}': root")
        if metadata is None and is_remote(self.root):
            raise DefinitionError(
                f"pipeline '{name}': root {self.root!r} is in a bucket, where no SQLite file can live; "
                f"give metadata=mlpipe.metadata.mysql(...) (one store for every worker) or "
                f"mlpipe.metadata.sqlite('/local/path/metadata.sqlite')"
            )
        self.metadata = metadata if metadata is not None else default_for_root(self.root)
        if not isinstance(self.metadata, MetadataConfig):
            raise DefinitionError(
                f"pipeline '{name}': metadata must come from mlpipe.metadata.sqlite(...) or .mysql(...), "
                f"got {type(self.metadata).__name__}"
            )
        self.enable_cache = bool(enable_cache)
        self.beam_pipeline_args = list(beam_pipeline_args or [])
        self.components = _toposort(name, _unique(name, components))

    @property
    def node_ids(self) -> list[str]:
        return [c.id for c in self.components]

    def compile(self) -> PipelineIR:
        nodes = []
        sys_path: list[str] = []
        for c in self.components:
            cls = type(c)
            source_file = _source_file(cls)
            import_root = _import_root(cls.__module__, source_file)
            if import_root and import_root not in sys_path:
                sys_path.append(import_root)
            nodes.append(
                NodeIR(
                    id=c.id,
                    component=f"{cls.__module__}:{cls.__qualname__}",
                    source_file=source_file,
                    parameters=_json_parameters(c),
                    inputs={
                        k: InputIR(producer=ch.producer_id, key=ch.key, type=type_ref(ch.type))
                        for k, ch in c.inputs.items()
                    },
                    outputs={k: type_ref(ch.type) for k, ch in c.outputs.items()},
                    upstream=tuple(u.id for u in c.upstream_nodes),
                    conditions=tuple(p.to_ir() for p in c.conditions),
                )
            )
        return PipelineIR(
            name=self.name,
            root=self.root,
            metadata=self.metadata.to_dict(),
            enable_cache=self.enable_cache,
            nodes=tuple(nodes),
            beam_pipeline_args=tuple(self.beam_pipeline_args),
            sys_path=tuple(sys_path),
        )

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, nodes={self.node_ids})"


def _unique(name: str, components: Sequence[Component]) -> list[Component]:
    if not components:
        raise DefinitionError(f"pipeline '{name}' has no components")
    nodes: list[Component] = []
    by_id: dict[str, Component] = {}
    for c in components:
        if not isinstance(c, Component):
            raise DefinitionError(
                f"pipeline '{name}': {c!r} is not a component instance (did you forget to call it?)"
            )
        if any(c is n for n in nodes):
            continue
        if c.id in by_id:
            raise DefinitionError(
                f"pipeline '{name}': two nodes have the id '{c.id}'; give one of them another id with .with_id('...')"
            )
        by_id[c.id] = c
        nodes.append(c)
    for c in nodes:
        for up in c.upstream_nodes:
            if by_id.get(up.id) is not up:
                how = " (its Cond reads that node's outputs)" if up in condition_producers(c) else ""
                raise DefinitionError(
                    f"pipeline '{name}': node '{c.id}' depends on node '{up.id}'{how}, which is not in the "
                    f"pipeline's components; add it to the components list"
                )
    return nodes


def _toposort(name: str, nodes: list[Component]) -> list[Component]:
    """Kahn's algorithm, keeping the user's order among ready nodes; names the cycle if there is one."""
    indegree = {c.id: len(c.upstream_nodes) for c in nodes}
    downstream: dict[str, list[Component]] = {c.id: [] for c in nodes}
    for c in nodes:
        for up in c.upstream_nodes:
            downstream[up.id].append(c)
    ready = [c for c in nodes if indegree[c.id] == 0]
    order: list[Component] = []
    while ready:
        c = ready.pop(0)
        order.append(c)
        for d in downstream[c.id]:
            indegree[d.id] -= 1
            if indegree[d.id] == 0:
                ready.append(d)
    if len(order) < len(nodes):
        stuck = [c.id for c in nodes if indegree[c.id] > 0]
        raise DefinitionError(
            f"pipeline '{name}' has a cycle among nodes {stuck}; remove an .after() or input that closes the loop"
        )
    return order


def _json_parameters(c: Component) -> dict:
    for key, value in c.parameters.items():
        try:
            json.dumps(value)
        except TypeError as e:
            raise DefinitionError(f"{c.id}: parameter '{key}' is not JSON-serializable ({e})") from e
    return dict(c.parameters)


def _source_file(cls: type) -> str | None:
    target = cls.FUNCTION if issubclass(cls, FunctionComponent) else cls
    try:
        path = inspect.getsourcefile(target)
        return os.path.abspath(path) if path and os.path.isfile(path) else None
    except TypeError:
        return None


def _import_root(module: str, source_file: str | None) -> str | None:
    """The sys.path entry from which ``module`` is importable, given the file it lives in."""
    if not source_file or module == "__main__":
        return os.path.dirname(source_file) if source_file else None
    path = os.path.dirname(source_file)
    depth = module.count(".") + (1 if os.path.basename(source_file) == "__init__.py" else 0)
    for _ in range(depth):
        path = os.path.dirname(path)
    return path
