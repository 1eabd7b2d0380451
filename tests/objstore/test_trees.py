"""Trees, versions and inputs in a real S3 server (moto on 127.0.0.1), checked with botocore."""

from __future__ import annotations

import os

import pytest

from mlpipe.errors import DataError, ServingError
from mlpipe.io import objstore
from mlpipe.io.input_patterns import check_input_config, resolve_input
from mlpipe.io.objstore_cache import localize_tree
from mlpipe.serving.layout import publish_version, version_dirs
from tests.objstore import oracle


def _put(uri: str, body: bytes = b"x") -> None:
    import botocore.session

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    botocore.session.get_session().create_client("s3").put_object(Bucket=bucket, Key=key, Body=body)


def _tree(root, files: dict[str, bytes]):
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(body)
    return root


def test_upload_download_and_delete_a_tree(tmp_path, bucket):
    files = {"a.txt": b"alpha", "sub/dir/b.bin": bytes(range(256)) * 40, "saved_model.pb": b"graph"}
    source = _tree(tmp_path / "src", files)
    assert objstore.upload_tree(str(source), f"{bucket}/t/1") == sum(len(b) for b in files.values())
    assert oracle.objects(f"{bucket}/t/1") == files
    objstore.download_tree(f"{bucket}/t/1", str(tmp_path / "back"))
    back = {
        str(p.relative_to(tmp_path / "back")): p.read_bytes()
        for p in (tmp_path / "back").rglob("*")
        if p.is_file()
    }
    assert back == files
    assert objstore.list_children(f"{bucket}/t/1") == ["a.txt", "saved_model.pb", "sub"]
    objstore.delete_tree(f"{bucket}/t/1")
    assert oracle.keys(f"{bucket}/t") == set()
    assert (
        objstore.list_objects(f"{bucket}/nothing") == [] and objstore.list_children(f"{bucket}/nothing") == []
    )


def test_files_named_last_are_uploaded_after_all_others(tmp_path, bucket, monkeypatch):
    source = _tree(tmp_path / "src", {"variables/v.data": b"1", "saved_model.pb": b"2", "assets/vocab": b"3"})
    store = objstore.store_for(bucket)
    batches = []
    real_upload = store.upload
    monkeypatch.setattr(
        store, "upload", lambda paths, uris: (batches.append(sorted(uris)), real_upload(paths, uris))
    )
    objstore.upload_tree(str(source), f"{bucket}/v/1", last=("saved_model.pb",))
    assert batches == [
        [f"{bucket}/v/1/assets/vocab", f"{bucket}/v/1/variables/v.data"],
        [f"{bucket}/v/1/saved_model.pb"],
    ]


def test_a_bucket_version_without_saved_model_pb_is_not_there_yet(tmp_path, bucket):
    base = f"{bucket}/serving/m"
    _put(f"{base}/7/variables/variables.data-00000-of-00001")  # an upload in progress (or killed)
    _put(f"{base}/3/saved_model.pb")
    _put(f"{base}/.tmp-9-1/saved_model.pb")  # not an integer name
    assert version_dirs(base) == {3: f"{base}/3"}
    _put(f"{base}/7/saved_model.pb")
    assert version_dirs(base) == {3: f"{base}/3", 7: f"{base}/7"}


def test_publishing_claims_a_version_and_a_taken_one_is_never_mixed_into(tmp_path, bucket):
    model = _tree(tmp_path / "model", {"saved_model.pb": b"graph", "variables/v": b"weights"})
    base = f"{bucket}/serving/m"
    _put(f"{base}/5/variables/v", b"someone else's")  # a killed push: taken, though not complete
    with pytest.raises(ServingError, match="version 5 already exists"):
        publish_version(str(model), base, 5)
    assert publish_version(str(model), base, 5, first_free=True) == 6
    assert publish_version(str(model), base, 6, first_free=True) == 7
    assert oracle.objects(f"{base}/6").keys() == {".mlpipe-claim", "saved_model.pb", "variables/v"}
    assert oracle.objects(f"{base}/5") == {"variables/v": b"someone else's"}
    assert objstore.create_exclusive(f"{base}/8/.mlpipe-claim", b"a") is True
    assert objstore.create_exclusive(f"{base}/8/.mlpipe-claim", b"b") is False
    assert oracle.objects(f"{base}/8") == {".mlpipe-claim": b"a"}


def test_a_live_artifact_is_downloaded_once_and_a_vanished_one_is_a_clear_error(tmp_path, bucket):
    _put(f"{bucket}/root/n/examples/4/data.csv", b"a,b\n1,2\n")
    first = localize_tree(f"{bucket}/root/n/examples/4")
    assert open(os.path.join(first, "data.csv"), "rb").read() == b"a,b\n1,2\n"
    objstore.delete_tree(f"{bucket}/root/n/examples/4")
    assert localize_tree(f"{bucket}/root/n/examples/4") == first  # immutable once LIVE: no new request
    with pytest.raises(DataError, match="holds no objects"):
        localize_tree(f"{bucket}/root/n/examples/5")


def test_input_base_in_a_bucket_picks_the_latest_span_and_reads_local_copies(tmp_path, bucket):
    for span in (1, 2, 10):
        _put(f"{bucket}/data/span-{span}/train/part.csv", f"x\n{span}\n".encode())
    _put(f"{bucket}/data/span-x/train/part.csv")  # not a span: digits only
    _put(f"{bucket}/data/span-10/train/.hidden.csv")
    splits = check_input_config({"splits": [{"name": "train", "pattern": "span-{SPAN}/train/*.csv"}]}, None)
    resolved = resolve_input(f"{bucket}/data", splits, None)
    assert resolved.files == {"train": [f"{bucket}/data/span-10/train/part.csv"]} and resolved.span == 10
    [[local]] = objstore.local_copies(resolved.files, str(tmp_path / "copies")).values()
    assert open(local, "rb").read() == b"x\n10\n"
    with pytest.raises(DataError, match="matches no file under"):
        resolve_input(f"{bucket}/nothing", splits, None)
