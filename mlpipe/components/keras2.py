"""Make Keras 2 (``tf.keras`` = tf-keras, see ``mlpipe._tf_env``) work well for Trainer, Tuner, Evaluator.

Two process-wide fixes, both idempotent and applied before user code runs:

* AutoGraph skips the code of the graph-safe libraries that module code calls in traced
  (``tf.function``) code. TensorFlow 2.16 exempts ``tensorflow`` and ``keras`` from conversion, but not:

  - ``tf_keras``: every ``fit`` re-converted the whole library (19 s of the first epoch of the
    taxi model; 2.7 s with the exemption). Until TF 2.15 it was the ``keras`` package, and exempt.
  - ``tensorflow_transform``: a serving signature that applies ``tft_layer`` converted TFT's
    ``apply_transform_model`` and its helpers on every trace (~1.4 s of the taxi model's ~3.9 s
    ``model.save``). TFT itself traces with ``autograph=False``: its code never needs conversion.
  - ``tfx_bsl``: the ``tf.data`` map functions of ``tf_dataset_factory`` (TF1-compatible code).
* KerasTuner 1.4 picks its Keras with ``import keras``: with Keras 3 installed next to tf-keras it
  accepts only Keras 3 models and rejects the ``tf.keras`` models TFX-style module code builds
  ("Expected the model-building function ... to return a valid Keras Model instance"). Importing it
  while ``keras`` names tf-keras binds it to Keras 2; ``keras`` is restored right after.
"""

from __future__ import annotations

import sys
import threading
from types import ModuleType

from mlpipe.errors import ComponentError

_lock = threading.Lock()  # nodes run in threads; the ``keras`` swap must not interleave


GRAPH_SAFE_LIBRARIES = ("tf_keras", "tensorflow_transform", "tfx_bsl")


def skip_autograph_for_graph_safe_libraries() -> None:
    """Add :data:`GRAPH_SAFE_LIBRARIES` to AutoGraph's do-not-convert rules (once per process).

    The user's own functions are still converted: a rule matches a function's module by prefix.
    """
    from tensorflow.python.autograph.core import config

    with _lock:
        present = {getattr(rule, "_prefix", None) for rule in config.CONVERSION_RULES}
        added = tuple(config.DoNotConvert(name) for name in GRAPH_SAFE_LIBRARIES if name not in present)
        if added:
            config.CONVERSION_RULES = (*added, *config.CONVERSION_RULES)


def import_keras_tuner(node_id: str) -> ModuleType:
    """``keras_tuner``, bound to tf.keras; call before user code imports it."""
    with _lock:
        if "keras_tuner" not in sys.modules:
            import tf_keras

            saved = sys.modules.get("keras")
            sys.modules["keras"] = tf_keras
            try:
                import keras_tuner  # noqa: F401
            finally:
                if saved is None:
                    sys.modules.pop("keras", None)
                else:
                    sys.modules["keras"] = saved
    from keras_tuner.src.backend.config import multi_backend

    if multi_backend():
        raise ComponentError(
            node_id,
            "keras_tuner was imported before mlpipe could bind it to tf.keras, so it rejects tf.keras "
            "models; call mlpipe.components.keras2.import_keras_tuner() before importing keras_tuner",
        )
    return sys.modules["keras_tuner"]
