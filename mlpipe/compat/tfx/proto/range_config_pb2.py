"""``tfx.proto.range_config_pb2``: span ranges ExampleGen reads."""

from mlpipe.compat.tfx.proto._build import build_file

_classes = build_file(
    "tfx.configs",
    "mlpipe/compat/tfx/range_config.proto",
    {
        "StaticRange": ["int32 start_span_number = 1", "int32 end_span_number = 2"],
        "RollingRange": ["int32 start_span_number = 1", "int32 num_spans = 2"],
        "RangeConfig": [
            "oneof range: StaticRange static_range = 1",
            "oneof range: RollingRange rolling_range = 2",
        ],
    },
)
StaticRange = _classes["StaticRange"]
RollingRange = _classes["RollingRange"]
RangeConfig = _classes["RangeConfig"]
