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

All tasks of one DAG run share one mlpipe run: its id is the DAG id and Airflow's ``run_id``
(``taxi__manual__2026-01-01T00:00:00+00:00``) with characters other than letters, digits, ``_.-``
replaced, so a retried task rejoins its run and a new DAG run reuses unchanged results from
the cache. The DAG id is part of it because Airflow's scheduled run ids repeat across DAGs
(``scheduled__2026-01-01T00:00:00+00:00`` in every daily DAG), and pipelines may share one store. The metadata store is the IR's, overridden by ``MLPIPE_METADATA`` /
``MLPIPE_MYSQL_PASSWORD`` in the workers' environment (BashOperator passes it on).

A node that waits on the outside world (an Approval waits for a person, see
:mod:`mlpipe.orchestration.waits`) gets a ``BashSensor`` in front of it, ``wait_for_<node>``, in
``mode="reschedule"``: each poke runs the entry point's ``--check-wait`` (a second or two, no
TensorFlow) and exits ``WAITING_EXIT_CODE`` while the node would still wait, so between pokes the
task is ``up_for_reschedule`` and holds no worker slot; once the decision is there the node's own
task runs and completes at once. The sensor's own timeout is the scheduler's safety net only: the
node's timeout (e.g. Approval's ``timeout_seconds``) ends the wait with a recorded decision first.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from string import Template
from typing import Any

from mlpipe.dsl.pipeline import Pipeline
from mlpipe.errors import DefinitionError
from mlpipe.ir import PipelineIR

log = logging.getLogger("mlpipe.runner.airflow")

# a waiting node's sensor retries at least this often: see the DAG template's BashSensor
_SENSOR_RETRIES = 3
_CALLBACK = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")

_DAG_TEMPLATE = Template('''\
"""Airflow DAG of mlpipe pipeline '$name', written by mlpipe's AirflowDagRunner: recompile the
pipeline instead of editing this file.

Each task runs one node in mlpipe's own interpreter (this file imports nothing from mlpipe):
    $python -m mlpipe.orchestration.entrypoint --ir IR --node NODE --run-id RUN
"""

import re
import shlex
from datetime import datetime, timedelta, timezone
from pathlib import Path

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.sensors.bash import BashSensor
from airflow.sdk import dag
$callback_import
DAG_ID = $name_literal
MLPIPE_PYTHON = $python_literal
PIPELINE_IR = $ir_expression

# exit code of a node that mlpipe skipped: BashOperator marks the task skipped
SKIPPED_EXIT_CODE = 99
# exit code of `--check-wait` while a node would still wait: its sensor pokes again later
WAITING_EXIT_CODE = 100

# node id -> the nodes it waits for, in the compiled pipeline's order
UPSTREAM = {
$upstream}

# node id -> its sensor's poke interval and timeout (seconds), for nodes that wait on the outside world
WAITS = {
$waits}


def mlpipe_run_id(airflow_run_id: str) -> str:
    """All tasks of a DAG run share one mlpipe run, named after the DAG and the run without ':' or '+'
    (scheduled run ids are the same in every DAG with the same schedule)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{DAG_ID}__{airflow_run_id}")


def node_command(node_id: str) -> str:
    """The command running one node; the run id is filled in when the task runs."""
    args = [MLPIPE_PYTHON, "-m", "mlpipe.orchestration.entrypoint", "--ir", str(PIPELINE_IR)]
    args += ["--node", node_id, "--skipped-exit-code", str(SKIPPED_EXIT_CODE)]
    return shlex.join(args) + " --run-id {{ run_id | mlpipe_run_id }}"


def wait_command(node_id: str) -> str:
    """The command a sensor pokes with: exits 0 once the node would not wait, WAITING_EXIT_CODE before."""
    args = [MLPIPE_PYTHON, "-m", "mlpipe.orchestration.entrypoint", "--ir", str(PIPELINE_IR)]
    args += ["--node", node_id, "--check-wait", "--waiting-exit-code", str(WAITING_EXIT_CODE)]
    return shlex.join(args) + " --run-id {{ run_id | mlpipe_run_id }}"


@dag(
    dag_id=DAG_ID,
    schedule=$schedule,
    start_date=$start_date,
    end_date=$end_date,
    catchup=$catchup,
${max_active_runs}    default_args=$default_args,
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
        first = tasks[node_id]
        if node_id in WAITS:  # the node runs once its sensor says it would not wait
            first = BashSensor(
                task_id=f"wait_for_{node_id}",
                bash_command=wait_command(node_id),
                retry_exit_code=WAITING_EXIT_CODE,
                mode="reschedule",  # frees the worker slot between pokes
                poke_interval=WAITS[node_id]["poke_interval"],
                timeout=WAITS[node_id]["timeout"],
                trigger_rule="none_failed",
                # a poke is idempotent; retries absorb Airflow's reschedule race (apache/airflow#71172),
                # in which a late executor event fails a sensor that was already back on the schedule
                retries=WAITS[node_id]["retries"],
                retry_delay=timedelta(seconds=WAITS[node_id]["poke_interval"]),
            )
            first >> tasks[node_id]
        for upstream_id in upstream:
            tasks[upstream_id] >> first


pipeline()
''')


class AirflowDagRunner:
    """Writes a DAG file (and the pipeline's IR) that Airflow runs; it runs nothing itself.

    ``schedule`` is a cron expression or preset (``"@daily"``); None means triggered by hand.
    ``start_date`` (a datetime or ISO string; naive means UTC) is required with a schedule;
    ``end_date`` ends the schedule. ``catchup`` makes the scheduler create the runs of every
    interval since ``start_date``; ``max_active_runs`` bounds how many DAG runs run at once (1: a run
    starts once the one before it ended, so it reuses its results from the cache).
    ``retries`` and ``retry_delay_seconds`` apply to every task: a retried task reruns its node in
    the same mlpipe run. ``on_failure_callback`` is ``"module:function"`` importable by *Airflow's*
    interpreter (e.g. a module in the dags folder), called with the task's context when a task fails
    for good, after its retries. ``wait_poke_seconds`` is how often a waiting node's sensor checks
    (see the module docstring). ``python`` is mlpipe's interpreter *on the Airflow workers*, default
    this one. ``ir_path`` is where the IR is written and read by the tasks; by default it sits next
    to the DAG file and the DAG finds it relative to itself, so the two can be deployed together to
    any dags folder.
    """

    def __init__(
        self,
        *,
        schedule: str | None = None,
        start_date: datetime | str | None = None,
        end_date: datetime | str | None = None,
        catchup: bool = False,
        max_active_runs: int | None = None,
        retries: int = 0,
        retry_delay_seconds: float = 300.0,
        on_failure_callback: str | None = None,
        wait_poke_seconds: float = 60.0,
        python: str = sys.executable,
        ir_path: str | None = None,
    ):
        if schedule is not None and start_date is None:
            raise DefinitionError(
                f"a scheduled DAG (schedule={schedule!r}) needs a start_date, e.g. start_date='2026-01-01'"
            )
        if retries < 0:
            raise DefinitionError(f"retries must be 0 or more, got {retries}")
        if retry_delay_seconds < 0:
            raise DefinitionError(f"retry_delay_seconds must be 0 or more, got {retry_delay_seconds}")
        if max_active_runs is not None and max_active_runs < 1:
            raise DefinitionError(f"max_active_runs must be 1 or more, got {max_active_runs}")
        if not wait_poke_seconds > 0:
            raise DefinitionError(f"wait_poke_seconds must be > 0, got {wait_poke_seconds}")
        if on_failure_callback is not None and not _CALLBACK.fullmatch(on_failure_callback):
            raise DefinitionError(
                f"on_failure_callback {on_failure_callback!r} must be 'module:function', e.g. 'alerts:page_oncall'"
            )
        self.schedule = schedule
        self.start_date = _utc(start_date, "start_date") if start_date is not None else None
        self.end_date = _utc(end_date, "end_date") if end_date is not None else None
        if self.start_date and self.end_date and self.end_date < self.start_date:
            raise DefinitionError(f"end_date {self.end_date} is before start_date {self.start_date}")
        self.catchup = bool(catchup)
        self.max_active_runs = max_active_runs
        self.retries = int(retries)
        self.retry_delay_seconds = float(retry_delay_seconds)
        self.on_failure_callback = on_failure_callback
        self.wait_poke_seconds = float(wait_poke_seconds)
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
        default_args = (
            f'{{"retries": {self.retries}, "retry_delay": timedelta(seconds={self.retry_delay_seconds:g})'
        )
        callback_import = ""
        if self.on_failure_callback:
            module, function = self.on_failure_callback.split(":")
            callback_import = f"\nfrom {module} import {function} as on_failure_callback\n"
            default_args += ', "on_failure_callback": on_failure_callback'
        return _DAG_TEMPLATE.substitute(
            name=ir.name,
            name_literal=_literal(ir.name),
            python=self.python,
            python_literal=_literal(self.python),
            ir_expression=ir_expression,
            upstream=upstream,
            waits=self._waits(ir),
            schedule=_literal(self.schedule),
            start_date=_datetime_literal(self.start_date),
            end_date=_datetime_literal(self.end_date),
            catchup=_literal(self.catchup),
            max_active_runs=f"    max_active_runs={self.max_active_runs},\n" if self.max_active_runs else "",
            default_args=default_args + "}",
            callback_import=callback_import,
        )

    def _waits(self, ir: PipelineIR) -> str:
        """WAITS entries: a node that may wait gets a sensor; it gives up an hour after the node's own
        ``timeout_seconds`` (by then the node has recorded its timeout), else after Airflow's week."""
        from mlpipe.orchestration.waits import waiting_nodes

        lines = []
        for node in waiting_nodes(ir):
            timeout = node.parameters.get("timeout_seconds")
            sensor_timeout = float(timeout) + 3600.0 if timeout else 7 * 86400.0
            poke = {
                "poke_interval": self.wait_poke_seconds,
                "timeout": sensor_timeout,
                "retries": max(self.retries, _SENSOR_RETRIES),
            }
            lines.append(f"    {_literal(node.id)}: {json.dumps(poke)},\n")
            if any(n.id == f"wait_for_{node.id}" for n in ir.nodes):
                raise DefinitionError(
                    f"node id 'wait_for_{node.id}' is taken: Airflow names the sensor of node '{node.id}' so"
                )
        return "".join(lines)


def compile_for_airflow(
    pipeline_file_or_pipeline: str | os.PathLike[str] | Pipeline,
    dag_file: str | os.PathLike[str],
    **options: Any,
) -> str:
    """``mlpipe compile --target airflow``: a pipeline file (or Pipeline) to a DAG file; returns the DAG id.

    ``options`` are AirflowDagRunner's (schedule, start_date, end_date, catchup, max_active_runs,
    retries, retry_delay_seconds, on_failure_callback, wait_poke_seconds, python, ir_path).
    """
    if isinstance(pipeline_file_or_pipeline, Pipeline):
        pipeline = pipeline_file_or_pipeline
    else:
        from mlpipe.dsl.loader import load_pipeline

        pipeline = load_pipeline(pipeline_file_or_pipeline)
    return AirflowDagRunner(**options).compile(pipeline, dag_file)


def _utc(value: datetime | str, name: str) -> datetime:
    """A timezone-aware UTC datetime; Airflow would otherwise apply its configured default zone."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError as e:
            raise DefinitionError(f"{name} {value!r} is not an ISO date, e.g. '2026-01-01'") from e
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
