"""``tfx.dsl.io.fileio``: TFX's filesystem functions, on ``tf.io.gfile`` (local paths and every
URI scheme TensorFlow reads). TensorFlow is imported on the first call, not on import."""

from __future__ import annotations

from typing import Any


def _gfile() -> Any:
    import tensorflow as tf

    return tf.io.gfile


def open(path: str, mode: str = "r") -> Any:  # noqa: A001  (TFX's name)
    return _gfile().GFile(path, mode)


def copy(src: str, dst: str, overwrite: bool = False) -> None:
    _gfile().copy(src, dst, overwrite=overwrite)


def exists(path: str) -> bool:
    return _gfile().exists(path)


def glob(pattern: str) -> list[str]:
    return _gfile().glob(pattern)


def isdir(path: str) -> bool:
    return _gfile().isdir(path)


def listdir(path: str) -> list[str]:
    return _gfile().listdir(path)


def makedirs(path: str) -> None:
    _gfile().makedirs(path)


def mkdir(path: str) -> None:
    _gfile().mkdir(path)


def remove(path: str) -> None:
    _gfile().remove(path)


def rename(src: str, dst: str, overwrite: bool = False) -> None:
    _gfile().rename(src, dst, overwrite=overwrite)


def rmtree(path: str) -> None:
    _gfile().rmtree(path)


def stat(path: str) -> Any:
    return _gfile().stat(path)


def walk(top: str, topdown: bool = True, onerror: Any = None) -> Any:
    return _gfile().walk(top, topdown=topdown, onerror=onerror)
