"""Compatibility layers: other libraries' public APIs backed by mlpipe.

``mlpipe.compat.tfx`` is TFX's ``tfx`` / ``tfx.v1`` surface; :mod:`mlpipe.compat.hook` makes
``import tfx`` resolve to it where the real TFX is not installed.
"""
