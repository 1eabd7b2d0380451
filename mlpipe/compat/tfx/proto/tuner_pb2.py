"""``tfx.proto.tuner_pb2``: Tuner's tune_args."""

from mlpipe.compat.tfx.proto._build import build_file

TuneArgs = build_file(
    "tfx.components.tuner", "mlpipe/compat/tfx/tuner.proto", {"TuneArgs": ["int32 num_parallel_trials = 1"]}
)["TuneArgs"]
