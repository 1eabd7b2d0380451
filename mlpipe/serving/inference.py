"""Predict, classify and regress on a loaded version: the part REST and gRPC share.

Front ends decode their wire format into numpy arrays (or serialized tf.Examples) and encode the
results; everything between (finding the version and signature, checking inputs against the
signature, batching, reading classes/scores/values out of the outputs) happens here once.

Classify and regress follow TF Serving for signatures whose ``method_name`` is classify/regress.
TFX-style models only export predict signatures taking serialized examples, which TF Serving would
refuse for these APIs; the built-in server also accepts a predict signature with exactly one string
input, reading ``classes``/``scores`` (or its only float output) and ``outputs`` (or its only float
output).

The methods are coroutines: front ends run on one event loop, and a request waiting for its model
call (or its batch) holds no thread. Model calls run on a thread pool (TensorFlow releases the GIL
while it computes), or on the batcher's threads when batching is on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from mlpipe.serving.batching import Batcher, batch_rows
from mlpipe.serving.metrics import ServingMetrics
from mlpipe.serving.model_manager import ModelManager
from mlpipe.serving.request_log import RequestLogger
from mlpipe.serving.servable import (
    CLASSIFY_METHOD,
    PREDICT_METHOD,
    REGRESS_METHOD,
    Servable,
    Signature,
    Tensors,
)
from mlpipe.serving.status import invalid_argument


@dataclass(frozen=True)
class ModelSpec:
    """What a request addresses: a model and optionally a version or a label, and a signature."""

    name: str
    version: int | None = None
    label: str | None = None
    signature_name: str = ""


# Model calls that may run at once without batching: as TF Serving, each request gets its own thread,
# so concurrent requests overlap in TensorFlow's kernels.
MODEL_THREADS = 32


class InferenceRunner:
    """Runs requests against the manager's loaded versions, through the batcher when one is given."""

    def __init__(
        self,
        manager: ModelManager,
        batcher: Batcher | None = None,
        request_log: RequestLogger | None = None,
        metrics: ServingMetrics | None = None,
    ):
        self.manager = manager
        self.batcher = batcher
        self.request_log = request_log
        self.metrics = metrics
        self._model_threads = ThreadPoolExecutor(MODEL_THREADS, thread_name_prefix="mlpipe-model")

    def close(self) -> None:
        """Wait for running model calls and end the threads."""
        self._model_threads.shutdown(wait=True)

    def resolve(self, spec: ModelSpec) -> tuple[Servable, Signature]:
        servable = self.manager.resolve(spec.name, spec.version, spec.label)
        return servable, servable.signature(spec.signature_name)

    async def predict(
        self, servable: Servable, signature: Signature, inputs: Tensors, output_filter: Sequence[str] = ()
    ) -> Tensors:
        """All outputs of ``signature`` (or those in ``output_filter``) for ``inputs``."""
        unknown = sorted(set(output_filter) - set(signature.outputs))
        if unknown:
            raise invalid_argument(
                f"output tensor alias not found in signature {signature.name!r}: {unknown}; outputs: "
                f"{sorted(signature.outputs)}"
            )
        _check_inputs(signature, inputs)
        outputs = await self._run(servable, signature, inputs)
        if output_filter:
            outputs = {name: outputs[name] for name in output_filter}
        if self.request_log is not None:
            self.request_log.log("predict", servable.name, servable.version, signature.name, inputs, outputs)
        return outputs

    async def classify(
        self, servable: Servable, signature: Signature, examples: list[bytes]
    ) -> list[list[tuple[str, float]]]:
        """(label, score) pairs per serialized example; labels are "" if the model has no classes."""
        outputs = await self._run_examples(servable, signature, examples, CLASSIFY_METHOD, "classification")
        count = len(examples)
        classes, scores = outputs.get("classes"), outputs.get("scores")
        if classes is None and scores is None and signature.method_name != CLASSIFY_METHOD:
            scores = _only_float_output(signature, outputs)
        if classes is None and scores is None:
            raise invalid_argument(
                f"signature {signature.name!r} has neither 'classes' nor 'scores' outputs; outputs: "
                f"{sorted(signature.outputs)}"
            )
        classes = _per_example(classes, count, "classes")
        scores = _per_example(scores, count, "scores")
        if classes is not None and scores is not None and classes.shape != scores.shape:
            raise invalid_argument(
                f"'classes' shape {list(classes.shape)} differs from 'scores' shape {list(scores.shape)}"
            )
        answer = classes if classes is not None else scores
        assert answer is not None  # a signature with neither was refused above
        width = answer.shape[1]
        results = []
        for row in range(count):
            results.append(
                [
                    (
                        _label(classes[row, k]) if classes is not None else "",
                        float(scores[row, k]) if scores is not None else 0.0,
                    )
                    for k in range(width)
                ]
            )
        if self.request_log is not None:
            self.request_log.log(
                "classify", servable.name, servable.version, signature.name, examples, results
            )
        return results

    async def regress(self, servable: Servable, signature: Signature, examples: list[bytes]) -> list[float]:
        """One regression value per serialized example."""
        outputs = await self._run_examples(servable, signature, examples, REGRESS_METHOD, "regression")
        values = outputs.get("outputs")
        if values is None and signature.method_name != REGRESS_METHOD:
            values = _only_float_output(signature, outputs)
        if values is None:
            raise invalid_argument(
                f"signature {signature.name!r} has no 'outputs' output; outputs: {sorted(signature.outputs)}"
            )
        count = len(examples)
        if values.shape not in ((count,), (count, 1)):
            raise invalid_argument(
                f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got {list(values.shape)}"
            )
        results = [float(v) for v in values.reshape(count)]
        if self.request_log is not None:
            self.request_log.log(
                "regress", servable.name, servable.version, signature.name, examples, results
            )
        return results

    async def _run_examples(
        self, servable: Servable, signature: Signature, examples: list[bytes], method: str, api: str
    ) -> Tensors:
        if not examples:
            raise invalid_argument("Input is empty: send at least one example")
        if signature.method_name == method:
            if set(signature.inputs) != {"inputs"}:
                raise invalid_argument(
                    f"{api} signature {signature.name!r} must have one input named 'inputs'"
                )
            name = "inputs"
        elif signature.method_name == PREDICT_METHOD:
            strings = [k for k, spec in signature.inputs.items() if spec.dtype == np.dtype(object)]
            if len(signature.inputs) != 1 or len(strings) != 1:
                raise invalid_argument(
                    f"signature {signature.name!r} cannot answer {api} requests: it must take exactly one string "
                    f"input of serialized tf.Examples, but takes {_describe(signature)}"
                )
            name = strings[0]
        else:
            raise invalid_argument(
                f"Expected {api} signature method_name to be {method}. Was: {signature.method_name}"
            )
        array = np.empty(len(examples), dtype=object)
        array[:] = examples
        inputs = {name: array}
        _check_inputs(signature, inputs)
        return await self._run(servable, signature, inputs)

    async def _run(self, servable: Servable, signature: Signature, inputs: Tensors) -> Tensors:
        if self.metrics is None:
            return await self._call_model(servable, signature, inputs)
        started = time.perf_counter()
        outputs = await self._call_model(servable, signature, inputs)
        self.metrics.record_version(servable.name, servable.version, time.perf_counter() - started)
        return outputs

    async def _call_model(self, servable: Servable, signature: Signature, inputs: Tensors) -> Tensors:
        if self.batcher is None or batch_rows(inputs) is None:  # inputs without a batch dimension run alone
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._model_threads, servable.run, signature, inputs)
        key = (
            servable,
            signature.name,
            tuple((n, a.dtype.str, a.shape[1:]) for n, a in sorted(inputs.items())),
        )
        return await self.batcher.run(
            key, lambda batch: servable.run(signature, batch), inputs, servable.name
        )


def _check_inputs(signature: Signature, inputs: Tensors) -> None:
    """Names, dtypes and shapes against the signature, with messages naming the offending input."""
    if set(inputs) != set(signature.inputs):
        extra = sorted(set(inputs) - set(signature.inputs))
        missing = sorted(set(signature.inputs) - set(inputs))
        raise invalid_argument(
            f"input size does not match signature {signature.name!r}: got {sorted(inputs)}, expected "
            f"{sorted(signature.inputs)}. Sent extra: {extra}. Missing but required: {missing}."
        )
    for name, array in inputs.items():
        spec = signature.inputs[name]
        if array.dtype != spec.dtype and not (spec.dtype == np.dtype(object) and array.dtype.kind in "OS"):
            raise invalid_argument(f"input {name!r} expects {spec.dtype_name} but {array.dtype} was provided")
        if not spec.accepts(array.shape):
            raise invalid_argument(
                f"input {name!r} has shape {list(array.shape)}, but signature {signature.name!r} expects "
                f"{spec.describe()}"
            )


def _only_float_output(signature: Signature, outputs: Tensors) -> np.ndarray | None:
    if len(outputs) == 1:
        ((name, array),) = outputs.items()
        if signature.outputs[name].dtype.kind == "f":
            return array
    return None


def _per_example(array: np.ndarray | None, count: int, name: str) -> np.ndarray | None:
    if array is None:
        return None
    if array.ndim == 1:
        array = array.reshape(count, 1) if array.shape[0] == count else array
    if array.ndim != 2 or array.shape[0] != count:
        raise invalid_argument(
            f"'{name}' output has shape {list(array.shape)}; expected [{count}, num_classes]"
        )
    return array


def _label(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _describe(signature: Signature) -> str:
    return (
        ", ".join(f"{name}: {spec.describe()}" for name, spec in sorted(signature.inputs.items()))
        or "no inputs"
    )
