"""Request batching: parameters file, merging, splitting, limits; and a batching server end to end."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import urllib.request

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


def submit_concurrently(params, run, inputs_list, on_batch=None):
    """Every input as its own request at once, on an event loop as the server does; results or errors."""

    async def main():
        batcher = Batcher(params, on_batch)
        results = await asyncio.gather(
            *(batcher.run("key", run, inputs, "model") for inputs in inputs_list), return_exceptions=True
        )
        await batcher.stop()
        return results

    return asyncio.run(main())


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
    params = BatchingParameters(max_batch_size=16, batch_timeout_micros=500_000, num_batch_threads=1)
    run = Recorder()
    batches = []
    inputs = [{"x": np.full((2, 3), i, np.float32)} for i in range(6)]
    results = submit_concurrently(params, run, inputs, lambda *batch: batches.append(batch))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["y"], np.full((2, 3), 2 * i, np.float32))
        assert result["rows"].shape == (2,)
    assert run.sizes == [12]  # 12 rows < 16: one batch, run when the oldest request timed out
    ((name, rows, waits),) = batches
    assert (name, rows, len(waits)) == ("model", 12, 6)
    assert 0.45 < max(waits) < 5  # the oldest request waited the 0.5 s timeout


def test_batches_never_exceed_max_batch_size():
    params = BatchingParameters(max_batch_size=5, batch_timeout_micros=200_000, num_batch_threads=1)
    run = Recorder()
    results = submit_concurrently(params, run, [{"x": np.ones((2, 1))} for _ in range(6)])
    assert all(not isinstance(r, Exception) for r in results)
    assert sum(run.sizes) == 12 and max(run.sizes) <= 5


def test_with_no_timeout_requests_gather_while_the_thread_is_busy():
    params = BatchingParameters(max_batch_size=64, batch_timeout_micros=0, num_batch_threads=1)
    run = Recorder()
    results = submit_concurrently(params, run, [{"x": np.full((1, 1), i)} for i in range(10)])
    assert [r["y"].tolist() for r in results] == [[[2 * i]] for i in range(10)]
    assert run.sizes == [1, 9]  # the first runs at once; the rest arrive while it runs


def test_limits_and_failures():
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=0, num_batch_threads=1)
    (too_big,) = submit_concurrently(params, Recorder(), [{"x": np.ones((5, 1))}])
    assert isinstance(too_big, ServingRequestError) and "larger than maximum batch size 4" in str(too_big)

    def broken(inputs):
        raise ValueError("model exploded")

    results = submit_concurrently(params, broken, [{"x": np.ones((1, 1))} for _ in range(3)])
    assert [str(r) for r in results] == ["model exploded"] * 3

    def unbatched_output(inputs):
        return {"y": np.float32(1.0)}

    (wrong,) = submit_concurrently(params, unbatched_output, [{"x": np.ones((1, 1))}])
    assert isinstance(wrong, ServingRequestError) and wrong.code == "INTERNAL"
    assert "batch as first dimension" in str(wrong)
    # Inputs without a common first dimension cannot be merged: the server runs them alone.
    (scalar,) = submit_concurrently(params, Recorder(), [{"x": np.array(2.0, np.float32)}])
    assert isinstance(scalar, ServingError) and "common first dimension" in str(scalar)


def test_a_full_queue_refuses_with_unavailable():
    started, gate = threading.Event(), threading.Event()

    def slow(inputs):
        started.set()
        gate.wait(10)
        return {"y": inputs["x"]}

    async def main():
        batcher = Batcher(BatchingParameters(max_batch_size=1, max_enqueued_batches=1, num_batch_threads=1))
        running = asyncio.ensure_future(batcher.run("key", slow, {"x": np.ones((1, 1))}))
        await asyncio.sleep(0)
        assert await asyncio.to_thread(started.wait, 10)  # the only batch thread is busy with the first
        waiting = asyncio.ensure_future(batcher.run("key", slow, {"x": np.ones((1, 1))}))
        await asyncio.sleep(0)  # the second request fills the queue (max 1 batch of 1 row)
        with pytest.raises(ServingRequestError, match="queue is full") as raised:
            await batcher.run("key", slow, {"x": np.ones((1, 1))})
        assert raised.value.code == "UNAVAILABLE"
        gate.set()
        assert (await running)["y"].tolist() == [[1.0]] and (await waiting)["y"].tolist() == [[1.0]]
        await batcher.stop()
        with pytest.raises(ServingRequestError, match="shutting down"):
            await batcher.run("key", slow, {"x": np.ones((1, 1))})

    asyncio.run(main())


def test_a_batching_server_answers_like_the_model(serving_root):
    trips = [{"trip_miles": float(i), "hour": i % 24, "company": "c" * i} for i in range(24)]
    params = BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000, num_batch_threads=1)
    models = [ServedModel(name, os.path.join(serving_root, name)) for name in ("taxi", "multi")]
    with ModelServer(models, batching=params) as server:
        # A scalar input has no batch dimension: it runs alone, not refused.
        assert Client(server.rest_address, model="multi").predict(inputs=2.0, signature_name="scale") == 6.0
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
        metrics = urllib.request.urlopen(f"http://{server.rest_address}/monitoring/prometheus/metrics").read()
    assert [answers[i] for i in range(len(trips))] == expected

    def value(series: str) -> float:
        match = re.search(rb"^" + re.escape(series.encode()) + rb" (\S+)$", metrics, re.MULTILINE)
        assert match, f"{series} missing from the metrics page"
        return float(match.group(1))

    # 48 one-row requests went through the batcher (the scalar one ran alone): 24 one by one, so 24
    # batches of 1, then 24 at once in batches of at most 8.
    batches = value(":tensorflow:serving:batching_session:wrapped_run_count")
    assert 24 + 3 <= batches < 48
    assert value(':mlpipe:serving:batching:batch_size_sum{model_name="taxi"}') == 48
    assert value(':mlpipe:serving:batching:batch_size_count{model_name="taxi"}') == batches
    assert value(':mlpipe:serving:batching:batch_size_bucket{model_name="taxi",le="1"}') >= 24
    assert value(':mlpipe:serving:batching:batch_size_bucket{model_name="taxi",le="8"}') == batches
    queuing = ':tensorflow:serving:batching_session:queuing_latency_count{thread_pool_name="mlpipe-batch"}'
    assert value(queuing) == 48
    # Every request that ran alone waited out the 20 ms timeout.
    assert value(queuing.replace("_count", "_sum")) >= 24 * 20_000
