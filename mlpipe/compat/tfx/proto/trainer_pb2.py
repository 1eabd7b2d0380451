"""``tfx.proto.trainer_pb2``: Trainer's train_args / eval_args."""

from mlpipe.compat.tfx.proto._build import build_file

_classes = build_file(
    "tfx.components.trainer",
    "mlpipe/compat/tfx/trainer.proto",
    {
        "TrainArgs": ["repeated string splits = 1", "int32 num_steps = 2"],
        "EvalArgs": ["repeated string splits = 1", "int32 num_steps = 2"],
    },
)
TrainArgs = _classes["TrainArgs"]
EvalArgs = _classes["EvalArgs"]
