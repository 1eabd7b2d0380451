"""Serve the pushed taxi model and ask it about one trip: the last step of the README's main job.

Starts ``mlpipe serve`` as its own process on the TF Serving model directory the Pusher wrote,
waits until the model is AVAILABLE, sends one raw trip (typed by the pipeline's schema, as an
ExampleGen would encode it) over REST and gRPC, prints the answers, and stops the server.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import socket
import subprocess
import sys

from mlpipe.metadata.config import parse
from mlpipe.metadata.queries import artifacts
from mlpipe.metadata.store import MetadataStore
from mlpipe.serving import Client

LABEL = "tips"
DEFAULT_ROW = 13  # a credit-card trip: cash tips are not recorded in this data, so cash trips score ~0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def feature_types(metadata: str) -> dict[str, str]:
    """Raw feature name -> INT | FLOAT | BYTES, from the newest Schema the pipeline recorded."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    store = MetadataStore(parse(metadata))
    (schema_artifact, *_) = artifacts(store, "Schema")
    schema = text_format.Parse(
        open(os.path.join(schema_artifact.uri, "schema.pbtxt")).read(), schema_pb2.Schema()
    )
    return {f.name: schema_pb2.FeatureType.Name(f.type) for f in schema.feature}


def trip(csv_path: str, row: int, types: dict[str, str]) -> dict[str, object]:
    with open(csv_path, newline="") as f:
        record = list(csv.DictReader(f))[row]
    cast = {"INT": lambda v: int(float(v)), "FLOAT": float, "BYTES": str}
    return {k: cast[types[k]](v) for k, v in record.items() if v != "" and k in types and k != LABEL}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--model-base-path", required=True, help="<serving dir>/<model name>, as the Pusher wrote it"
    )
    parser.add_argument("--metadata", required=True, help="the pipeline's metadata store (for its schema)")
    parser.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "data", "chicago_taxi.csv"))
    parser.add_argument("--row", type=int, default=DEFAULT_ROW, help="which trip of the CSV to ask about")
    args = parser.parse_args()

    example = trip(args.data, args.row, feature_types(args.metadata))
    rest_port, grpc_port = free_port(), free_port()
    command = [sys.executable, "-m", "mlpipe.cli", "serve", "--model_name", "taxi"]
    command += [
        "--model_base_path",
        args.model_base_path,
        "--rest_api_port",
        str(rest_port),
        "--port",
        str(grpc_port),
    ]
    print("$ mlpipe serve " + " ".join(command[4:]), flush=True)
    server = subprocess.Popen(command)
    try:
        rest = Client(f"127.0.0.1:{rest_port}", model="taxi")
        version = rest.wait_until_available(timeout=180)
        by_rest = rest.predict_examples([example])[0][0]
        grpc = Client(f"127.0.0.1:{grpc_port}", model="taxi", protocol="grpc")
        by_grpc = grpc.predict_examples([example])[0][0]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)
    shown = ", ".join(
        f"{k}={example[k]}" for k in ("trip_miles", "fare", "trip_start_hour", "payment_type") if k in example
    )
    print(f"model 'taxi' version {version} is AVAILABLE at http://127.0.0.1:{rest_port}/v1/models/taxi")
    print(f"trip: {shown}")
    print(f"P(tip > 20% of fare) = {by_rest:.4f} (REST)  {by_grpc:.4f} (gRPC)")
    return 0 if abs(by_rest - by_grpc) < 1e-6 else 1


if __name__ == "__main__":
    sys.exit(main())
