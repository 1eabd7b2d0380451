"""Native remote reads vs localize-then-read, for the file an ExampleGen reads from an S3 bucket.

Starts the test S3 server (moto, tests/support/object_stores.py) on 127.0.0.1, uploads the bundled taxi
CSV ``--copies`` times into one object, and times reading it into an Arrow table:

* ``native_pyarrow_s3``: pyarrow's own S3 filesystem streams the object into the CSV reader;
* ``native_s3fs``: the CSV reader on an s3fs file object (fsspec's remote file);
* ``localize``: mlpipe's path (``objstore.local_copies``: download, then read the local file);
* ``localize_cached_tree``: a second node localizing the same LIVE artifact (the cache hit);
* ``tf_gfile``: whether TensorFlow itself can open ``s3://`` (TF 2.16 without tensorflow-io).

Prints one JSON line. ``python bench/objstore_localize.py --copies 10 --repeat 3``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.object_stores import start_s3_server  # noqa: E402


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="objstore-bench-"))
    server = start_s3_server(work / "moto.log")
    try:
        os.environ.update(server.env())
        os.environ["MLPIPE_OBJSTORE_CACHE"] = str(work / "cache")
        import pyarrow.csv as pacsv
        import pyarrow.fs as pafs
        import s3fs

        from mlpipe.io.objstore import local_copies, upload_tree
        from mlpipe.io.objstore_cache import localize_tree

        csv = (REPO / "examples" / "data" / "chicago_taxi.csv").read_bytes()
        header, _, body = csv.partition(b"\n")
        data = header + b"\n" + body * args.copies
        fs = s3fs.S3FileSystem(skip_instance_cache=True)
        fs.mkdir("bench")
        fs.pipe_file("bench/data/data.csv", data)
        uri = "s3://bench/data/data.csv"
        rows = pacsv.read_csv(io.BytesIO(data)).num_rows

        arrow_s3 = pafs.S3FileSystem(
            endpoint_override=server.endpoint, scheme="http", access_key=os.environ["AWS_ACCESS_KEY_ID"],
            secret_key=os.environ["AWS_SECRET_ACCESS_KEY"], region="us-east-1",
        )  # fmt: skip

        def native_pyarrow() -> None:
            with arrow_s3.open_input_stream("bench/data/data.csv") as f:
                assert pacsv.read_csv(f).num_rows == rows

        def native_s3fs() -> None:
            with fs.open("bench/data/data.csv", "rb") as f:
                assert pacsv.read_csv(f).num_rows == rows

        def localize() -> None:
            target = tempfile.mkdtemp(dir=work)
            [[path]] = local_copies({"train": [uri]}, target).values()
            assert pacsv.read_csv(path).num_rows == rows

        tree = work / "tree"
        tree.mkdir()
        (tree / "data.csv").write_bytes(data)
        upload_s = _best(lambda: upload_tree(str(tree), f"s3://bench/artifact/{time.perf_counter_ns()}"), 1)
        upload_tree(str(tree), "s3://bench/artifact/live")
        first_tree = _best(lambda: localize_tree("s3://bench/artifact/live"), 1)
        cached_tree = _best(lambda: localize_tree("s3://bench/artifact/live"), args.repeat)

        import tensorflow as tf

        try:
            tf.io.gfile.exists(uri)
            gfile = "works"
        except Exception as error:  # TF 2.16 registers no s3 filesystem without tensorflow-io
            gfile = f"{type(error).__name__}: {str(error).splitlines()[0][:120]}"

        print(
            json.dumps(
                {
                    "bench": "objstore_localize",
                    "bytes": len(data),
                    "rows": rows,
                    "native_pyarrow_s3_s": round(_best(native_pyarrow, args.repeat), 3),
                    "native_s3fs_s": round(_best(native_s3fs, args.repeat), 3),
                    "localize_s": round(_best(localize, args.repeat), 3),
                    "upload_tree_s": round(upload_s, 3),
                    "localize_tree_first_s": round(first_tree, 3),
                    "localize_tree_cached_s": round(cached_tree, 4),
                    "tf_gfile_s3": gfile,
                }
            )
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
