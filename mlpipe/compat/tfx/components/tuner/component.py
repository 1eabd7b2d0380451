"""``tfx.components.tuner.component``: ``TunerFnResult`` for ``tuner_fn``."""

from mlpipe.compat.tfx.components._standard import Tuner
from mlpipe.components.tuner import TunerFnResult

__all__ = ["Tuner", "TunerFnResult"]
