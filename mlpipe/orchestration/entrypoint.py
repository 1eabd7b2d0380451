"""Run one node of a compiled pipeline: the only thing a remote task (Airflow, Kubeflow) calls.

    python -m mlpipe.orchestration.entrypoint --ir pipeline.json --node Trainer --run-id R

The metadata store comes from the IR, overridden by ``MLPIPE_METADATA`` /
``MLPIPE_MYSQL_PASSWORD`` so a cluster can point every task at a shared MySQL. Exit code 0 on
success, 1 when the node failed (its error printed, so it lands in the engine's task log). A node
that mlpipe skipped (a false ``Cond``, or a required input from a skipped node) exits 0 too, unless
``--skipped-exit-code`` names the code by which the engine marks a task skipped (Airflow's
BashOperator: 99); Kubeflow has no such code, so there it stays a succeeded task.

``--check-wait`` runs nothing: it asks a node that waits on the outside world (an Approval) whether
it still would (:mod:`mlpipe.orchestration.waits`), exits ``--waiting-exit-code`` if so and 0 if
not, for a sensor that frees its worker between checks (Airflow's reschedule mode).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from mlpipe.errors import MlpipeError
from mlpipe.ir import PipelineIR

if TYPE_CHECKING:
    from mlpipe.metadata.store import MetadataStore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ir", required=True, help="compiled pipeline (mlpipe compile)")
    parser.add_argument("--node", required=True, help="node id to run")
    parser.add_argument("--run-id", required=True, help="the pipeline run this execution belongs to")
    parser.add_argument("--no-cache", action="store_true", help="execute even if a cached result exists")
    parser.add_argument(
        "--skipped-exit-code",
        type=int,
        default=0,
        metavar="CODE",
        help="exit code when the node is skipped (default 0; Airflow's BashOperator skips on 99)",
    )
    parser.add_argument(
        "--check-wait",
        action="store_true",
        help="do not run the node: exit 0 if running it now would not wait (e.g. for an approval)",
    )
    parser.add_argument(
        "--waiting-exit-code",
        type=int,
        default=100,
        metavar="CODE",
        help="with --check-wait: exit code while the node still waits (default 100)",
    )


def run_node(args: argparse.Namespace) -> int:
    from mlpipe.orchestration.launcher import SKIPPED, launch_node, open_store
    from mlpipe.process_exit import freeze_heap_at_exit

    freeze_heap_at_exit()  # the task's process ends with the node

    try:
        ir = PipelineIR.load(args.ir)
        store = open_store(ir)
        try:
            if args.check_wait:
                return _check_wait(ir, args, store)
            result = launch_node(
                ir, args.node, args.run_id, store, enable_cache=False if args.no_cache else None
            )
        finally:
            store.close()
    except MlpipeError as e:
        print(f"mlpipe: {e}", file=sys.stderr)
        return 1
    outputs = ", ".join(f"{k}={a.uri}" for k, arts in result.outputs.items() for a in arts)
    why = f"; {result.why}" if result.why else ""  # the task log says why it executed or was skipped
    print(f"mlpipe: node {result.node_id} {result.state} (execution {result.execution_id}{why}) {outputs}")
    return args.skipped_exit_code if result.state == SKIPPED else 0


def _check_wait(ir: PipelineIR, args: argparse.Namespace, store: MetadataStore) -> int:
    from mlpipe.orchestration.waits import node_waiting_for

    waiting = node_waiting_for(ir, args.node, args.run_id, store)
    if waiting is None:
        print(f"mlpipe: node {args.node} has nothing to wait for: it runs next")
        return 0
    print(f"mlpipe: {waiting}")
    return args.waiting_exit_code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlpipe.orchestration.entrypoint", description=__doc__)
    add_arguments(parser)
    return run_node(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
