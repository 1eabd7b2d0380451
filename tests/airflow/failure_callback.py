"""An Airflow ``on_failure_callback`` for the scheduler tests, copied into the dags folder (Airflow
imports it from there): appends the failed task, its try number and the error to failures.jsonl
beside itself."""

import json
from pathlib import Path


def record(context):
    ti = context["ti"]
    line = {
        "dag_id": ti.dag_id,
        "task_id": ti.task_id,
        "run_id": ti.run_id,
        "try_number": ti.try_number,
        "exception": str(context.get("exception")),
    }
    with open(Path(__file__).with_name("failures.jsonl"), "a") as f:
        f.write(json.dumps(line) + "\n")
