"""``tfx.components.trainer``: the deep import paths TFX module files use."""
