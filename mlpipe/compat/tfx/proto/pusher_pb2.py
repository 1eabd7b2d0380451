"""``tfx.proto.pusher_pb2``: where Pusher puts a blessed model."""

from mlpipe.compat.tfx.proto._build import build_file

_classes = build_file(
    "tfx.components.pusher",
    "mlpipe/compat/tfx/pusher.proto",
    {
        "PushDestination": ["oneof destination: Filesystem filesystem = 3"],
        "PushDestination.Filesystem": ["string base_directory = 1", "Versioning versioning = 6"],
    },
    {"Versioning": {"AUTO": 0, "UNIX_TIMESTAMP": 1}},
)
PushDestination = _classes["PushDestination"]
Versioning = _classes["Versioning"]
AUTO = Versioning.AUTO
UNIX_TIMESTAMP = Versioning.UNIX_TIMESTAMP
