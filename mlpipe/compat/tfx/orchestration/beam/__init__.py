"""``tfx.orchestration.beam``."""
