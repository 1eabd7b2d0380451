"""``tfx.dsl.input_resolution``: deep paths of the resolver strategies."""
