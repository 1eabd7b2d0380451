"""The splits a component was asked to read, checked against the Examples it was given."""

from __future__ import annotations

import os
from typing import Any

from mlpipe.errors import DataError, DefinitionError


def check_splits(node_id: str, examples: Any, splits: list[str]) -> list[str]:
    """``splits`` if each is a directory of ``examples``; else an error naming the splits there are
    (the Evaluator's and the TFLiteConverter's ``example_splits``)."""
    if not splits:
        raise DefinitionError(f"{node_id}: example_splits is empty; name at least one split, e.g. ['eval']")
    for split in splits:
        if not os.path.isdir(examples.split_uri(split)):
            raise DataError(
                f"{node_id}: split '{split}' not found at {examples.split_uri(split)}; "
                f"the Examples have splits {examples.split_names or sorted(os.listdir(examples.uri))}"
            )
    return splits
