"""``tfx.orchestration.pipeline.Pipeline`` (also ``tfx.dsl.Pipeline``) on mlpipe's Pipeline."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mlpipe.compat.tfx.orchestration.metadata import connection_config
from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature
from mlpipe.dsl import pipeline


class Pipeline(pipeline.Pipeline):
    """TFX's arguments; ``enable_cache`` defaults to False as in TFX (mlpipe's own default is True).

    Without ``metadata_connection_config`` the store is mlpipe's default, ``metadata.sqlite`` beside
    ``pipeline_root``.
    """

    def __init__(
        self,
        pipeline_name: str,
        pipeline_root: str | os.PathLike[str],
        components: Sequence[Any] = (),
        enable_cache: bool = False,
        metadata_connection_config: Any = None,
        beam_pipeline_args: Sequence[str] | None = None,
        platform_config: Any = None,
        execution_mode: Any = None,
        **kwargs: Any,
    ):
        if platform_config is not None or execution_mode not in (None, "SYNC") or kwargs:
            names = ["platform_config"] * (platform_config is not None) + ["execution_mode"] * (
                execution_mode not in (None, "SYNC")
            ) + sorted(kwargs)  # fmt: skip
            raise UnsupportedTfxFeature(f"tfx.dsl.Pipeline({', '.join(names)}=...)", "drop it")
        super().__init__(
            pipeline_name,
            pipeline_root,
            list(components),
            metadata=connection_config(metadata_connection_config),
            enable_cache=enable_cache,
            beam_pipeline_args=beam_pipeline_args,
        )

    @property
    def pipeline_name(self) -> str:
        return self.name

    @property
    def pipeline_root(self) -> str:
        return self.root
