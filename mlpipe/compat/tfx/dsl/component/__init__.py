"""``tfx.dsl.component``: deep import paths of TFX's Python-function components."""
