"""InteractiveContext: run a pipeline one component at a time, in a notebook.

    ctx = InteractiveContext()
    example_gen = CsvExampleGen(input_base="data/")
    ctx.run(example_gen)
    ctx.show(example_gen.outputs["examples"])
    ctx.ui()   # a link to this run in the web dashboard (`mlpipe ui`), started here if none runs

Every ``run`` goes through the same launcher as the runners, so executions land in ML Metadata
and are cached: re-running an unchanged cell is instant, while an edited module file, parameter
or re-defined component function executes again. All runs of one context share one run id.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from mlpipe.dsl.component import Component
from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import DefinitionError, MlpipeError
from mlpipe.ir import PipelineIR
from mlpipe.metadata.config import MetadataConfig, default_for_root
from mlpipe.orchestration.launcher import NodeResult, launch_node
from mlpipe.orchestration.local import new_run_id
from mlpipe.types.artifact import Artifact
from mlpipe.types.channel import Channel


class InteractiveContext:
    def __init__(
        self,
        pipeline_name: str = "interactive",
        pipeline_root: str | None = None,
        metadata: MetadataConfig | None = None,
        enable_cache: bool = True,
    ):
        self.pipeline_name = pipeline_name
        self.pipeline_root = os.path.abspath(pipeline_root or tempfile.mkdtemp(prefix="mlpipe-interactive-"))
        self.metadata = metadata or default_for_root(self.pipeline_root)
        self.enable_cache = enable_cache
        self.run_id = f"interactive-{new_run_id()}"
        self.components: dict[str, Component] = {}
        self.results: dict[str, NodeResult] = {}
        self._store: Any = None
        self._dashboard: Any = None  # a dashboard started by ui(), kept alive with the context

    @property
    def store(self) -> Any:
        if self._store is None:
            from mlpipe.metadata.store import MetadataStore

            self._store = MetadataStore(self.metadata)
        return self._store

    def run(self, component: Component, enable_cache: bool | None = None) -> NodeResult:
        """Execute one component now (or take it from the cache); its upstream must have run here."""
        for up in _upstream_closure(component):
            if up is not component and self.components.get(up.id) is not up:
                raise DefinitionError(
                    f"run '{up.id}' in this context before '{component.id}' (it consumes its outputs): ctx.run({up.id})"
                )
        pipeline = self._pipeline([*_upstream_closure(component)])
        use_cache = self.enable_cache if enable_cache is None else enable_cache
        result = launch_node(
            pipeline.compile(), component.id, self.run_id, self.store, type(component), use_cache
        )
        self.components[component.id] = component
        self.results[component.id] = result
        return result

    def pipeline(self) -> Pipeline:
        """Everything run in this context so far, as a Pipeline for a runner."""
        return self._pipeline(list(self.components.values()))

    def export_to_pipeline(self, path: str) -> PipelineIR:
        """Write the compiled pipeline of everything run so far; any runner can run the IR file."""
        ir = self.pipeline().compile()
        ir.save(path)
        return ir

    def show(self, item: Any) -> Any:
        """Rich, offline HTML for an artifact, a channel, a component's outputs, or the pipeline DAG."""
        from mlpipe.visualize import dag_html, render_html

        if isinstance(item, (Pipeline, PipelineIR)) or item is self:
            ir = (
                item
                if isinstance(item, PipelineIR)
                else (item if isinstance(item, Pipeline) else self.pipeline()).compile()
            )
            states = {node_id: r.state for node_id, r in self.results.items()}
            html = dag_html(ir, states)
        else:
            html = "\n".join(
                render_html(a) + self._ui_link(f"/artifacts/{a.id}") for a in self._artifacts_of(item)
            )
        try:
            from IPython.display import HTML
        except ImportError:
            return html
        return HTML(html)

    def ui(self, port: int = 0) -> Any:
        """A link to this context's run in the web dashboard, starting one in this process if none runs
        over this store (``mlpipe ui`` started elsewhere is found through its discovery file)."""
        from mlpipe.ui.discovery import dashboard_url

        if dashboard_url(self.metadata) is None:
            from mlpipe.ui.server import start

            self._dashboard = start(self.metadata, port=port, background=True)
        html = self._ui_link(f"/runs/{self.run_id}")
        try:
            from IPython.display import HTML
        except ImportError:
            return html
        return HTML(html)

    def _ui_link(self, path: str) -> str:
        """An "open in mlpipe ui" link when a dashboard serves this store, else nothing."""
        from html import escape

        from mlpipe.ui.discovery import dashboard_url

        base = dashboard_url(self.metadata)
        if base is None:
            return ""
        return f'<p><a href="{escape(base + path)}" target="_blank" rel="noopener">open in mlpipe ui</a></p>'

    def _artifacts_of(self, item: Any) -> list[Artifact]:
        if isinstance(item, Artifact):
            return [item]
        if isinstance(item, Channel):
            result = self.results.get(item.producer_id)
            if result is None:
                raise MlpipeError(
                    f"'{item.producer_id}' has not run in this context: ctx.run({item.producer_id}) first"
                )
            return result.outputs.get(item.key, [])
        if isinstance(item, Component):
            return [a for ch in item.outputs.values() for a in self._artifacts_of(ch)]
        raise MlpipeError(
            f"ctx.show() takes an artifact, a channel, a component or a pipeline, not {type(item).__name__}"
        )

    def _pipeline(self, components: list[Component]) -> Pipeline:
        return Pipeline(self.pipeline_name, self.pipeline_root, components, self.metadata, self.enable_cache)


def _upstream_closure(component: Component) -> list[Component]:
    """The component and everything it depends on, directly or not."""
    seen: dict[int, Component] = {}
    stack = [component]
    while stack:
        c = stack.pop()
        if id(c) not in seen:
            seen[id(c)] = c
            stack.extend(c.upstream_nodes)
    return list(seen.values())
