"""The ``mlpipe`` command. Imports only what the chosen subcommand needs, so ``--help`` is instant."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

from mlpipe.errors import DataError, MlpipeError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _show_warnings_only()
    parser = _parser()
    if argv[:1] == ["serve"]:  # its flags (and --help) belong to the serving parser, built on use
        args = argparse.Namespace(handler=_cmd_serve, serve_args=argv[1:])
    else:
        args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except MlpipeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _show_warnings_only() -> None:
    """The terminal gets warnings and errors; INFO records belong in the node logs.

    Without a root handler, the first library that logs through absl (ml-metadata does, on every
    store it opens) calls ``logging.basicConfig()``, whose handler has no level: from then on every
    executor's INFO records reached the terminal as well as the node's log file.
    """
    if not logging.root.handlers:
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.root.addHandler(handler)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlpipe", description="Run and inspect ML pipelines (TFX-style, ML Metadata)."
    )
    sub = p.add_subparsers(title="commands", metavar="COMMAND")

    run = sub.add_parser("run", help="run a pipeline file in this process (local runner)")
    run.add_argument("pipeline_file", help="a .py file defining create_pipeline() or one Pipeline object")
    group = run.add_mutually_exclusive_group()
    group.add_argument(
        "--from",
        dest="from_nodes",
        action="append",
        metavar="NODE",
        help="run NODE and everything downstream",
    )
    group.add_argument(
        "--only", action="append", metavar="NODE", help="run only NODE (inputs from earlier runs)"
    )
    run.add_argument(
        "--no-cache", action="store_true", help="execute every node even if a cached result exists"
    )
    run.add_argument("--max-workers", type=int, default=None, help="nodes run in parallel (default: cores)")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="run nothing: print which nodes would reuse a cached result and which would execute, and why",
    )
    run.set_defaults(handler=_cmd_run)

    node = sub.add_parser("run-node", help="run one node of a compiled pipeline (what remote tasks call)")
    node.set_defaults(handler=_cmd_run_node)
    from mlpipe.orchestration.entrypoint import add_arguments

    add_arguments(node)

    comp = sub.add_parser("compile", help="compile a pipeline file for a runner")
    comp.add_argument("pipeline_file")
    comp.add_argument("-o", "--output", required=True, help="path of the file to write")
    comp.add_argument(
        "--target",
        choices=["ir", "kubeflow", "airflow"],
        default="ir",
        help="ir: mlpipe's JSON IR (default); kubeflow: a KFP v2 pipeline spec (.yaml); airflow: a DAG file (.py)",
    )
    comp.add_argument("--image", default="mlpipe:latest", help="kubeflow: the image every task runs in")
    comp.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="kubeflow: environment variable for every task, e.g. MLPIPE_METADATA=mysql://...",
    )
    comp.add_argument(
        "--secret-env",
        action="append",
        default=[],
        metavar="KEY=SECRET:FIELD",
        help="kubeflow: environment variable from a Kubernetes Secret, e.g. MLPIPE_MYSQL_PASSWORD=mlpipe-mysql:password",
    )
    comp.add_argument(
        "--volume",
        action="append",
        default=[],
        metavar="PVC:PATH",
        help="kubeflow: mount a PersistentVolumeClaim on every task, e.g. pipeline-data:/data",
    )
    comp.add_argument("--schedule", help="airflow: cron expression or preset such as @daily (default: none)")
    comp.add_argument("--start-date", help="airflow: ISO date of the first scheduled run (UTC if no zone)")
    comp.add_argument("--catchup", action="store_true", help="airflow: backfill runs since --start-date")
    comp.add_argument("--end-date", help="airflow: ISO date of the last scheduled run")
    comp.add_argument(
        "--max-active-runs",
        type=int,
        help="airflow: DAG runs at once (1: each run reuses the one before's cache)",
    )
    comp.add_argument("--retry-delay", type=float, default=300.0, help="airflow: seconds between tries (300)")
    comp.add_argument(
        "--on-failure-callback", metavar="MODULE:FUNCTION", help="airflow: called when a task fails for good"
    )
    comp.add_argument(
        "--wait-poke-seconds",
        type=float,
        default=60.0,
        help="airflow: how often an Approval's sensor checks (60)",
    )
    comp.add_argument("--retries", type=int, default=0, help="airflow/kubeflow: retries per task")
    comp.add_argument(
        "--python", default=sys.executable, help="airflow: the mlpipe interpreter tasks run nodes with"
    )
    comp.set_defaults(handler=_cmd_compile)

    for name, help_text, handler in (
        ("runs", "list runs (newest first)", _cmd_runs),
        ("show", "show a run (RUN_ID) or an artifact (numeric ARTIFACT_ID)", _cmd_show),
        ("artifacts", "list published artifacts", _cmd_artifacts),
        ("lineage", "where an artifact came from and what was made from it", _cmd_lineage),
        ("approve", "approve (or --reject) the model an Approval node is waiting on", _cmd_approve),
    ):
        q = sub.add_parser(name, help=help_text)
        if name == "runs":
            q.add_argument("pipeline", nargs="?", help="a pipeline name or pipeline file")
        elif name == "show":
            q.add_argument("target", nargs="?", help="RUN_ID or ARTIFACT_ID")
            q.add_argument(
                "--dag", metavar="PIPELINE_FILE", help="draw the pipeline's DAG, coloured by its newest run"
            )
            q.add_argument("-o", "--output", help="with --dag: write DAG.svg or DAG.html (default: text)")
        elif name == "artifacts":
            q.add_argument("--type", dest="type_name", help="artifact type, e.g. Examples or Model")
        elif name == "approve":
            q.add_argument("run_id", help="the run whose Approval node waits (its waiting line names it)")
            q.add_argument("node", help="the Approval node's id")
            q.add_argument("--reject", action="store_true", help="reject instead of approving")
            q.add_argument("--comment", default="", help="why; recorded with the decision")
            q.add_argument("--user", help="who decides (default: the login name)")
        else:
            q.add_argument("artifact_id", type=int)
        q.add_argument(
            "--metadata", help="SQLite file or mysql://user@host:port/db (default: $MLPIPE_METADATA)"
        )
        q.add_argument("-p", "--pipeline-file", help="use the metadata store of this pipeline file")
        q.set_defaults(handler=handler)

    ui = sub.add_parser("ui", help="web dashboard of runs, DAGs, artifacts, lineage and models")
    ui.add_argument("--metadata", help="SQLite file or mysql://user@host:port/db (default: $MLPIPE_METADATA)")
    ui.add_argument("-p", "--pipeline-file", help="its store, and its DAG for nodes not run yet")
    ui.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    ui.add_argument("--port", type=int, default=8080, help="port (default: 8080; 0 picks a free one)")
    ui.add_argument(
        "--token",
        default=os.environ.get("MLPIPE_UI_TOKEN"),
        help="needed to bind beyond loopback (default: $MLPIPE_UI_TOKEN, which ps does not show)",
    )
    ui.add_argument("--serving-url", help="REST URL of `mlpipe serve`, to show which version serves")
    ui.set_defaults(handler=_cmd_ui)

    for name, help_text, handler in (
        (
            "promote",
            "point a served model's stable label at its canary version (models.config)",
            _cmd_promote,
        ),
        ("rollback", "drop a served model's canary label and version (models.config)", _cmd_rollback),
    ):
        rollout = sub.add_parser(name, help=help_text)
        rollout.add_argument("model_config_file", help="the models.config that mlpipe serve reads")
        rollout.add_argument("model", help="the model's name in the config")
        rollout.add_argument(
            "--label", default="canary", help="the label to promote or roll back (default canary)"
        )
        if name == "promote":
            rollout.add_argument("--to", default="stable", help="the label it becomes (default stable)")
        rollout.set_defaults(handler=handler)

    # The serving flags live in mlpipe.serving.cli (protobuf imports, ~0.1 s): parsed only for `serve`.
    serve = sub.add_parser(
        "serve", help="serve models over TF Serving's REST and gRPC API (mlpipe serve --help)"
    )
    serve.set_defaults(handler=_cmd_serve)
    serve.add_argument(
        "serve_args", nargs=argparse.REMAINDER, help="as tensorflow_model_server (see mlpipe serve --help)"
    )
    return p


# --- run / compile -------------------------------------------------------------------------------
def _cmd_run(args: argparse.Namespace) -> int:
    from mlpipe.dsl.loader import load_pipeline
    from mlpipe.metadata.config import from_environment
    from mlpipe.orchestration.local import LocalDagRunner, new_run_id
    from mlpipe.orchestration.run_result import RunError
    from mlpipe.process_exit import freeze_heap_at_exit
    from mlpipe.ui.discovery import run_url

    freeze_heap_at_exit()  # the process ends with the run
    pipeline = load_pipeline(args.pipeline_file)
    if args.dry_run:
        return _print_plan(pipeline, args)
    runner = LocalDagRunner(max_workers=args.max_workers)
    run_id = new_run_id()
    url = run_url(from_environment(pipeline.metadata) or pipeline.metadata, run_id)
    if url:
        print(f"run {run_id}: {url}")
    try:
        result = runner.run(
            pipeline,
            run_id=run_id,
            from_nodes=args.from_nodes,
            only=args.only,
            enable_cache=False if args.no_cache else None,
        )
    except RunError as e:
        failed = e.result.failed
        print(f"error: {e}", file=sys.stderr)
        for node_id, err in failed.items():
            if isinstance(err.cause, DataError) or isinstance(err.__cause__, DataError):
                # the message names file, line and what to fix; the traceback stays in the log
                print(f"full log of {node_id}: {err.log_path}", file=sys.stderr)
            else:
                _print_log_tail(node_id, err.log_path)
        print(f"resume: mlpipe run {args.pipeline_file}", file=sys.stderr)
        return 1
    print(f"run {result.run_id}: {len(result.results)} nodes ok; metadata: {pipeline.metadata.describe()}")
    return 0


def _print_plan(pipeline: Any, args: argparse.Namespace) -> int:
    from mlpipe.orchestration.plan import FAIL, plan_run

    steps = plan_run(
        pipeline, from_nodes=args.from_nodes, only=args.only, enable_cache=False if args.no_cache else None
    )
    _table([[s.node_id, s.action, s.why] for s in steps], ["NODE", "PLAN", "WHY"])
    counts: dict[str, int] = {}
    for step in steps:
        counts[step.action] = counts.get(step.action, 0) + 1
    print(f"dry run, nothing was run: {', '.join(f'{n} {a}' for a, n in sorted(counts.items()))}")
    return 1 if FAIL in counts else 0  # the run would fail


def _print_log_tail(node_id: str, log_path: str | None, lines: int = 15) -> None:
    if not log_path or not os.path.exists(log_path):
        return
    with open(log_path, errors="replace") as f:
        tail = f.readlines()[-lines:]
    print(f"--- last lines of {node_id}'s log ({log_path}) ---", file=sys.stderr)
    sys.stderr.writelines(tail)


def _cmd_compile(args: argparse.Namespace) -> int:
    from mlpipe.dsl.loader import load_pipeline

    for flag, items, sep in (
        ("--env", args.env, "="),
        ("--secret-env", args.secret_env, "="),
        ("--volume", args.volume, ":"),
    ):
        bad = [item for item in items if sep not in item]
        if bad:
            raise MlpipeError(f"{flag} takes {'KEY=VALUE' if sep == '=' else 'PVC:PATH'}, got {bad[0]!r}")
    kubeflow_only = args.env or args.secret_env or args.volume or args.image != "mlpipe:latest"
    if args.target != "kubeflow" and kubeflow_only:
        raise MlpipeError("--image, --env, --secret-env and --volume apply to --target kubeflow only")
    airflow_only = (
        args.schedule or args.start_date or args.catchup or args.python != sys.executable or args.end_date
        or args.max_active_runs or args.retry_delay != 300.0 or args.on_failure_callback
        or args.wait_poke_seconds != 60.0
    )  # fmt: skip
    if args.target != "airflow" and airflow_only:
        raise MlpipeError(
            "--schedule, --start-date, --end-date, --catchup, --max-active-runs, --retry-delay, "
            "--on-failure-callback, --wait-poke-seconds and --python apply to --target airflow only"
        )
    if args.target == "kubeflow":
        from mlpipe.orchestration.kubeflow import compile_for_kubeflow

        path = compile_for_kubeflow(
            args.pipeline_file,
            args.output,
            image=args.image,
            env=dict(item.split("=", 1) for item in args.env),
            retries=args.retries,
            secret_env=dict(item.split("=", 1) for item in args.secret_env),
            volumes=dict(item.split(":", 1) for item in args.volume),
        )
        print(f"wrote {path}")
    elif args.target == "airflow":
        from mlpipe.orchestration.airflow import compile_for_airflow

        dag_id = compile_for_airflow(
            args.pipeline_file,
            args.output,
            schedule=args.schedule,
            start_date=args.start_date,
            end_date=args.end_date,
            catchup=args.catchup,
            max_active_runs=args.max_active_runs,
            retries=args.retries,
            retry_delay_seconds=args.retry_delay,
            on_failure_callback=args.on_failure_callback,
            wait_poke_seconds=args.wait_poke_seconds,
            python=args.python,
        )
        print(f"wrote DAG '{dag_id}' to {args.output} (its IR beside it); deploy both to the dags folder")
    else:
        load_pipeline(args.pipeline_file).compile().save(args.output)
        print(f"wrote {args.output}")
    return 0


def _cmd_run_node(args: argparse.Namespace) -> int:
    from mlpipe.orchestration.entrypoint import run_node

    return run_node(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from mlpipe.serving.cli import add_serve_arguments, run_serve

    parser = argparse.ArgumentParser(
        prog="mlpipe serve", description="Serve SavedModels like tensorflow_model_server."
    )
    add_serve_arguments(parser)
    return run_serve(parser.parse_args(args.serve_args))


def _cmd_promote(args: argparse.Namespace) -> int:
    from mlpipe.serving.rollout import promote

    previous, version = promote(args.model_config_file, args.model, args.label, args.to)
    print(
        f"promoted {args.model} version {version} from {args.label} to {args.to} (was "
        f"{previous if previous is not None else 'unset'}); a server polling {args.model_config_file} applies it"
    )
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    from mlpipe.serving.rollout import rollback

    version = rollback(args.model_config_file, args.model, args.label)
    print(f"rolled back {args.model}: {args.label} (version {version}) is no longer served")
    return 0


# --- queries -------------------------------------------------------------------------------------
def _open_store(args: argparse.Namespace) -> Any:
    from mlpipe.metadata.store import MetadataStore

    config = _store_config(args)
    if config.kind == "sqlite" and not os.path.exists(config.path):
        raise MlpipeError(f"no metadata store at {config.path}; run a pipeline first or pass --metadata")
    return MetadataStore(config)


def _store_config(args: argparse.Namespace) -> Any:
    from mlpipe.metadata.config import from_environment, parse

    config = None
    if args.metadata:
        config = parse(args.metadata)
    elif args.pipeline_file or (getattr(args, "pipeline", None) or "").endswith(".py"):
        from mlpipe.dsl.loader import load_pipeline

        pipeline = load_pipeline(args.pipeline_file or args.pipeline)
        config = pipeline.metadata
        if getattr(args, "pipeline", None):
            args.pipeline = pipeline.name
    config = from_environment(config)
    if config is None:
        raise MlpipeError(
            "which metadata store? pass --metadata PATH_OR_URI, -p PIPELINE_FILE, or set MLPIPE_METADATA"
        )
    return config


def _cmd_ui(args: argparse.Namespace) -> int:
    from mlpipe.ui.server import start

    ir = None
    if args.pipeline_file:
        from mlpipe.dsl.loader import load_pipeline

        ir = load_pipeline(args.pipeline_file).compile()
    dashboard = start(
        _store_config(args), args.host, args.port, args.token, ir, args.pipeline_file, args.serving_url
    )
    print(
        f"mlpipe ui: {dashboard.url} (metadata: {dashboard.store.config.describe()}); Ctrl-C stops it",
        flush=True,
    )
    dashboard.serve_forever()
    return 0


def _table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def _cmd_runs(args: argparse.Namespace) -> int:
    from mlpipe.metadata.queries import list_runs

    store = _open_store(args)
    runs = list_runs(store, args.pipeline)
    _table(
        [
            [
                r.run_id,
                r.pipeline,
                _when(r.created_ms),
                ", ".join(f"{n} {s.lower()}" for s, n in sorted(r.states.items())),
            ]
            for r in runs
        ],
        ["RUN", "PIPELINE", "STARTED", "EXECUTIONS"],
    )
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    if args.dag:
        return _show_dag(args)
    if args.target is None:
        raise MlpipeError("show what? pass a RUN_ID, an ARTIFACT_ID or --dag PIPELINE_FILE")
    from mlpipe.metadata.queries import get_artifact, run_executions

    store = _open_store(args)
    if args.target.isdigit():
        from mlpipe.visualize import render_text

        print(render_text(get_artifact(store, int(args.target))), end="")
        return 0
    rows = []
    for e in run_executions(store, args.target):
        outs = ", ".join(f"{k}={','.join(str(a.id) for a in v)}" for k, v in e.outputs.items())
        seconds = (e.updated_ms - e.created_ms) / 1000
        rows.append([e.node_id, e.state, f"{seconds:.2f}s", e.id, outs or "-", e.why or "", e.error or ""])
    _table(rows, ["NODE", "STATE", "TIME", "EXECUTION", "OUTPUTS", "WHY", "ERROR"])
    return 0


def _show_dag(args: argparse.Namespace) -> int:
    """The DAG as text, SVG or HTML, with node states of the pipeline's newest run if it ran."""
    from mlpipe.dsl.loader import load_pipeline
    from mlpipe.metadata.queries import list_runs, run_executions
    from mlpipe.visualize import dag_text, render_dag_file

    pipeline = load_pipeline(args.dag)
    ir = pipeline.compile()
    states, shown = None, "no runs yet"
    if args.metadata or pipeline.metadata.kind != "sqlite" or os.path.exists(pipeline.metadata.path):
        args.pipeline_file = args.pipeline_file or args.dag
        store = _open_store(args)
        runs = list_runs(store, ir.name)
        if runs:
            states = {e.node_id: e.state for e in run_executions(store, runs[0].run_id)}
            shown = f"run {runs[0].run_id}"
    if args.output:
        render_dag_file(ir, states, args.output)
        print(f"wrote {args.output} ({shown})")
    else:
        print(dag_text(ir, states), end="")
    return 0


def _cmd_artifacts(args: argparse.Namespace) -> int:
    from mlpipe.metadata.queries import artifacts

    store = _open_store(args)
    _table([[a.id, a.type_name, a.uri] for a in artifacts(store, args.type_name)], ["ID", "TYPE", "URI"])
    return 0


def _cmd_approve(args: argparse.Namespace) -> int:
    from mlpipe.orchestration.approvals import approve

    wanted = "rejected" if args.reject else "approved"
    decision = approve(
        _open_store(args), args.run_id, args.node, reject=args.reject, comment=args.comment, user=args.user
    )
    if decision.outcome != wanted:
        print(f"not changed: it was already {decision.outcome} by {decision.user}", file=sys.stderr)
        return 1
    print(
        f"{wanted}: node {args.node} of run {args.run_id} ({decision.user}: {decision.comment or 'no comment'})"
    )
    return 0


def _cmd_lineage(args: argparse.Namespace) -> int:
    from mlpipe.metadata.queries import lineage

    store = _open_store(args)
    lin = lineage(store, args.artifact_id)
    a = lin.artifact
    print(f"artifact {a.id} ({a.type_name}) {a.uri}")
    if lin.producer:
        print(f"  produced by: {lin.producer.node_id} (execution {lin.producer.id})")
    for title, arts in (("upstream", lin.upstream), ("downstream", lin.downstream)):
        print(f"  {title}:" + ("" if arts else " none"))
        for u in arts:
            print(f"    {u.id} {u.type_name} {u.uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
