"""``tfx.components.tuner``: the deep import paths TFX module files use."""
