"""Fixtures of the orchestration tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def calls(tmp_path, monkeypatch) -> Callable[[], list[str]]:
    """Executor calls recorded by the test pipelines (their nodes append their names to
    $MLPIPE_TEST_CALLS_LOG); each call of the returned function reads them and starts afresh."""
    path = tmp_path / "calls.log"
    monkeypatch.setenv("MLPIPE_TEST_CALLS_LOG", str(path))

    def read_and_reset() -> list[str]:
        lines = path.read_text().split() if path.exists() else []
        path.write_text("")
        return lines

    return read_and_reset
