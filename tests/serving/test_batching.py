"""Request batching: parameters file, merging, splitting, limits; and a batching server end to end."""

from __future__ import annotations

import logging
import os
import threading
import time

import numpy as np
import pytest

from mlpipe.errors import ServingError
from mlpipe.serving import BatchingParameters, Client, ModelServer, ServedModel, ServingRequestError
from mlpipe.serving.batching import Batcher


class Recorder:
    """A model function doubling ``x``, recording the batch sizes it was called with."""

    def __init__(self):
        self.sizes: list[int] = []

    def __call__(self, inputs):
        self.sizes.append(len(inputs["x"]))
        return {"y": inputs["x"] * 2, "rows": np.arange(len(inputs["x"]))}


def submit_concurrently(batcher, run, inputs_list):
    results: list = [None] * len(inputs_list)
    start = threading.Barrier(len(inputs_list))

    def one(i):
        start.wait()
        try:
            results[i] = batcher.run("key", run, inputs_list[i])
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(inputs_list))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_parameters_parse_tf_servings_text_format(tmp_path, caplog):
    path = tmp_path / "batching.config"
    path.write_text(
        "max_batch_size { value: 128 }\nbatch_timeout_micros { value: 1000 }\n"
        "max_enqueued_batches { value: 4 }\nnum_batch_threads { value: 2 }\n"
        "allowed_batch_sizes: 64\nallowed_batch_sizes: 128\npad_variable_length_inputs: true\n"
    )
    with caplog.at_level(logging.WARNING):
        params = BatchingParameters.read(path)
    assert params == BatchingParameters(128, 1000, 4, 2)
    assert "ignores batching parameters allowed_batch_sizes, pad_variable_length_inputs" in caplog.text
    assert BatchingParameters.parse("max_batch_size { value: 8 }") == BatchingParameters(max_batch_size=8)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_batch_size: 8", "not a text-format"),
        ("max_batch_sise { value: 8 }", "max_batch_sise"),
        ("max_batch_size { value: 0 }", "max_batch_size must be >= 1"),
    ],
)
def test_bad_parameters_are_refused(text, message):
    with pytest.raises(ServingError, match=message):
        BatchingParameters.parse(text, source="batching.config")


def test_concurrent_requests_are_merged_and_split_back():
    batcher = Batcher(
        BatchingParameters(max_batch_size=16, batch_timeout_micros=500_000, num_batch_threads=1)
    )
    run = Recorder()
    inputs = [{"x": np.full((2, 3), i, np.float32)} for i in range(6)]
    results = submit_concurrently(batcher, run, inputs)
    batcher.stop()
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], np.full((2, 3), 2 * i, np.float32))
        assert result["rows"].shape == (2,)
    assert sum(run.sizes) == 12 and len(run.sizes) < 6


def test_batches_never_exceed_max_batch_size():
    batcher = Batcher(BatchingParameters(max_batch_size=5, batch_timeout_micros=200_000, num_batch_threads=1))
    run = Recorder()
    results = submit_concurrently(batcher, run, [{"x": np.ones((2, 1))} for _ in range(6)])
    batcher.stop()
    assert all(not isinstance(r, Exception) for r in results)
    assert sum(run.sizes) == 12 and max(run.sizes) <= 5


def test_limits_and_failures():
    batcher = Batcher(BatchingParameters(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1))
    with pytest.raises(ServingRequestError, match="larger than maximum batch size 4"):
        batcher.run("key", Recorder(), {"x": np.ones((5, 1))})

    def broken(inputs):
        raise ValueError("model exploded")

    results = submit_concurrently(batcher, broken, [{"x": np.ones((1, 1))} for _ in range(3)])
    assert [str(r) for r in results] == ["model exploded"] * 3

    def unbatched_output(inputs):
        return {"y": np.float32(1.0)}

    with pytest.raises(ServingRequestError, match="batch as first dimension") as raised:
        batcher.run("key", unbatched_output, {"x": np.ones((1, 1))})
    assert raised.value.code == "INTERNAL"
    shapes = []

    def triple(inputs):
        shapes.append(inputs["x"].shape)
        return {"y": inputs["x"] * 3}

    assert (
        batcher.run("key", triple, {"x": np.array(2.0, np.float32)})["y"] == 6.0
    )  # no batch dim: runs alone
    assert shapes == [()]
    batcher.stop()


def test_a_full_queue_refuses_with_unavailable():
    started, gate = threading.Event(), threading.Event()

    def slow(inputs):
        started.set()
        gate.wait(10)
        return {"y": inputs["x"]}

    batcher = Batcher(BatchingParameters(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1))
    running = threading.Thread(target=batcher.run, args=("key", slow, {"x": np.ones((1, 1))}))
    running.start()
    assert started.wait(10)  # the only batch thread is busy with the first request
    waiting = threading.Thread(target=batcher.run, args=("key", slow, {"x": np.ones((1, 1))}))
    waiting.start()
    while batcher._queued_rows < 1:  # the second request fills the queue (max 1 batch of 1 row)
        time.sleep(0.001)
    with pytest.raises(ServingRequestError, match="queue is full") as raised:
        batcher.run("key", slow, {"x": np.ones((1, 1))})
    assert raised.value.code == "UNAVAILABLE"
    gate.set()
    running.join()
    waiting.join()
    batcher.stop()


def test_a_batching_server_answers_like_the_model(serving_root):
    trips = [{"trip_miles": float(i), "hour": i % 24, "company": "c" * i} for i in range(24)]
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000, num_batch_threads=1)
    with ModelServer(ServedModel("taxi", os.path.join(serving_root, "taxi")), batching=params) as server:
        expected = [Client(server.rest_address, model="taxi").predict_examples([trip]) for trip in trips]
        clients = [
            Client(server.rest_address, model="taxi"),
            Client(server.grpc_address, model="taxi", protocol="grpc"),
        ]
        answers: dict = {}

        def ask(i):
            answers[i] = clients[i % 2].predict_examples([trips[i]])

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(trips))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [answers[i] for i in range(len(trips))] == expected
