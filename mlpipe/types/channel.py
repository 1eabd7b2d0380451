"""Channels: the typed wires between components."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlpipe.types.artifact import Artifact

if TYPE_CHECKING:
    from mlpipe.dsl.component import Component
    from mlpipe.dsl.condition import ArtifactListPlaceholder


@dataclass(frozen=True, eq=False)
class Channel:
    """The output ``key`` of node ``producer``, carrying artifacts of ``type``.

    A component instance's ``outputs['key']`` is a Channel; passing it as another component's input
    is the only wiring there is, and is how the pipeline's DAG is inferred.
    """

    type: type[Artifact]
    producer: Component
    key: str

    @property
    def producer_id(self) -> str:
        return self.producer.id

    def future(self) -> ArtifactListPlaceholder:
        """The artifacts this channel will carry when the pipeline runs, for ``Cond`` predicates
        (TFX's spelling): ``channel.future()[0].value == 1``."""
        from mlpipe.dsl.condition import ArtifactListPlaceholder

        return ArtifactListPlaceholder(self)

    def __repr__(self) -> str:
        return f"Channel({self.type.TYPE_NAME} from {self.producer.id}.outputs['{self.key}'])"
