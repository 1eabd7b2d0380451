"""``tfx.proto.example_gen_pb2``: ExampleGen's input/output configuration (TFX's field numbers)."""

from mlpipe.compat.tfx.proto._build import build_file

_classes = build_file(
    "tfx.components.example_gen",
    "mlpipe/compat/tfx/example_gen.proto",
    {
        "Input": ["repeated Split splits = 1"],
        "Input.Split": ["string name = 1", "string pattern = 2"],
        "CustomConfig": ["google.protobuf.Any custom_config = 1"],
        "Output": ["SplitConfig split_config = 3"],
        "SplitConfig": [
            "repeated Split splits = 1",
            "oneof splitting_method_config: string partition_feature_name = 2",
        ],
        "SplitConfig.Split": ["string name = 1", "uint32 hash_buckets = 2"],
    },
    {
        "PayloadFormat": {
            "FORMAT_UNSPECIFIED": 0,
            "FORMAT_TF_EXAMPLE": 6,
            "FORMAT_TF_SEQUENCE_EXAMPLE": 7,
            "FORMAT_PROTO": 11,
            "FORMAT_PARQUET": 15,
        },
        "FileFormat": {"FILE_FORMAT_UNSPECIFIED": 0, "FORMAT_TFRECORDS_GZIP": 5, "FILE_FORMAT_PARQUET": 16},
    },  # fmt: skip
)
Input = _classes["Input"]
CustomConfig = _classes["CustomConfig"]
Output = _classes["Output"]
SplitConfig = _classes["SplitConfig"]
PayloadFormat = _classes["PayloadFormat"]
FileFormat = _classes["FileFormat"]
globals().update({v.name: v.number for e in (PayloadFormat, FileFormat) for v in e.DESCRIPTOR.values})
