"""A Schema artifact's file (``schema.pbtxt``, as TFX writes it) and how it is read.

Its own module, apart from the SchemaGens, so that a component reading a schema (Transform, the
Evaluator) does not import TFDV or count its version among the libraries it runs on.
"""

from __future__ import annotations

from typing import Any

SCHEMA_FILE = "schema.pbtxt"


def read_schema(path: str) -> Any:
    """A tensorflow_metadata Schema from its text file. The proto module alone, not TFDV:
    importing TFDV imports TensorFlow (~10 s) to read a file."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    with open(path, encoding="utf-8") as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())
