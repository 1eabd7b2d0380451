"""docs/migrating-from-tfx.md's symbol table holds: every supported or partial symbol exists in
the compat layer and names tests that exist; every "no" symbol that exists as a name fails loudly."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from mlpipe.compat.tfx.unsupported import UnsupportedTfxFeature

HERE = Path(__file__).parent
DOC = HERE.parents[1] / "docs" / "migrating-from-tfx.md"
TEST_FILES = {"api": HERE / "test_tfx_api.py", "e2e": HERE / "test_tfx_pipelines.py"}


def _rows() -> list[tuple[list[str], str, list[str]]]:
    rows = []
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not cells[0].startswith("`tfx"):
            continue
        symbols = [s for s in re.findall(r"`([^`]+)`", cells[0]) if s.startswith("tfx.") and "*" not in s]
        tests = [t.strip() for t in cells[3].split(",") if t.strip()]
        rows.append((symbols, cells[1], tests))
    return rows


def _resolve(symbol: str) -> Any:
    parts = symbol.split(".")[1:]
    for n in range(len(parts), -1, -1):
        try:
            obj = importlib.import_module(".".join(["mlpipe.compat.tfx", *parts[:n]]))
        except ModuleNotFoundError:
            continue
        for part in parts[n:]:
            obj = getattr(obj, part)
        return obj
    raise AssertionError(symbol)


def _test_names(kind: str) -> set[str]:
    tree = ast.parse(TEST_FILES[kind].read_text())
    return {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }


ROWS = _rows()


def test_table_covers_the_v1_surface():
    assert len(ROWS) > 60 and {status for _, status, _ in ROWS} == {"supported", "partial", "no"}


@pytest.mark.parametrize(
    "symbols, status, tests", [r for r in ROWS if r[1] != "no"], ids=lambda v: str(v)[:80]
)
def test_supported_symbol_exists_and_its_tests_exist(symbols, status, tests):
    assert tests, f"{symbols} is {status} but names no test"
    for symbol in symbols:
        assert _resolve(symbol) is not None
    for test in tests:
        kind, _, name = test.partition(":")
        assert name in _test_names(kind), f"{test} does not exist"


@pytest.mark.parametrize("symbols", [r[0] for r in ROWS if r[1] == "no" and r[0]], ids=lambda v: v[0])
def test_unsupported_symbol_fails_naming_itself(symbols):
    for symbol in symbols:
        with pytest.raises(UnsupportedTfxFeature, match=re.escape(symbol)):
            _resolve(symbol)[int]  # annotations (BeamComponentParameter) fail when subscripted
