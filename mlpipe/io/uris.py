"""Which artifact locations mlpipe can read and write: local paths, and nothing that only looks like one.

``os.path.abspath("s3://bucket/root")`` is ``$PWD/s3:/bucket/root``: without this check a pipeline
given an object-store URI would write into a local folder named ``s3:`` and record that path in MLMD,
exit 0, and leave the user believing their artifacts are in the bucket. Until artifacts can live on
object storage, a URI with a scheme is a definition error naming the parameter and what to do instead.
"""

from __future__ import annotations

import os
import re

from mlpipe.errors import DefinitionError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def local_path(location: str | os.PathLike[str], what: str) -> str:
    """``location`` as a local path; ``file://`` URIs are accepted, any other scheme is an error.

    ``what`` names the parameter for the message (e.g. ``"pipeline 'taxi': root"``).
    """
    text = os.fspath(location)
    match = _SCHEME.match(text)
    if match is None:
        return text
    scheme = match.group(1).lower()
    if scheme == "file":
        return text[match.end() :] or "/"
    raise DefinitionError(
        f"{what} is {text!r}: mlpipe reads and writes artifacts on local paths only, "
        f"and '{scheme}://' is not one. Give a local directory, or mount the bucket "
        f"(e.g. with gcsfuse or s3fs-fuse) and give the mount's path."
    )
