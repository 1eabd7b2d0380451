"""One-line opt-in for scripts and notebooks: ``import mlpipe.compat.tfx_import`` makes the
following ``import tfx`` / ``from tfx import v1 as tfx`` use mlpipe (unless a real TFX is installed)."""

from mlpipe.compat.hook import install

install()
