"""Environment mlpipe sets before TensorFlow is imported anywhere in the process.

TFX-style module code uses ``tf.keras`` as Keras 2; TensorFlow 2.16 defaults to Keras 3, so the
legacy switch must be set before the first ``import tensorflow``. Importing this module is cheap.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
