"""Make Keras 2 (``tf.keras`` = tf-keras, see ``mlpipe._tf_env``) work well for Trainer, Tuner, Evaluator.

Both changes to libraries are patches of :mod:`mlpipe.library_patches`, in effect during the run only.
"""

from __future__ import annotations

from types import ModuleType

from mlpipe import library_patches
from mlpipe.errors import ComponentError


def skip_autograph_for_graph_safe_libraries() -> None:
    """Stop AutoGraph converting tf-keras, TFT and tfx-bsl code for the rest of the run (a speed-up)."""
    library_patches.apply(library_patches.AUTOGRAPH_GRAPH_SAFE_LIBRARIES)


def bind_keras_tuner_to_tf_keras() -> None:
    """Have a later ``import keras_tuner`` in this run give KerasTuner bound to tf.keras; call before user
    code imports it. Without the patch (off, or another keras-tuner), KerasTuner binds as it decides."""
    library_patches.apply(library_patches.KERAS_TUNER_ON_TF_KERAS)


def import_keras_tuner(node_id: str) -> ModuleType:
    """``keras_tuner``, bound to tf.keras (an error says why it is not); call before user code imports it."""
    bind_keras_tuner_to_tf_keras()
    import keras_tuner
    from keras_tuner.src.backend.config import multi_backend

    if multi_backend():
        how = (
            "it was imported in this process before the node ran; let mlpipe import it (it binds it to "
            "tf.keras for the node and removes it afterwards)"
            if "keras_tuner_on_tf_keras" in library_patches.applied()
            else f"mlpipe's patch binding it to tf.keras is not in effect (is {library_patches.SETTING}=off, or "
            "is keras-tuner not 1.4? see the log and docs/library-patches.md)"
        )
        raise ComponentError(
            node_id, f"keras_tuner is bound to Keras 3, so it rejects tf.keras models: {how}"
        )
    return keras_tuner
