"""``tfx.utils.io_utils``: reading and writing small files and protos in module code
(TensorFlow's gfile, so any URI TensorFlow reads; imported on first call)."""

from __future__ import annotations

from typing import Any, TypeVar

from google.protobuf import text_format

from mlpipe.compat.tfx.dsl.io import fileio

M = TypeVar("M")


def read_string_file(file_name: str) -> str:
    with fileio.open(file_name) as f:
        return f.read()


def write_string_file(file_name: str, string_value: str) -> None:
    with fileio.open(file_name, "w") as f:
        f.write(string_value)


def parse_pbtxt_file(file_name: str, message: M) -> M:
    text_format.Parse(read_string_file(file_name), message)
    return message


def write_pbtxt_file(file_name: str, proto: Any) -> None:
    write_string_file(file_name, text_format.MessageToString(proto))


def copy_file(src: str, dst: str, overwrite: bool = False) -> None:
    fileio.copy(src, dst, overwrite=overwrite)


def get_only_uri_in_dir(dir_path: str) -> str:
    """The one file in ``dir_path`` (TFX's helper for single-file artifacts)."""
    import os

    files = fileio.listdir(dir_path)
    if len(files) != 1:
        raise RuntimeError(f"{dir_path} holds {len(files)} files, expected exactly one")
    return os.path.join(dir_path, files[0])
