"""One exception hierarchy for mlpipe.

Every message names the thing that is wrong (node, file:line, field, URL), what was expected, and
what to do next, so a user can act without reading mlpipe's source.
"""

from __future__ import annotations


class MlpipeError(Exception):
    """Base of every error mlpipe raises on purpose."""


class DefinitionError(MlpipeError):
    """A pipeline or component definition is invalid (caught before anything runs)."""


class ComponentError(MlpipeError):
    """A component's executor failed; names the node, the cause and the execution's log file."""

    def __init__(self, node_id: str, cause: BaseException | str, log_path: str | None = None):
        self.node_id = node_id
        self.cause = cause
        self.log_path = log_path
        cause_text = cause if isinstance(cause, str) else f"{type(cause).__name__}: {cause}"
        where = f" (log: {log_path})" if log_path else ""
        super().__init__(f"node '{node_id}' failed: {cause_text}{where}")


class DataError(MlpipeError):
    """Input data is malformed; names the file, row/line and field, and what was expected."""


class MetadataError(MlpipeError):
    """The ML Metadata store cannot be reached or holds something inconsistent."""


class ServingError(MlpipeError):
    """A model cannot be served or a serving request is invalid."""


class ValidationFailure(DataError):
    """Raised by an executor whose outputs are a verdict on bad data (e.g. anomalies).

    The launcher publishes the outputs LIVE for inspection, records the execution FAILED and stops
    the run: the data problem is reported, and what shows it is kept.
    """
