"""The taxi module with a model that learned nothing: it scores every trip 0.5.

Same ``preprocessing_fn`` and training loop as ``components/taxi_module.py``, but the Keras model
starts with every weight at zero and trains with learning rate 0, so its sigmoid output is
``sigmoid(0) = 0.5`` for any input: AUC 0.5 and, at the 0.5 cut-off, the majority class ("no")
for every trip. A blessing gate worth its name must reject it.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

_TAXI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "components", "taxi_module.py")
_spec = importlib.util.spec_from_file_location("constant_taxi_module", _TAXI)
taxi = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(taxi)

preprocessing_fn = taxi.preprocessing_fn
_build_keras_model = taxi.build_keras_model


def _constant_keras_model(categorical_sizes: dict[str, int], **settings: Any) -> Any:
    model = _build_keras_model(categorical_sizes, **{**settings, "learning_rate": 0.0})
    model.set_weights([weight * 0 for weight in model.get_weights()])
    return model


taxi.build_keras_model = _constant_keras_model  # run_fn looks the builder up in its module's globals


def run_fn(fn_args: Any) -> None:
    taxi.run_fn(fn_args)
