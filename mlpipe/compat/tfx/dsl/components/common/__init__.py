"""``tfx.dsl.components.common``: deep paths of Resolver and Importer."""
