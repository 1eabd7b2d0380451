"""The Evaluator on FnApiRunner worker processes, equal to TFMA's own single-process run.

Given ``--direct_num_workers=2 --direct_running_mode=multi_processing``, the Evaluator runs TFMA
on two worker processes, each reading its own part of the records (``_records_of_part``). The
oracle is ``tfma.run_model_analysis`` on one process, as in test_differential_evaluator; the
split here has two shards and several batches a part, so both parts and the shard boundary are
crossed.
"""

from __future__ import annotations

import os

import pytest

from mlpipe.components import evaluator
from mlpipe.components.evaluator import Evaluator, _records_of_part
from mlpipe.io.beam import local_worker_processes
from mlpipe.io.examples import write_examples as write_split
from mlpipe.types import Examples, Model, ModelBlessing, ModelEvaluation, Schema
from tests.components.test_differential_evaluator import _config, _schema_text, metrics, run_tfma, validation
from tests.components.test_evaluation_and_push import context, save_model, write_examples

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

ROWS = 3000  # > 2 parts' batches of _PART_BATCH_RECORDS
WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """An eval split of ROWS examples in two shards, its schema, and a trained model."""
    from mlpipe.io.example_stream import iter_serialized_examples

    root = tmp_path_factory.mktemp("evaluator_workers")
    write_examples(str(root / "one_file"), "eval", ROWS, seed=5)
    (records,) = iter_serialized_examples(str(root / "one_file" / "Split-eval"), ROWS)
    split = str(root / "examples" / "Split-eval")
    write_split(split, records[:1700], file_name="data_tfrecord-00000-of-00002.gz")
    write_split(split, records[1700:], file_name="data_tfrecord-00001-of-00002.gz")
    (root / "schema").mkdir()
    (root / "schema" / "schema.pbtxt").write_text(_schema_text())
    save_model(str(root / "good"), train_steps=20)
    save_model(str(root / "constant"), train_steps=0)
    return root


def test_parts_are_disjoint_batches_covering_every_record_once(root):
    from mlpipe.io.example_stream import iter_serialized_examples

    split = str(root / "examples" / "Split-eval")
    (every,) = iter_serialized_examples(split, ROWS)
    parts = [list(_records_of_part((k, [k]), [split], 2)) for k in range(2)]
    size = evaluator._PART_BATCH_RECORDS
    assert parts[0] == every[:size] + every[2 * size : 3 * size]
    assert parts[1] == every[size : 2 * size]
    assert len(parts[0]) + len(parts[1]) == ROWS


def _examples(root) -> Examples:
    examples = Examples(uri=str(root / "examples"))
    examples.split_names = ["eval"]
    return examples


def test_local_worker_processes_reads_the_fnapirunner_options():
    assert local_worker_processes([]) == 1
    assert local_worker_processes(WORKERS) == 2
    assert local_worker_processes(["--direct_num_workers=2"]) == 1  # in_memory: one process
    assert local_worker_processes([*WORKERS, "--runner=DirectRunner"]) == 1
    everything = ["--direct_num_workers=0", "--direct_running_mode=multi_processing"]  # 0: a worker per core
    assert local_worker_processes(everything) == os.cpu_count()


@pytest.mark.parametrize("baseline", [None, "constant"], ids=["alone", "with-baseline"])
def test_evaluation_on_worker_processes_equals_tfmas_single_process_run(root, tmp_path, baseline):
    has_baseline = baseline is not None
    inputs = {
        "examples": _examples(root),
        "model": Model(uri=str(root / "good")),
        "baseline_model": Model(uri=str(root / baseline)) if baseline else None,
        "schema": Schema(uri=str(root / "schema")),
    }
    outputs = {"evaluation": ModelEvaluation(), "blessing": ModelBlessing()}
    config = _config(has_baseline, False)
    ctx = context(tmp_path / "mlpipe", inputs, outputs, {"eval_config": config, "example_splits": ["eval"]})
    ctx.beam_pipeline_args = WORKERS  # local_worker_processes(WORKERS) == 2: the parts path
    Evaluator.execute(ctx)

    theirs = run_tfma(tmp_path, root, "good", baseline, _config(has_baseline, has_baseline))
    got, want = metrics(outputs["evaluation"].uri), metrics(theirs)
    assert set(got) == set(want)
    assert want[("Overall", "candidate", "example_count", False)] == ROWS  # every record once
    for key, value in want.items():
        # float32 sums (Keras' compiled loss) add in another order on two workers
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9, nan_ok=True), key
    assert validation(outputs["evaluation"].uri) == validation(theirs)
    assert outputs["blessing"].get_custom_property("blessed") == int(validation(theirs)[0])
