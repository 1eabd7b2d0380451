"""The gRPC services (tensorflow-serving-api stubs) against in-process calls, and the client on both protocols."""

from __future__ import annotations

import os

import grpc
import numpy as np
import pytest

from mlpipe.serving import Client, ModelServer, ServedModel, ServingRequestError, serialize_example

TRIPS = [{"trip_miles": 2.0, "hour": 3, "company": "abc"}, {"trip_miles": 0.5, "company": "flash cab"}]


@pytest.fixture(scope="module")
def stubs(server):
    from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

    channel = grpc.insecure_channel(server.grpc_address)
    yield (
        prediction_service_pb2_grpc.PredictionServiceStub(channel),
        model_service_pb2_grpc.ModelServiceStub(channel),
    )
    channel.close()


def call_signature(loaded, model, signature, **inputs):
    import tensorflow as tf

    outputs = loaded[model].signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
    return {k: v.numpy() for k, v in outputs.items()}


def predict_request(model, inputs, signature_name="", version=None, label=None, output_filter=()):
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest(output_filter=list(output_filter))
    request.model_spec.name = model
    request.model_spec.signature_name = signature_name
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return request


def example_protos(trips):
    from mlpipe.serving.examples import example_from_features

    return [example_from_features(trip) for trip in trips]


def test_predict_equals_the_in_process_call(stubs, loaded):
    import tensorflow as tf

    predictions, _ = stubs
    x = np.array([[1.0, 2.0, 3.0], [-0.5, 0.25, 8.0]], np.float32)
    response = predictions.Predict(predict_request("linear", {"x": x}, version=1))
    np.testing.assert_array_equal(
        tf.make_ndarray(response.outputs["y"]),
        call_signature(loaded, "linear_v1", "serving_default", x=x)["y"],
    )
    assert (response.model_spec.name, response.model_spec.version.value) == ("linear", 1)
    assert response.model_spec.signature_name == "serving_default"
    labelled = predictions.Predict(predict_request("linear", {"x": x}, label="canary"))
    assert labelled.model_spec.version.value == 2


def test_predict_several_outputs_and_output_filter(stubs, loaded):
    import tensorflow as tf

    predictions, _ = stubs
    a, b = np.array([[1.0, 2.0]], np.float32), np.array([4], np.int64)
    expected = call_signature(loaded, "multi", "serving_default", a=a, b=b)
    response = predictions.Predict(predict_request("multi", {"a": a, "b": b}))
    assert set(response.outputs) == {"total", "name", "raw_bytes"}
    assert tf.make_ndarray(response.outputs["name"]).tolist() == [b"n4"]
    filtered = predictions.Predict(predict_request("multi", {"a": a, "b": b}, output_filter=["total"]))
    assert list(filtered.outputs) == ["total"]
    np.testing.assert_array_equal(tf.make_ndarray(filtered.outputs["total"]), expected["total"])


def test_classify_and_regress_equal_the_in_process_call(stubs, loaded):
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    predictions, _ = stubs
    serialized = np.array([serialize_example(trip) for trip in TRIPS], dtype=object)
    scores = call_signature(loaded, "taxi", "classes", examples=serialized)["scores"]
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "taxi", "classes"
    request.input.example_list.examples.extend(example_protos(TRIPS))
    response = predictions.Classify(request)
    got = [[(c.label, c.score) for c in row.classes] for row in response.result.classifications]
    assert got == [[("no", float(row[0])), ("yes", float(row[1]))] for row in scores]

    values = call_signature(loaded, "taxi", "value", examples=serialized)["outputs"]
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "taxi", "value"
    request.input.example_list.examples.extend(example_protos(TRIPS))
    response = predictions.Regress(request)
    assert [r.value for r in response.result.regressions] == [float(v) for v in values]
    assert response.model_spec.signature_name == "value"


def test_regress_with_context_and_tf_serving_signatures(stubs, loaded):
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    predictions, _ = stubs
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "taxi", "value"
    request.input.example_list_with_context.context.CopyFrom(example_protos([{"company": "abcd"}])[0])
    request.input.example_list_with_context.examples.extend(example_protos([{"trip_miles": 1.0}]))
    merged = np.array([serialize_example({"trip_miles": 1.0, "company": "abcd"})], dtype=object)
    expected = call_signature(loaded, "taxi", "value", examples=merged)["outputs"]
    assert [r.value for r in predictions.Regress(request).result.regressions] == [float(expected[0])]

    strict = classification_pb2.ClassificationRequest()
    strict.model_spec.name, strict.model_spec.signature_name = "strict", "tfs_classify"
    strict.input.example_list.examples.extend(example_protos([{"word": "ab"}]))
    labels = [c.label for c in predictions.Classify(strict).result.classifications[0].classes]
    assert labels == ["short", "long"]


@pytest.mark.parametrize(
    ("request_args", "code", "pattern"),
    [
        (("nope", {"x": np.zeros((1, 3), np.float32)}), grpc.StatusCode.NOT_FOUND, "Servable not found"),
        (
            ("linear", {"x": np.zeros((1, 3), np.float64)}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "expects DT_FLOAT",
        ),
        (("linear", {"x": np.zeros((1, 4), np.float32)}), grpc.StatusCode.INVALID_ARGUMENT, "shape"),
        (
            ("linear", {"z": np.zeros((1, 3), np.float32)}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Missing but required",
        ),
        (
            ("linear", {"x": np.zeros((1, 3), np.float32)}, "nope"),
            grpc.StatusCode.FAILED_PRECONDITION,
            "nope",
        ),
        (("linear", {"x": np.zeros((1, 3), np.float32)}, "", 9), grpc.StatusCode.NOT_FOUND, "Specific"),
        (("", {"x": np.zeros((1, 3), np.float32)}), grpc.StatusCode.INVALID_ARGUMENT, "Missing model name"),
    ],
)
def test_predict_errors_carry_tf_serving_codes(stubs, request_args, code, pattern):
    predictions, _ = stubs
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(predict_request(*request_args))
    assert raised.value.code() == code
    assert pattern in raised.value.details()


def test_unknown_output_filter_and_empty_examples_are_invalid(stubs):
    from tensorflow_serving.apis import regression_pb2

    predictions, _ = stubs
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Predict(
            predict_request("linear", {"x": np.zeros((1, 3), np.float32)}, output_filter=["nothing"])
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = "taxi"
    with pytest.raises(grpc.RpcError) as raised:
        predictions.Regress(request)
    assert (
        raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "Input is empty" in raised.value.details()
    )


def test_metadata_and_status(stubs):
    from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

    predictions, models = stubs
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "multi"
    response = predictions.GetModelMetadata(request)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    assert {"serving_default", "length", "scale"} <= set(signatures.signature_def)
    assert set(signatures.signature_def["serving_default"].inputs) == {"a", "b"}
    assert response.model_spec.version.value == 1

    with pytest.raises(grpc.RpcError) as raised:
        predictions.GetModelMetadata(
            get_model_metadata_pb2.GetModelMetadataRequest(model_spec=request.model_spec)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    status_request = get_model_status_pb2.GetModelStatusRequest()
    status_request.model_spec.name = "linear"
    statuses = models.GetModelStatus(status_request).model_version_status
    assert [(s.version, s.state, s.status.error_code) for s in statuses] == [
        (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0),
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE, 0),
    ]
    status_request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as raised:
        models.GetModelStatus(status_request)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_reload_config_replaces_the_served_models(serving_root):
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    from mlpipe.serving.config import models_to_proto

    with ModelServer(ServedModel("first", os.path.join(serving_root, "taxi"))) as server:
        channel = grpc.insecure_channel(server.grpc_address)
        stub = model_service_pb2_grpc.ModelServiceStub(channel)
        request = model_management_pb2.ReloadConfigRequest()
        request.config.CopyFrom(models_to_proto([ServedModel("second", os.path.join(serving_root, "multi"))]))
        assert stub.HandleReloadConfigRequest(request).status.error_code == 0
        rest = Client(server.rest_address, model="second")
        assert rest.status()["model_version_status"][0]["state"] == "AVAILABLE"
        with pytest.raises(ServingRequestError) as gone:
            Client(server.rest_address, model="first").status()
        assert gone.value.http_status == 404

        request.config.model_config_list.config[0].model_platform = "pytorch"
        with pytest.raises(grpc.RpcError) as raised:
            stub.HandleReloadConfigRequest(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "pytorch" in raised.value.details()
        channel.close()


@pytest.mark.parametrize(
    ("model", "call"),
    [
        ("linear", lambda c: c.predict([[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]])),
        ("linear", lambda c: c.predict(inputs={"x": [[1.0, 2.0, 3.0]]})),
        ("multi", lambda c: c.predict([{"a": [1.0, 2.0], "b": 3}, {"a": [0.5, 0.5], "b": -2}])),
        ("multi", lambda c: c.predict(inputs={"a": [[1.0, 2.0]], "b": [3]})),
        ("multi", lambda c: c.predict(["héllo", b"\xff\x00"], signature_name="length")),
        ("multi", lambda c: c.predict(inputs=2.5, signature_name="scale")),
        ("taxi", lambda c: c.predict_examples(TRIPS)),
        ("taxi", lambda c: c.classify(TRIPS, signature_name="classes")),
        ("taxi", lambda c: c.regress(TRIPS, context={"hour": 7}, signature_name="value")),
        ("linear", lambda c: c.status()),
        ("taxi", lambda c: c.metadata()),
    ],
)
def test_client_answers_the_same_over_rest_and_grpc(server, model, call):
    rest_answer = call(Client(server.rest_address, model=model))
    grpc_answer = call(Client(server.grpc_address, model=model, protocol="grpc"))
    assert rest_answer == grpc_answer


def test_client_errors_carry_the_code_on_both_protocols(server):
    for client in (
        Client(server.rest_address, model="linear", version=9),
        Client(server.grpc_address, model="linear", version=9, protocol="grpc"),
    ):
        with pytest.raises(ServingRequestError) as raised:
            client.predict([[1.0, 2.0, 3.0]])
        assert raised.value.code == "NOT_FOUND"
