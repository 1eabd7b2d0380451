"""``tfx.dsl.input_resolution.strategies``."""
