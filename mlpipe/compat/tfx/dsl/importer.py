"""``tfx.dsl.Importer``: an artifact that already exists (a curated schema, a pretrained model)
enters the pipeline as the ``result`` output.

TFX registers the external URI itself; mlpipe copies the file or directory into the node's output
directory, so the artifact is published (and cached, and survives a later change at the source)
like every other output. ``reimport=False`` (TFX's default) is mlpipe's cache: the copy is made
again only when ``source_uri``, the type or the properties change.
"""

from __future__ import annotations

import os
import shutil
from typing import Any, ClassVar

from mlpipe.dsl.component import Component
from mlpipe.dsl.context import ExecutionContext
from mlpipe.errors import DataError, DefinitionError
from mlpipe.types.artifact import Artifact
from mlpipe.types.channel import Channel
from mlpipe.types.registry import type_ref


class Importer(Component):
    VERSION: ClassVar[str] = "1"

    def __init__(
        self,
        source_uri: str,
        artifact_type: type[Artifact],
        reimport: bool = False,
        properties: dict[str, Any] | None = None,
        custom_properties: dict[str, Any] | None = None,
        output_key: str = "result",
    ):
        self.id = "Importer"
        self._upstream_extra = []
        self.inputs: dict[str, Channel] = {}
        if not (isinstance(artifact_type, type) and issubclass(artifact_type, Artifact)):
            raise DefinitionError(f"Importer: artifact_type must be an artifact class, got {artifact_type!r}")
        self.parameters = {
            "source_uri": str(source_uri),
            "properties": dict(properties or {}),
            "custom_properties": dict(custom_properties or {}),
            "reimport": bool(reimport),
        }
        self.outputs = {output_key: Channel(artifact_type, self, output_key)}
        self.parameters["output_type"] = type_ref(artifact_type)

    @staticmethod
    def execute(ctx: ExecutionContext) -> None:
        source = ctx.parameters["source_uri"]
        (artifact,) = ctx.outputs.values()
        if os.path.isdir(source):
            shutil.copytree(source, artifact.uri, dirs_exist_ok=True)
        elif os.path.isfile(source):
            shutil.copy2(source, os.path.join(artifact.uri, os.path.basename(source)))
        else:
            raise DataError(f"{ctx.node_id}: source_uri {source!r} is neither a file nor a directory")
        for name, value in ctx.parameters["properties"].items():
            artifact.set_property(name, value)
        for name, value in ctx.parameters["custom_properties"].items():
            artifact.set_custom_property(name, value)
