"""Make Keras 2 (``tf.keras`` = tf-keras, see ``mlpipe._tf_env``) work well for Trainer and Tuner.

Two process-wide fixes, both idempotent and applied before user code runs:

* AutoGraph skips tf-keras's own code. TensorFlow 2.16 exempts the ``keras`` package from
  conversion but not ``tf_keras``, so every ``fit`` re-converted the whole library (19 s of the
  first epoch of the taxi model; 2.7 s with the exemption). tf-keras is graph-safe code: until
  TF 2.15 it was the ``keras`` package and was exempt.
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


def skip_autograph_for_tf_keras() -> None:
    """Add ``tf_keras`` to AutoGraph's do-not-convert rules (once per process)."""
    from tensorflow.python.autograph.core import config

    rule = config.DoNotConvert("tf_keras")
    with _lock:
        if not any(getattr(r, "_prefix", None) == rule._prefix for r in config.CONVERSION_RULES):
            config.CONVERSION_RULES = (rule, *config.CONVERSION_RULES)


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
