"""``tfx.dsl.component.experimental``: annotations and the ``@component`` decorator."""
