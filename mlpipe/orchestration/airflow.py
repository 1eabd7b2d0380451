"""AirflowDagRunner: compiles a pipeline into an Airflow 3 DAG file, one task per node.

Airflow and mlpipe live in two virtualenvs: Airflow 3's pins (attrs, protobuf, sqlalchemy)
conflict with ml-metadata's. So the DAG file imports nothing from mlpipe, and every task runs
its node in mlpipe's interpreter through the node entry point::

    MLPIPE_PYTHON -m mlpipe.orchestration.entrypoint --ir IR.json --node NODE --run-id RUN

Each task is a ``BashOperator`` running that command, rather than ``@task.external_python``:

- the entry point already is the contract a remote task needs (exit 1 and the ComponentError on
  stderr); BashOperator fails the task on a non-zero exit and streams stdout and stderr, line by
  line, into the task log, so "node 'X' failed: ..." is there as the node's executor said it;
- external_python would ship a Python function's source into mlpipe's interpreter, so the DAG
  file would hold mlpipe imports, pickled arguments and warnings about Airflow missing from that
  interpreter; the bash command is one line a person can copy from the task's rendered template
  and run by hand to reproduce a task;
- nothing of Airflow runs in mlpipe's interpreter, and nothing of mlpipe in Airflow's.

A node that mlpipe skips (a false ``Cond``, or a required input from a skipped node) exits with
BashOperator's ``skip_on_exit_code`` (99), so Airflow shows the task as skipped. Every task has
the trigger rule ``none_failed``: Airflow's default (``all_success``) would skip a task as soon as
one upstream task was skipped, without asking mlpipe, yet a node whose input from the skipped node
is optional must run, with that input empty. So a task waits for its upstream tasks to succeed or
be skipped, and mlpipe decides whether its node runs.

All tasks of one DAG run share one mlpipe run: its id is Airflow's ``run_id``
(``manual__2026-01-01T00:00:00+00:00``) with characters other than letters, digits, ``_.-``
replaced, so a retried task rejoins its run and a new DAG run reuses unchanged results from
the cache. The metadata store is the IR's, overridden by ``MLPIPE_METADATA`` /
``MLPIPE_MYSQL_PASSWORD`` in the workers' environment (BashOperator passes it on).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import DefinitionError
from mlpipe.ir import PipelineIR

log = logging.getLogger("mlpipe.runner.airflow")

_DAG_TEMPLATE = Template('''\
"""Airflow DAG of mlpipe pipeline '$name', written by mlpipe's AirflowDagRunner: recompile the
pipeline instead of editing this file.

Each task runs one node in mlpipe's own interpreter (this file imports nothing from mlpipe):
    $python -m mlpipe.orchestration.entrypoint --ir IR --node NODE --run-id RUN
"""

import re
import shlex
${datetime_import}from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag

MLPIPE_PYTHON = $python_literal
PIPELINE_IR = $ir_expression

# exit code of a node that mlpipe skipped: BashOperator marks the task skipped
SKIPPED_EXIT_CODE = 99

# node id -> the nodes it waits for, in the compiled pipeline's order
UPSTREAM = {
$upstream}


def mlpipe_run_id(airflow_run_id: str) -> str:
    """All tasks of a DAG run share one mlpipe run, named after it without ':' or '+'."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", airflow_run_id)


def node_command(node_id: str) -> str:
    """The command running one node; the run id is filled in when the task runs."""
    args = [MLPIPE_PYTHON, "-m", "mlpipe.orchestration.entrypoint", "--ir", str(PIPELINE_IR)]
    args += ["--node", node_id, "--skipped-exit-code", str(SKIPPED_EXIT_CODE)]
    return shlex.join(args) + " --run-id {{ run_id | mlpipe_run_id }}"


@dag(
    dag_id=$name_literal,
    schedule=$schedule,
    start_date=$start_date,
    catchup=$catchup,
    default_args={"retries": $retries},
    user_defined_filters={"mlpipe_run_id": mlpipe_run_id},
    tags=["mlpipe"],
    doc_md=__doc__,
)
def pipeline():
    tasks = {}
    for node_id, upstream in UPSTREAM.items():  # upstream nodes come first
        tasks[node_id] = BashOperator(
            task_id=node_id,
            bash_command=node_command(node_id),
            skip_on_exit_code=SKIPPED_EXIT_CODE,
            trigger_rule="none_failed",  # mlpipe decides whether a node after a skipped one runs
        )
        for upstream_id in upstream:
            tasks[upstream_id] >> tasks[node_id]


pipeline()
''')


class AirflowDagRunner:
    """Writes a DAG file (and the pipeline's IR) that Airflow runs; it runs nothing itself.

    ``schedule`` is a cron expression or preset (``"@daily"``); None means triggered by hand.
    ``start_date`` (a datetime or ISO string; naive means UTC) is required with a schedule.
    ``python`` is mlpipe's interpreter *on the Airflow workers*, default this one. ``ir_path`` is
    where the IR is written and read by the tasks; by default it sits next to the DAG file and the
    DAG finds it relative to itself, so the two can be deployed together to any dags folder.
    """

    def __init__(
        self,
        *,
        schedule: str | None = None,
        start_date: datetime | str | None = None,
        catchup: bool = False,
        retries: int = 0,
        python: str = sys.executable,
        ir_path: str | None = None,
    ):
        if schedule is not None and start_date is None:
            raise DefinitionError(
                f"a scheduled DAG (schedule={schedule!r}) needs a start_date, e.g. start_date='2026-01-01'"
            )
        if retries < 0:
            raise DefinitionError(f"retries must be 0 or more, got {retries}")
        self.schedule = schedule
        self.start_date = _utc(start_date) if start_date is not None else None
        self.catchup = bool(catchup)
        self.retries = int(retries)
        self.python = python
        self.ir_path = ir_path

    def compile(self, pipeline_or_ir: Pipeline | PipelineIR, dag_file: str | os.PathLike[str]) -> str:
        """Write the IR, then the DAG file (so Airflow never parses a DAG whose IR is missing).

        Returns the DAG id: the pipeline's name.
        """
        ir = (
            pipeline_or_ir.compile() if isinstance(pipeline_or_ir, Pipeline) else pipeline_or_ir
        ).without_secrets()
        dag_path = Path(dag_file).absolute()
        if dag_path.suffix != ".py":
            raise DefinitionError(f"DAG file {dag_path} must end in .py: Airflow parses only Python files")
        ir_path = Path(self.ir_path).absolute() if self.ir_path else dag_path.with_suffix(".ir.json")
        ir.save(ir_path)
        source = self.dag_source(ir, ir_path, dag_path)
        tmp = dag_path.with_name(f".{dag_path.name}.tmp-{os.getpid()}")
        tmp.write_text(source)
        os.replace(tmp, dag_path)
        log.info("wrote DAG %s to %s (IR %s)", ir.name, dag_path, ir_path)
        return ir.name

    def dag_source(self, ir: PipelineIR, ir_path: Path, dag_path: Path) -> str:
        """The DAG file's text: Python that needs only Airflow and the standard library."""
        if ir_path.parent == dag_path.parent and not self.ir_path:
            ir_expression = f"Path(__file__).with_name({_literal(ir_path.name)})"
        else:
            ir_expression = f"Path({_literal(str(ir_path))})"
        upstream = "".join(f"    {_literal(n.id)}: {_literal(list(n.upstream))},\n" for n in ir.nodes)
        return _DAG_TEMPLATE.substitute(
            name=ir.name,
            name_literal=_literal(ir.name),
            python=self.python,
            python_literal=_literal(self.python),
            ir_expression=ir_expression,
            upstream=upstream,
            schedule=_literal(self.schedule),
            start_date=_datetime_literal(self.start_date),
            datetime_import="from datetime import datetime, timezone\n" if self.start_date else "",
            catchup=_literal(self.catchup),
            retries=self.retries,
        )


def compile_for_airflow(
    pipeline_file_or_pipeline: str | os.PathLike[str] | Pipeline,
    dag_file: str | os.PathLike[str],
    **options: Any,
) -> str:
    """``mlpipe compile --target airflow``: a pipeline file (or Pipeline) to a DAG file; returns the DAG id.

    ``options`` are AirflowDagRunner's (schedule, start_date, catchup, retries, python, ir_path).
    """
    if isinstance(pipeline_file_or_pipeline, Pipeline):
        pipeline = pipeline_file_or_pipeline
    else:
        from mlpipe.dsl.loader import load_pipeline

        pipeline = load_pipeline(pipeline_file_or_pipeline)
    return AirflowDagRunner(**options).compile(pipeline, dag_file)


def _utc(value: datetime | str) -> datetime:
    """A timezone-aware UTC datetime; Airflow would otherwise apply its configured default zone."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as e:
            raise DefinitionError(f"start_date {value!r} is not an ISO date, e.g. '2026-01-01'") from e
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _literal(value: str | list[str] | bool | None) -> str:
    """Python source for ``value``, double-quoted like the rest of the DAG file (JSON strings are
    valid Python strings)."""
    return repr(value) if value is None or isinstance(value, bool) else json.dumps(value)


def _datetime_literal(value: datetime | None) -> str:
    if value is None:
        return "None"
    fields = [value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond]
    while len(fields) > 3 and fields[-1] == 0:
        fields.pop()
    return f"datetime({', '.join(map(str, fields))}, tzinfo=timezone.utc)"
