"""What each page shows: a function per route turning request arguments into template data.

Kept apart from ``app`` (HTTP) so a page's content can be read top to bottom without the plumbing.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from werkzeug.wrappers import Request, Response

from mlpipe.errors import MetadataError
from mlpipe.ir import PipelineIR
from mlpipe.metadata.queries import ExecutionInfo, get_artifact
from mlpipe.metadata.queries import lineage as artifact_lineage
from mlpipe.metadata.store import MetadataStore
from mlpipe.types.artifact import Artifact
from mlpipe.ui import reads
from mlpipe.ui.reads import NotFound

COMPARABLE = ("ExampleStatistics", "Schema", "ExampleAnomalies", "ModelEvaluation")
LOG_BYTES = 200_000  # a log page shows at most its last 200 kB
SUMMARY_FILE = "summary.txt"  # the Evaluator's table of metrics by slice, thresholds and results


@dataclass(frozen=True)
class PageContext:
    store: MetadataStore
    pipeline_ir: PipelineIR | None
    pipeline_file: str | None
    serving_url: str | None


Page = tuple[str, dict[str, Any]]


def _now_ms() -> int:
    return int(time.time() * 1000)


def runs(ctx: PageContext, request: Request) -> Page:
    pipeline = request.args.get("pipeline") or None
    state = request.args.get("state") or None
    if state is not None and state not in reads.RUN_STATES:
        raise NotFound(f"unknown run state {state!r}; one of {', '.join(reads.RUN_STATES)}")
    before = request.args.get("before", type=int)
    page = reads.runs_page(ctx.store, pipeline, state, before)
    data = {
        "page": page,
        "pipelines": reads.pipelines(ctx.store),
        "pipeline": pipeline,
        "state": state,
        "states": reads.RUN_STATES,
        "first_page": before is None,
        "live": before is None and any(r.may_change(_now_ms()) for r in page.rows),
    }
    return ("runs_live.html" if request.args.get("fragment") == "1" else "runs.html"), data


def run(ctx: PageContext, request: Request, run_id: str) -> Page:
    from mlpipe.visualize import dag_svg

    detail = reads.run_detail(ctx.store, run_id, ctx.pipeline_ir)
    states = {e.node_id: e.state for e in detail.executions}
    not_started = [n.id for n in detail.dag.nodes if n.id not in states]
    durations = {e.id: (e.updated_ms - e.created_ms) / 1000 for e in detail.executions}
    data = {
        "detail": detail,
        "row": detail.row,
        "dag": Markup(_with_tooltips(dag_svg(detail.dag, states), detail.executions)),
        "not_started": not_started,
        "durations": durations,
        "rerun": f"mlpipe run {ctx.pipeline_file or 'PIPELINE_FILE.py'}",
        "live": _run_may_change(detail, bool(not_started)),
    }
    return ("run_live.html" if request.args.get("fragment") == "1" else "run.html"), data


_NODE_TITLE = re.compile(r'(<g class="node" data-node="([^"]*)"><title>)([^<]*)(</title>)')


def _with_tooltips(svg: str, executions: list[ExecutionInfo]) -> str:
    """Each DAG box's tooltip gains its node's duration and why (the picture itself shows the state)."""
    extra = {
        e.node_id: f"\n{(e.updated_ms - e.created_ms) / 1000:.1f} s" + (f"\nwhy: {e.why}" if e.why else "")
        for e in executions
    }

    def add(m: re.Match[str]) -> str:
        node = html.unescape(m.group(2))
        return m.group(1) + m.group(3) + html.escape(extra.get(node, ""), quote=False) + m.group(4)

    return _NODE_TITLE.sub(add, svg)


def _run_may_change(detail: reads.RunDetail, nodes_to_start: bool) -> bool:
    """Whether the run page should keep refreshing. Between two nodes nothing is RUNNING, so a
    recent change counts as running too, unless the pipeline file says every node has run."""
    row = detail.row
    if not detail.executions or row.state == "RUNNING":
        return True
    waiting = nodes_to_start if detail.planned else True
    return waiting and row.state != "FAILED" and row.may_change(_now_ms())


def execution(ctx: PageContext, request: Request, execution_id: int) -> Page:
    run_id, info, parameters = reads.execution_detail(ctx.store, execution_id)
    data = {
        "run_id": run_id,
        "e": info,
        "parameters": parameters,
        "inputs": ctx.store.input_artifacts(execution_id),
        "duration": (info.updated_ms - info.created_ms) / 1000,
        "has_log": bool(info.log_path and os.path.isfile(info.log_path)),
        "rerun": f"mlpipe run {ctx.pipeline_file or 'PIPELINE_FILE.py'} --only {info.node_id}",
    }
    return "execution.html", data


def log_response(ctx: PageContext, execution_id: int) -> Response:
    """The log file MLMD recorded for the execution (never a path from the request), as plain text."""
    _, info, _ = reads.execution_detail(ctx.store, execution_id)
    if not info.log_path or not os.path.isfile(info.log_path):
        raise NotFound(f"execution {execution_id} has no log file")
    with open(info.log_path, "rb") as f:
        f.seek(max(0, os.path.getsize(info.log_path) - LOG_BYTES))
        text = f.read().decode("utf-8", "replace")
    return Response(text, mimetype="text/plain")


def artifacts(ctx: PageContext, request: Request) -> Page:
    type_name = request.args.get("type") or None
    page = reads.artifacts_page(ctx.store, type_name, request.args.get("before", type=int))
    return "artifacts.html", {"page": page, "type": type_name, "first_page": "before" not in request.args}


def _artifact(ctx: PageContext, artifact_id: int) -> Artifact:
    try:
        return get_artifact(ctx.store, artifact_id)
    except MetadataError as e:
        raise NotFound(str(e)) from e


def artifact(ctx: PageContext, request: Request, artifact_id: int) -> Page:
    a = _artifact(ctx, artifact_id)
    lin = artifact_lineage(ctx.store, artifact_id)
    peers = []
    if a.type_name in COMPARABLE:
        kinds = [a.type_name] + [t for t in COMPARABLE if t != a.type_name]  # same type first
        peers = [
            p for t in kinds for p in reads.artifacts_page(ctx.store, t, size=10).artifacts if p.id != a.id
        ]
    data = {
        "a": a,
        "lineage": lin,
        "view": Markup(_view_html(a)),
        "evaluation": _evaluation_rows(a),
        "peers": peers,
    }
    return "artifact.html", data


def _view_html(a: Artifact) -> str:
    from mlpipe.visualize.html import render_html

    return render_html(a)


def _evaluation_rows(a: Artifact) -> list[dict[str, str]] | None:
    """The Evaluator's summary table (metric, slice, value, threshold, result) as rows, if it is one."""
    path = os.path.join(a.uri, SUMMARY_FILE)
    if a.type_name != "ModelEvaluation" or not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines:
        return []
    header = lines[0].split()
    starts = [lines[0].index(h) for h in header]
    rows = []
    for line in lines[1:]:
        cells = [line[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(header, cells, strict=True)))
    return rows


def compare(ctx: PageContext, request: Request) -> Page:
    ids = [request.args.get(k, type=int) for k in ("a", "b")]
    if None in ids:
        raise NotFound("compare needs two artifact ids: /compare?a=ID&b=ID")
    pair = [_artifact(ctx, i) for i in ids if i is not None]
    return "compare.html", {"pair": [(a, Markup(_view_html(a))) for a in pair]}


def lineage(ctx: PageContext, request: Request, artifact_id: int) -> Page:
    from mlpipe.visualize import dag_svg

    _artifact(ctx, artifact_id)
    lin = artifact_lineage(ctx.store, artifact_id)
    graph = reads.lineage_graph(ctx.store, artifact_id)
    data = {
        "lin": lin,
        "producers": graph.producers,
        "graph": Markup(dag_svg(graph.dag())),
        "sources": graph.sources,
    }
    return "lineage.html", data


def approvals(ctx: PageContext, request: Request) -> Page:
    """Requests Approval nodes wait on now; the form posts to ``/approvals/decide`` (see app)."""
    from mlpipe.orchestration.approvals import pending_approvals

    return "approvals.html", {"pending": pending_approvals(ctx.store), "done": request.args.get("done")}


def models(ctx: PageContext, request: Request) -> Page:
    by_dir = reads.pushed_models(ctx.store)
    serving = {d: _serving_versions(ctx.serving_url, os.path.basename(d)) for d in by_dir}
    metrics = {
        v.pushed.id: _overall(v.evaluation) for versions in by_dir.values() for v in versions if v.evaluation
    }
    names = sorted({m for row in metrics.values() for m in row})
    return "models.html", {"by_dir": by_dir, "serving": serving, "metrics": metrics, "metric_names": names}


def _overall(evaluation: Artifact) -> dict[str, str]:
    rows = _evaluation_rows(evaluation) or []
    return {r["metric"]: r["value"] for r in rows if r.get("slice") == "Overall"}


def _serving_versions(serving_url: str | None, model: str) -> set[str] | None:
    """Versions AVAILABLE on a TF-Serving-compatible REST endpoint, or None when not asked / not reachable."""
    if not serving_url:
        return None
    try:
        with urllib.request.urlopen(f"{serving_url.rstrip('/')}/v1/models/{model}", timeout=1) as r:
            status = json.load(r)
    except (OSError, ValueError):
        return None
    return {s["version"] for s in status.get("model_version_status", []) if s.get("state") == "AVAILABLE"}
