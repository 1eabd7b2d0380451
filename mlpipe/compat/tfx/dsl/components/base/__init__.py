"""``tfx.dsl.components.base``: the deep paths older pipelines import."""
