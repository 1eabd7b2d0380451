"""SchemaGen and ImportSchemaGen: the Schema artifact (``schema.pbtxt``, as TFX writes it).

SchemaGen infers a first schema from the statistics of every split not in ``exclude_splits`` (TFX's
default: all splits, so a category seen only in eval is not an anomaly of clean data); a team then
curates it and feeds the curated file back with ImportSchemaGen, so later data is validated against
what was agreed rather than against whatever arrived.
"""

from __future__ import annotations

import os

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.dsl.spec import ComponentSpec, ParameterSpec
from mlpipe.errors import DataError
from mlpipe.io.objstore_cache import localize_file
from mlpipe.io.schema_file import SCHEMA_FILE, read_schema
from mlpipe.io.uris import is_remote
from mlpipe.types.standard import ExampleStatistics, Schema


class SchemaGen(Component):
    """``tfdv.infer_schema`` on the first included split, ``tfdv.update_schema`` with the others."""

    SPEC = ComponentSpec(
        inputs={"statistics": ExampleStatistics},
        outputs={"schema": Schema},
        parameters={
            "infer_feature_shape": ParameterSpec(bool, default=True),
            "exclude_splits": ParameterSpec(list, default=[]),
        },
    )

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        import tensorflow_data_validation as tfdv

        from mlpipe.components.statistics_gen import STATS_FILE

        statistics = ctx.input("statistics")
        assert statistics is not None
        splits = [s for s in statistics.split_names if s not in ctx.parameters["exclude_splits"]]
        if not splits:
            raise DataError(
                f"{statistics.uri}: exclude_splits {ctx.parameters['exclude_splits']} leaves none of the "
                f"splits {statistics.split_names}; keep at least one to infer a schema from"
            )
        shape = ctx.parameters["infer_feature_shape"]
        schema = None
        for split in splits:
            stats = tfdv.load_stats_binary(os.path.join(statistics.split_uri(split), STATS_FILE))
            if schema is None:
                schema = tfdv.infer_schema(stats, infer_feature_shape=shape)
            else:
                schema = tfdv.update_schema(schema, stats, infer_feature_shape=shape)
        tfdv.write_schema_text(schema, os.path.join(ctx.outputs["schema"].uri, SCHEMA_FILE))


class ImportSchemaGen(Component):
    """Publishes a hand-curated ``schema.pbtxt`` as a Schema artifact, after checking that it parses."""

    SPEC = ComponentSpec(outputs={"schema": Schema}, parameters={"schema_file": ParameterSpec(str)})

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        from google.protobuf import text_format

        path = ctx.parameters["schema_file"]
        if is_remote(path):
            path = localize_file(path)
        if not os.path.isfile(path):
            raise DataError(f"schema_file {path!r} does not exist; pass the path of a schema.pbtxt")
        try:
            schema = read_schema(path)
        except (text_format.ParseError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not a text-format tensorflow_metadata Schema: {e}") from None
        with open(os.path.join(ctx.outputs["schema"].uri, SCHEMA_FILE), "w") as f:
            f.write(text_format.MessageToString(schema))
