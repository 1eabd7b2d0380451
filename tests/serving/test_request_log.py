"""Request logging (TF Serving's ``logging_config``) under load: every sampled request is written.

Many concurrent clients send classify, predict and regress requests over REST and gRPC, each
carrying its own ``request_id`` feature. After the server stops, the log files are read back with
TensorFlow's own TFRecord reader (not mlpipe's) and every request id must be there exactly once,
with the version that answered and the answer the client got.
"""

from __future__ import annotations

import base64
import glob
import os
import threading

import numpy as np
import pytest

from tests.serving.conftest import http_call

pytestmark = pytest.mark.e2e

CLIENTS = 8
REQUESTS_PER_CLIENT = 24


def example(request_id: str, miles: float) -> bytes:
    import tensorflow as tf

    features = {
        "trip_miles": tf.train.Feature(float_list=tf.train.FloatList(value=[miles])),
        "hour": tf.train.Feature(int64_list=tf.train.Int64List(value=[7])),
        "request_id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[request_id.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def read_logs(prefix: str) -> tuple[list[str], list]:
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    files = sorted(glob.glob(f"{prefix}-*.tfrecord"))
    return files, [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(files)
    ]


def logged_ids(record) -> list[str]:
    from tensorflow.core.example import example_pb2

    kind = record.WhichOneof("log_type")
    if kind == "predict_log":
        import tensorflow as tf

        tensor = tf.make_ndarray(record.predict_log.request.inputs["examples"])
        examples = [example_pb2.Example.FromString(value) for value in tensor.reshape(-1)]
    else:
        examples = list(getattr(record, kind).request.input.example_list.examples)
    return [e.features.feature["request_id"].bytes_list.value[0].decode() for e in examples]


def test_every_request_is_logged_under_concurrent_load(tmp_path, serving_root):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_service_pb2_grpc, regression_pb2

    from mlpipe.serving import ModelServer, ServedModel
    from mlpipe.serving.config import RequestLogging

    prefix = str(tmp_path / "logs" / "taxi")
    model = ServedModel("taxi", os.path.join(serving_root, "taxi"), logging=RequestLogging(prefix, 1.0))
    answers: dict[str, float] = {}
    errors: list[BaseException] = []
    server = ModelServer(model, poll_wait_seconds=0, request_log_max_records_per_file=25)
    server.start()
    try:

        def client(number: int) -> None:
            try:
                with grpc.insecure_channel(server.grpc_address) as channel:
                    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
                    for i in range(REQUESTS_PER_CLIENT):
                        request_id, miles = f"c{number}-{i}", number + i / 10
                        if i % 3 == 0:
                            code, body = http_call(
                                server.rest_address,
                                "POST",
                                "/v1/models/taxi:classify",
                                {
                                    "signature_name": "classes",
                                    "examples": [{"trip_miles": miles, "hour": 7, "request_id": request_id}],
                                },
                            )
                            assert code == 200, body
                            answers[request_id] = body["results"][0][1][1]
                        elif i % 3 == 1:
                            payload = base64.b64encode(example(request_id, miles)).decode()
                            code, body = http_call(
                                server.rest_address,
                                "POST",
                                "/v1/models/taxi:predict",
                                {"instances": [{"b64": payload}]},
                            )
                            assert code == 200, body
                            answers[request_id] = body["predictions"][0][0]
                        else:
                            request = regression_pb2.RegressionRequest()
                            request.model_spec.name = "taxi"
                            request.model_spec.signature_name = "value"
                            request.input.example_list.examples.add().ParseFromString(
                                example(request_id, miles)
                            )
                            answers[request_id] = stub.Regress(request).result.regressions[0].value
            except BaseException as error:  # noqa: BLE001 (reported by the main thread)
                errors.append(error)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        server.stop()  # drains the log queue
    assert not errors, errors[0]

    files, records = read_logs(prefix)
    sent = CLIENTS * REQUESTS_PER_CLIENT
    ids = [request_id for record in records for request_id in logged_ids(record)]
    assert len(ids) == sent and set(ids) == set(answers)  # none lost, none twice
    assert len(files) >= sent // 25  # rotated at 25 records a file
    assert not glob.glob(str(tmp_path / "logs" / "*.writing"))
    for record in records:
        assert record.log_metadata.model_spec.name == "taxi"
        assert record.log_metadata.model_spec.version.value == 1
        kind = record.WhichOneof("log_type")
        (request_id,) = logged_ids(record)
        if kind == "classify_log":
            logged = record.classify_log.response.result.classifications[0].classes[1].score
        elif kind == "predict_log":
            logged = tf.make_ndarray(record.predict_log.response.outputs["output_0"])[0, 0]
        else:
            logged = record.regress_log.response.result.regressions[0].value
        assert np.isclose(logged, answers[request_id], rtol=1e-6)


def test_sampling_rate_logs_a_share_of_requests(tmp_path, serving_root):
    from mlpipe.serving import ModelServer, ServedModel
    from mlpipe.serving.config import RequestLogging, format_model_config, parse_model_config

    prefix = str(tmp_path / "sampled")
    model = ServedModel("taxi", os.path.join(serving_root, "taxi"), logging=RequestLogging(prefix, 0.25))
    # the logging_config survives TF Serving's text format both ways
    assert parse_model_config(format_model_config([model]))[0].logging == RequestLogging(prefix, 0.25)
    sent = 200
    with ModelServer(model, poll_wait_seconds=0) as server:
        for i in range(sent):
            code, _ = http_call(
                server.rest_address,
                "POST",
                "/v1/models/taxi:classify",
                {"signature_name": "classes", "examples": [{"trip_miles": 1.0, "request_id": f"r{i}"}]},
            )
            assert code == 200
    _, records = read_logs(prefix)
    # Binomial(200, 0.25): mean 50, sd 6.1; 25..75 is beyond 4 sd either side.
    assert 25 <= len(records) <= 75
