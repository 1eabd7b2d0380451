"""``tfx.dsl.experimental.conditionals``."""
