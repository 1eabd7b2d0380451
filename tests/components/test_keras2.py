"""AutoGraph exemptions for the graph-safe libraries that Trainer/Tuner/Evaluator module code calls."""

from __future__ import annotations

import mlpipe  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow loads)

# isort: split
import tensorflow as tf
import tensorflow_transform as tft
import tf_keras
from tensorflow.python.autograph.core import config
from tensorflow.python.autograph.impl import conversion
from tfx_bsl.tfxio import tensor_adapter

from mlpipe.components.keras2 import skip_autograph_for_graph_safe_libraries
from mlpipe.library_patches import GRAPH_SAFE_LIBRARIES, run_scope


def _user_function(x: tf.Tensor) -> tf.Tensor:
    if x > 0:  # a tensor condition: needs AutoGraph to become tf.cond
        return x
    return -x


def test_library_code_is_exempt_and_user_code_is_still_converted() -> None:
    with run_scope():
        skip_autograph_for_graph_safe_libraries()
        _assert_exempt_and_user_code_converted()
    assert not conversion.is_allowlisted(tf_keras.layers.Dense.call)  # the run's end undid the rules


def _assert_exempt_and_user_code_converted() -> None:
    assert conversion.is_allowlisted(tft.TransformFeaturesLayer.call)
    assert conversion.is_allowlisted(tf_keras.layers.Dense.call)
    assert conversion.is_allowlisted(tensor_adapter.TensorAdapter.ToBatchTensors)
    assert not conversion.is_allowlisted(_user_function)
    # The user's tensor-dependent `if` still traces into a graph conditional and gives the right value.
    assert tf.function(_user_function)(tf.constant(-3.0)).numpy() == 3.0


def test_rules_are_added_once() -> None:
    before = config.CONVERSION_RULES
    with run_scope():
        skip_autograph_for_graph_safe_libraries()
        with run_scope():
            skip_autograph_for_graph_safe_libraries()
        prefixes = [getattr(rule, "_prefix", None) for rule in config.CONVERSION_RULES]
        assert [prefixes.count(name) for name in GRAPH_SAFE_LIBRARIES] == [1, 1, 1]
    assert config.CONVERSION_RULES == before
