"""What is in the bucket, read with botocore's plain S3 client (not mlpipe's s3fs path), and what
MLMD says is LIVE: the two sides the object-storage tests compare."""

from __future__ import annotations

import json

import botocore.session
from ml_metadata.proto import metadata_store_pb2 as pb

from mlpipe.metadata.store import execution_property
from tests.objstore.bucket_pipeline import expected_model_files, expected_rows


def objects(uri: str) -> dict[str, bytes]:
    """Relative key -> bytes of every object under ``uri/`` (``s3://bucket/prefix``)."""
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    prefix = prefix.rstrip("/") + "/" if prefix else ""
    client = botocore.session.get_session().create_client("s3")
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            out[item["Key"][len(prefix) :]] = body
    return out


def keys(uri: str) -> set[str]:
    bucket, _, prefix = uri.split("://", 1)[1].partition("/")
    client = botocore.session.get_session().create_client("s3")
    found = set()
    for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=bucket, Prefix=prefix.rstrip("/") + "/"
    ):
        found |= {item["Key"][len(prefix) + 1 :] for item in page.get("Contents", [])}
    return found


def expected_artifact(type_name: str, n: int, files: int) -> dict[str, bytes]:
    """The objects a LIVE artifact of ``bucket_pipeline`` must have, whole, for ``n`` rows."""
    if type_name == "Examples":
        return {"values.json": json.dumps(expected_rows(n)).encode()}
    if type_name == "Model":
        return expected_model_files(n, files)
    assert type_name == "PushedModel", type_name
    return {".mlpipe-empty": b""}


def live_artifacts(store) -> list[pb.Artifact]:
    types = {t.id: t.name for t in store.db.mlmd.get_artifact_types()}
    return [(types[a.type_id], a) for a in store.db.mlmd.get_artifacts() if a.state == pb.Artifact.LIVE]


def rows_of(store, artifact: pb.Artifact) -> int:
    """How many rows the run that made ``artifact`` used, from its lineage in MLMD (the first
    execution that output it made it; CACHED ones that reuse it record it too)."""
    events = store.db.mlmd.get_events_by_artifact_ids([artifact.id])
    producer = min(e.execution_id for e in events if e.type == pb.Event.OUTPUT)
    execution = store.db.mlmd.get_executions_by_id([producer])[0]
    n = execution_property(execution, "n")
    if n is not None:
        return int(n)
    events = store.db.mlmd.get_events_by_execution_ids([producer])
    [upstream] = store.db.mlmd.get_artifacts_by_id(
        [e.artifact_id for e in events if e.type == pb.Event.INPUT]
    )
    return rows_of(store, upstream)


def children(uri: str) -> set[str]:
    """The first path segments below ``uri/``."""
    return {key.split("/", 1)[0] for key in keys(uri)}
