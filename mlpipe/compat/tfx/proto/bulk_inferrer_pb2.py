"""``tfx.proto.bulk_inferrer_pb2``: BulkInferrer's model, data and output specs."""

from mlpipe.compat.tfx.proto._build import build_file

_classes = build_file(
    "tfx.components.bulkinferrer",
    "mlpipe/compat/tfx/bulk_inferrer.proto",
    {
        "ModelSpec": ["repeated string model_signature_name = 2", "repeated string tag = 5"],
        "DataSpec": ["repeated string example_splits = 2"],
        "OutputExampleSpec": ["repeated OutputColumnsSpec output_columns_spec = 3"],
        "OutputColumnsSpec": [
            "string signature_name = 1",
            "oneof output_type: ClassifyOutput classify_output = 2",
            "oneof output_type: RegressOutput regress_output = 3",
            "oneof output_type: PredictOutput predict_output = 4",
        ],
        "ClassifyOutput": ["string label_column = 1", "string score_column = 2"],
        "RegressOutput": ["string value_column = 1"],
        "PredictOutput": ["repeated PredictOutputCol output_columns = 1"],
        "PredictOutputCol": ["string output_key = 1", "string output_column = 2"],
    },
)
ModelSpec = _classes["ModelSpec"]
DataSpec = _classes["DataSpec"]
OutputExampleSpec = _classes["OutputExampleSpec"]
OutputColumnsSpec = _classes["OutputColumnsSpec"]
ClassifyOutput = _classes["ClassifyOutput"]
RegressOutput = _classes["RegressOutput"]
PredictOutput = _classes["PredictOutput"]
PredictOutputCol = _classes["PredictOutputCol"]
