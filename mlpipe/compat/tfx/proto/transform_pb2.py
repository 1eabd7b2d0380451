"""``tfx.proto.transform_pb2``: which splits Transform analyzes and transforms."""

from mlpipe.compat.tfx.proto._build import build_file

SplitsConfig = build_file(
    "tfx.components.transform",
    "mlpipe/compat/tfx/transform.proto",
    {"SplitsConfig": ["repeated string analyze = 1", "repeated string transform = 2"]},
)["SplitsConfig"]
