"""The taxi pipeline plus a TFLite model: ``mlpipe run pipelines/taxi_tflite.py``.

After the Evaluator blesses the SavedModel, a TFLiteConverter converts the Keras model with
dynamic-range quantization, checks its predictions against the SavedModel's on the eval split, and
a second Pusher publishes ``<serving dir>/../taxi_tflite/<version>/model.tflite``.
"""

from __future__ import annotations

import os
from typing import Any

import taxi

from mlpipe import Pipeline


def create_pipeline(tflite_dir: str | None = None, **kwargs: Any) -> Pipeline:
    base = os.environ.get("MLPIPE_TAXI_ROOT", os.path.join(os.getcwd(), "runs", "taxi"))
    return taxi.create_pipeline(
        tflite_dir=tflite_dir or os.path.join(base, "serving", "taxi_tflite"),
        tflite_quantization="dynamic_range",
        **kwargs,
    )
